"""What runs cost, from hand-made run folders (run.json with the job's seconds, metrics.csv): job
seconds × the device share, start-up split from epochs, CPU core-seconds, and the projection."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from test_aggregate import CLS, TEST_ACC, write_run

from optimbench.cost import plan_cost, projected_device_hours, run_cost
from optimbench.runs import TrainRun


def test_cost_is_job_seconds_times_the_gpu_share_per_optimizer_and_in_all(tmp_path):
    runs = [write_run(tmp_path, o, s, acc) for (o, s), acc in TEST_ACC.items()]
    cost = plan_cost(runs, 0.25).set_index("optimizer")
    assert list(cost.index) == ["A", "B", "all"] and (cost["problem"] == CLS).all()
    # No start-up recorded: the job's time beyond its epochs (40 - 3 × 11 = 7 s) stands in, unknown (0) for the
    # resumed run, whose job_seconds timed its last attempt only: its epochs count (3 × 20 s + 3 × 1 s).
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


def test_cpu_runs_cost_core_seconds_and_an_unrecorded_job_time_falls_back_to_epoch_seconds(tmp_path):
    run = write_run(tmp_path, "B", 0, [0.1, 0.2, 0.3], startup=5.0, device="cpu")
    recorded = run_cost(run, gpu_share=0.25)
    assert (recorded["unit"], recorded["share"], recorded["device_seconds"]) == ("CPU core", 2, 80.0)
    info = json.loads((Path(run.dir) / "run.json").read_text())
    (Path(run.dir) / "run.json").write_text(json.dumps({k: v for k, v in info.items() if k != "job_seconds"}))
    without = run_cost(run, gpu_share=0.25)
    assert math.isnan(without["job_seconds"]) and without["device_seconds"] == 2 * (5 + 3 * 10 + 3 * 1)


def _run(root, problem, optimizer, seed, epoch_seconds, eval_seconds, samples_per_second, job_seconds=None,
         startup=None, resumed=None, device="cuda", device_name="NVIDIA H100", threads=4, dataset="toy", model="m",
         recorded=None, execution=None):
    """A run folder built by hand: metrics.csv with the given per-epoch seconds, run.json with `job_seconds`
    (None: not recorded) and `recorded`'s keys."""
    folder = root / problem / optimizer / f"seed{seed}"
    folder.mkdir(parents=True)
    pd.DataFrame({"epoch": range(1, len(epoch_seconds) + 1), "epoch_seconds": epoch_seconds,
                  "eval_seconds": eval_seconds, "samples_per_second": samples_per_second}).to_csv(
        folder / "metrics.csv", index=False)
    info = {"device": device, "device_name": device_name, "threads": threads, "resumed_after_epoch": resumed}
    if startup is not None:
        info["startup_seconds"] = startup
    if job_seconds is not None:
        info["job_seconds"] = job_seconds
    (folder / "run.json").write_text(json.dumps({**info, **(recorded or {})}))
    return TrainRun(problem=problem, dataset=dataset, model=model, optimizer=optimizer, seed=seed, dir=str(folder),
                    spec={}, execution=execution or {})


def test_a_run_costs_its_recorded_job_seconds_and_its_start_up_is_the_time_beyond_its_epochs(tmp_path):
    # epochs: 4 + 6 s trained, 1 + 1 s evaluated = 12 s; the job took 30 s
    run = _run(tmp_path, "p", "A", 0, [4.0, 6.0], [1.0, 1.0], [10.0, 20.0], job_seconds=30.0)
    cost = run_cost(run, gpu_share=0.5)
    assert {k: cost[k] for k in ("problem", "optimizer", "seed", "dataset", "model", "device", "unit", "share",
                                 "epochs")} == {"problem": "p", "optimizer": "A", "seed": 0, "dataset": "toy",
                                                "model": "m", "device": "NVIDIA H100", "unit": "GPU", "share": 0.5,
                                                "epochs": 2}
    assert (cost["train_seconds"], cost["eval_seconds"], cost["job_seconds"]) == (10.0, 2.0, 30.0)
    assert cost["startup_seconds"] == 18.0  # 30 - 12
    assert (cost["device_seconds"], cost["startup_device_seconds"], cost["epoch_device_seconds"]) == (15.0, 9.0, 6.0)


def test_samples_per_second_is_the_median_epoch_not_the_mean(tmp_path):
    run = _run(tmp_path, "p", "A", 0, [1.0] * 3, [0.0] * 3, [10.0, 20.0, 90.0], job_seconds=5.0, startup=2.0)
    assert run_cost(run, gpu_share=1.0)["samples_per_second"] == 20.0


def test_a_recorded_start_up_is_used_as_is_and_a_job_shorter_than_its_epochs_has_no_start_up(tmp_path):
    recorded = _run(tmp_path, "p", "A", 0, [4.0], [1.0], [1.0], job_seconds=30.0, startup=7.0)
    cost = run_cost(recorded, gpu_share=1.0)  # not 30 - 5 = 25: the recorded 7 s
    assert (cost["startup_seconds"], cost["device_seconds"], cost["epoch_device_seconds"]) == (7.0, 30.0, 23.0)
    short = _run(tmp_path, "p", "A", 1, [4.0], [1.0], [1.0], job_seconds=3.0)  # 3 s job, 5 s of epochs
    cost = run_cost(short, gpu_share=1.0)
    assert (cost["startup_seconds"], cost["device_seconds"], cost["epoch_device_seconds"]) == (0.0, 3.0, 3.0)


def test_a_resumed_run_costs_its_epochs_plus_start_up_and_no_job_time_means_no_start_up_unless_recorded(tmp_path):
    resumed = _run(tmp_path, "p", "A", 0, [4.0, 6.0], [1.0, 1.0], [1.0, 1.0], job_seconds=30.0, resumed=1)
    cost = run_cost(resumed, gpu_share=1.0)  # start-up unknown (0): job_seconds timed the last attempt only
    assert (cost["startup_seconds"], cost["job_seconds"], cost["device_seconds"]) == (0.0, 30.0, 12.0)
    resumed_known = _run(tmp_path, "p", "A", 1, [4.0, 6.0], [1.0, 1.0], [1.0, 1.0], job_seconds=30.0, resumed=1,
                         startup=3.0)
    assert run_cost(resumed_known, gpu_share=1.0)["device_seconds"] == 15.0
    missing = _run(tmp_path, "p", "A", 2, [4.0, 6.0], [1.0, 1.0], [1.0, 1.0])
    cost = run_cost(missing, gpu_share=1.0)
    assert math.isnan(cost["job_seconds"]) and (cost["startup_seconds"], cost["device_seconds"]) == (0.0, 12.0)


def test_the_share_is_the_gpu_share_on_any_cuda_device_and_the_threads_on_the_cpu(tmp_path):
    cuda1 = _run(tmp_path, "p", "A", 0, [1.0], [0.0], [1.0], job_seconds=10.0, startup=0.0, device="cuda:1")
    cpu = _run(tmp_path, "p", "A", 1, [1.0], [0.0], [1.0], job_seconds=10.0, startup=0.0, device="cpu",
               device_name="cpu", threads=3)
    assert [run_cost(r, gpu_share=0.25)[k] for r in (cuda1, cpu) for k in ("unit", "share", "device_seconds")] == \
        ["GPU", 0.25, 2.5, "CPU core", 3, 30.0]


def test_the_cost_table_groups_in_plan_order_and_sums_medians_and_means_as_documented(tmp_path):
    runs = [  # problem q before p, optimizer B before A: the table keeps this order
        _run(tmp_path, "q", "B", 0, [2.0, 2.0], [0.0, 0.0], [1.0, 1.0], job_seconds=10.0, startup=6.0,
             device="cpu", device_name="cpu", threads=1, dataset="d2", model="m2"),
        _run(tmp_path, "q", "B", 1, [3.0], [0.0], [5.0], job_seconds=20.0, startup=17.0,
             device="cpu", device_name="cpu", threads=3, dataset="d2", model="m2"),
        _run(tmp_path, "q", "B", 2, [1.0], [0.0], [9.0], job_seconds=30.0, startup=29.0,
             device="cpu", device_name="cpu", threads=8, dataset="d2", model="m2"),
        _run(tmp_path, "p", "A", 0, [1.0], [0.0], [7.0], startup=1.0, device="cuda", device_name="Z GPU",
             dataset="d1", model="m1"),
    ]
    table = plan_cost(runs, 0.5)
    assert table[["problem", "optimizer", "dataset", "model"]].values.tolist() == [
        ["q", "B", "d2", "m2"], ["p", "A", "d1", "m1"], ["q, p", "all", "d2, d1", "m2, m1"]]
    qb, pa, total = (table.iloc[i] for i in range(3))
    assert (qb["runs"], qb["epochs"], qb["share"], qb["job_seconds"]) == (3, 4, 3.0, 60.0)  # median share of 1, 3, 8
    assert qb["samples_per_second"] == 5.0  # median of the runs' 1, 5, 9
    # device-seconds: 10 × 1 + 20 × 3 + 30 × 8 = 310; start-up 6 + 51 + 232 = 289 (mean 289 / 3); epochs 21 / 4
    assert (qb["device_seconds"], qb["startup_device_seconds"]) == (310.0, 289.0)
    assert qb["startup_device_seconds_per_run"] == pytest.approx(289 / 3)
    assert qb["device_seconds_per_epoch"] == pytest.approx(21 / 4)
    assert math.isnan(pa["job_seconds"])  # not recorded: unknown, not 0
    assert pa["device_seconds"] == 1.0  # (1 s epoch + 1 s start-up) × 0.5
    assert total["job_seconds"] == 60.0  # NaNs left out of a sum with values
    assert (total["device"], total["unit"]) == ("Z GPU, cpu", "CPU core, GPU")  # sorted, each once
    assert (total["runs"], total["epochs"], total["share"]) == (4, 5, 2.0)  # median of 1, 3, 8, 0.5
    assert total["startup_device_seconds_per_run"] == pytest.approx((289 + 0.5) / 4)
    assert total["device_seconds_per_epoch"] == pytest.approx((21 + 0.5) / 5)
    assert list(table.columns) == ["problem", "optimizer", "dataset", "model", "device", "unit", "share", "runs",
                                   "epochs", "steps", "train_seconds", "eval_seconds", "job_seconds",
                                   "startup_seconds", "device_seconds", "startup_device_seconds",
                                   "epoch_device_seconds", "runs_over_request", "samples_per_second",
                                   "startup_device_seconds_per_run", "device_seconds_per_epoch", "seconds_per_step",
                                   "peak_host_mb", "peak_gpu_mb", "mem_mb", "step_baseline", "step_cost_vs_baseline"]
    assert isinstance(table, pd.DataFrame)


def test_the_projection_reads_the_all_row_start_up_per_run_and_seconds_per_epoch():
    cost = pd.DataFrame({"optimizer": ["A", "all"], "startup_device_seconds_per_run": [1000.0, 36.0],
                         "device_seconds_per_epoch": [1000.0, 7.2]})
    # 2 optimizers × 5 seeds = 10 runs: (36 × 10 + 7.2 × 50 × 10) / 3600 = (360 + 3600) / 3600
    assert projected_device_hours(cost, epochs=50, seeds=5, optimizers=2) == pytest.approx(1.1)


def _stepped(root, problem, optimizer, seed, epoch_seconds, steps_per_epoch=10, device="cuda", **recorded):
    return _run(root, problem, optimizer, seed, epoch_seconds, [1.0] * len(epoch_seconds), [1.0] * len(epoch_seconds),
                job_seconds=100.0, startup=1.0, device=device, device_name="cpu" if device == "cpu" else "H",
                recorded={"steps_per_epoch": steps_per_epoch, **recorded})


def test_step_cost_is_training_seconds_per_step_relative_to_sgd_on_the_same_problem_and_device(tmp_path):
    runs = [_stepped(tmp_path, "p", "SGD", 0, [2.0, 2.0]),            # 4 s / 20 steps = 0.2 s
            _stepped(tmp_path, "p", "SGD", 1, [3.0, 3.0]),            # seeds pooled: 10 s / 40 steps = 0.25 s
            _stepped(tmp_path, "p", "YellowFin", 0, [6.0, 9.0]),      # 15 s / 20 steps = 0.75 s: 3 × SGD's
            _stepped(tmp_path, "p", "Adam", 0, [8.0], 40, device="cpu"),  # another device: its own baseline
            _stepped(tmp_path, "q", "SGDM", 0, [1.0], 5),             # no SGD on q: SGDM (0.2 s)
            _stepped(tmp_path, "q", "Adam", 0, [3.0], 5),             # 0.6 s: 3 × SGDM's
            _stepped(tmp_path, "r", "Adam", 0, [4.0]),                # neither: the fastest (AggMo, 0.2 s)
            _stepped(tmp_path, "r", "AggMo", 0, [2.0])]
    table = plan_cost(runs, 1.0).set_index(["problem", "optimizer"])
    assert table.loc[("p", "SGD"), "seconds_per_step"] == pytest.approx(10 / 40)
    assert table.loc[("p", "SGD"), "steps"] == 40 and table.loc[("p", "YellowFin"), "steps"] == 20
    expected = {("p", "SGD"): ("SGD", 1.0), ("p", "YellowFin"): ("SGD", 0.75 / 0.25), ("p", "Adam"): ("Adam", 1.0),
                ("q", "SGDM"): ("SGDM", 1.0), ("q", "Adam"): ("SGDM", 3.0), ("r", "Adam"): ("AggMo", 2.0),
                ("r", "AggMo"): ("AggMo", 1.0)}
    for key, (baseline, ratio) in expected.items():
        assert table.loc[key, "step_baseline"] == baseline, key
        assert table.loc[key, "step_cost_vs_baseline"] == pytest.approx(ratio), key
    assert math.isnan(table.loc[("p, q, r", "all"), "step_cost_vs_baseline"])


def test_runs_recorded_without_steps_have_no_step_cost(tmp_path):
    old = _run(tmp_path, "p", "SGD", 0, [2.0], [1.0], [1.0], job_seconds=10.0, startup=1.0)
    row = plan_cost([old], 1.0).iloc[0]
    assert math.isnan(row["steps"]) and math.isnan(row["seconds_per_step"])
    assert math.isnan(row["step_cost_vs_baseline"]) and row["step_baseline"] == ""


def test_peak_memory_is_the_max_over_runs_and_a_run_above_its_request_is_flagged(tmp_path):
    from optimbench.cost import memory_by_problem
    from optimbench.report import memory_lines

    runs = [_stepped(tmp_path, "p", "SGD", 0, [1.0], peak_host_mb=3000.0, peak_gpu_mb=900.0, mem_mb=4000),
            _stepped(tmp_path, "p", "Adam", 0, [1.0], peak_host_mb=4500.0, peak_gpu_mb=None, mem_mb=4000),
            _stepped(tmp_path, "q", "SGD", 0, [1.0], peak_host_mb=1000.0, peak_gpu_mb=None, mem_mb=4000),
            # the request from the plan's execution settings when run.json has none
            _run(tmp_path, "r", "SGD", 0, [1.0], [1.0], [1.0], job_seconds=9.0, recorded={"peak_host_mb": 2500.5},
                 execution={"mem_mb": 2000}),
            _run(tmp_path, "s", "SGD", 0, [1.0], [1.0], [1.0])]  # neither: unknown, not 0, not flagged
    cost = plan_cost(runs, 1.0)
    memory = memory_by_problem(cost).set_index("problem")
    assert memory.loc["p", ["peak_host_mb", "peak_gpu_mb", "mem_mb", "runs_over_request"]].tolist() == \
        [4500.0, 900.0, 4000.0, 1]
    assert memory.loc["q", "runs_over_request"] == 0 and math.isnan(memory.loc["q", "peak_gpu_mb"])
    assert memory.loc["r", ["peak_host_mb", "mem_mb", "runs_over_request"]].tolist() == [2500.5, 2000.0, 1]
    assert math.isnan(memory.loc["s", "peak_host_mb"]) and memory.loc["s", "runs_over_request"] == 0
    assert cost.set_index("optimizer").loc["all", "runs_over_request"] == 2
    lines = memory_lines(cost)
    assert len(lines) == 3  # s has no measurement: no line
    assert "4,500 MB of the 4,000 MB" in lines[0] and "GPU 900 MB" in lines[0] and "exceeded" in lines[0]
    assert "exceeded" not in lines[1] and "exceeded" in lines[2]
