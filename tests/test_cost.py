"""What runs cost, from hand-made run folders (run.json, metrics.csv, Snakemake's benchmark file): job
seconds × the device share, start-up split from epochs, CPU core-seconds, and the projection."""

import dataclasses
import math

import pytest
from test_aggregate import CLS, TEST_ACC, write_run

from optimbench.cost import plan_cost, projected_device_hours, run_cost


def test_cost_is_job_seconds_times_the_gpu_share_per_optimizer_and_in_all(tmp_path):
    runs = [write_run(tmp_path, o, s, acc) for (o, s), acc in TEST_ACC.items()]
    cost = plan_cost(runs, 0.25).set_index("optimizer")
    assert list(cost.index) == ["A", "B", "all"] and (cost["problem"] == CLS).all()
    # No start-up recorded: the job's time beyond its epochs (40 - 3 × 11 = 7 s) stands in, unknown (0) for the
    # resumed run, whose benchmark timed its last attempt only: its epochs count (3 × 20 s + 3 × 1 s).
    assert cost.loc["A", "device_seconds"] == pytest.approx((40 + 63 + 40) * 0.25)
    assert cost.loc["B", "startup_seconds"] == pytest.approx(3 * 7)
    assert cost.loc["B", "device_seconds"] == pytest.approx(3 * 40 * 0.25)
    assert cost.loc["all", "job_seconds"] == pytest.approx(6 * 40)
    assert (cost.loc["all", "runs"], cost.loc["all", "epochs"], cost.loc["all", "unit"]) == (6, 18, "GPU")
    assert cost.loc["all", "share"] == 0.25  # the median share, not a multiple of it
    assert cost.loc["A", "samples_per_second"] == pytest.approx(10.0)  # median of runs at 10, 5, 10 samples/s


def test_cost_splits_start_up_from_epochs_and_projects_both(tmp_path):
    runs = [write_run(tmp_path, "A", s, [0.5, 0.6, 0.7], startup=13.0, device="cpu") for s in (0, 2)]
    cost = plan_cost(runs, 0.25)
    total = cost.set_index("optimizer").loc["all"]
    # CPU: 2 threads = 2 core-seconds per second; 40 s jobs, 13 s of which start-up
    assert total["startup_device_seconds_per_run"] == pytest.approx(13 * 2)
    assert total["device_seconds_per_epoch"] == pytest.approx(2 * (40 - 13) * 2 / 6)
    assert total["device_seconds"] == pytest.approx(2 * 40 * 2)
    hours = projected_device_hours(cost, epochs=50, seeds=3, optimizers=7)
    assert hours == pytest.approx((21 * 26 + 21 * 50 * 18) / 3600)


def test_cpu_runs_cost_core_seconds_and_missing_benchmarks_fall_back_to_epoch_seconds(tmp_path):
    run = write_run(tmp_path, "B", 0, [0.1, 0.2, 0.3], startup=5.0, device="cpu")
    with_benchmark = run_cost(run, gpu_share=0.25)
    assert (with_benchmark["unit"], with_benchmark["share"], with_benchmark["device_seconds"]) == ("CPU core", 2, 80.0)
    without = run_cost(dataclasses.replace(run, benchmark=str(tmp_path / "missing.tsv")), gpu_share=0.25)
    assert math.isnan(without["job_seconds"]) and without["device_seconds"] == 2 * (5 + 3 * 10 + 3 * 1)
