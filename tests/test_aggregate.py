"""Aggregation on hand-made runs (2 optimizers × 3 seeds), checked against values computed by hand."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from optimbench import aggregate

T_975_2 = 4.302652729911275  # Student t quantile, 97.5%, 2 degrees of freedom
TEST_ACC = {("A", 0): [0.5, 0.7, 0.8], ("A", 1): [0.4, 0.6, 0.9], ("A", 2): [0.6, 0.8, 0.7],
            ("B", 0): [0.3, 0.4, 0.5], ("B", 1): [0.2, 0.5, 0.6], ("B", 2): [0.1, 0.3, 0.4]}


def write_run(root, optimizer, seed, test_acc):
    run = root / optimizer / f"seed{seed}"
    run.mkdir(parents=True)
    seconds = 20.0 if (optimizer, seed) == ("A", 1) else 10.0
    pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [2.0, 1.5, 1.0], "train_acc": [a + 0.05 for a in test_acc],
                  "test_loss": [1.0, 0.8, 0.9] if (optimizer, seed) == ("A", 0) else [1.2, 1.1, 1.0],
                  "test_acc": test_acc, "lr": 0.1, "epoch_seconds": seconds, "eval_seconds": 1.0,
                  "samples_per_second": 100.0 / seconds, "diverged": False}).to_csv(run / "metrics.csv", index=False)
    spec = {"dataset": "toy", "model": "m", "optimizer_name": optimizer, "seed": seed}
    resumed = 2 if (optimizer, seed) == ("A", 1) else None  # its benchmark file timed the last attempt only
    (run / "run.json").write_text(json.dumps({"spec": spec, "device": "cuda", "device_name": "NVIDIA H100",
                                              "threads": 2, "resumed_after_epoch": resumed}))
    (run / "benchmark.tsv").write_text("s\th:m:s\tmax_rss\n40.0\t0:00:40\t900.0\n")
    return run / "metrics.csv"


@pytest.fixture
def tables(tmp_path):
    paths = [write_run(tmp_path / "runs", o, s, acc) for (o, s), acc in TEST_ACC.items()]
    return aggregate.aggregate_train(paths, tmp_path / "tables", target=0.7, confidence=0.95,
                                     benchmark_paths=[p.parent / "benchmark.tsv" for p in paths], gpu_share=0.25)


def test_long_table_has_one_row_per_run_epoch_metric(tables):
    long = tables["epochs_long"]
    assert list(long.columns) == ["dataset", "model", "optimizer", "seed", "epoch", "metric", "value"]
    assert len(long) == 6 * 3 * len(aggregate.METRICS)
    row = long[(long.optimizer == "A") & (long.seed == 1) & (long.epoch == 3) & (long.metric == "test_acc")]
    assert row["value"].item() == 0.9


def test_epoch_stats_mean_std_and_t_interval(tables):
    stats = tables["epoch_stats"].set_index(["optimizer", "epoch", "metric"])
    final = stats.loc[("A", 3, "test_acc")]
    assert final["n"] == 3
    assert final["mean"] == pytest.approx(0.8)
    assert final["std"] == pytest.approx(0.1)  # sample std of 0.8, 0.9, 0.7
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert (final["ci_low"], final["ci_high"]) == (pytest.approx(0.8 - half), pytest.approx(0.8 + half))
    first = stats.loc[("B", 1, "test_acc")]
    assert first["mean"] == pytest.approx(0.2) and first["std"] == pytest.approx(0.1)
    assert len(tables["epoch_stats"]) == 2 * 3 * len(aggregate.METRICS)


def test_per_seed_time_to_target(tables):
    seeds = tables["seed_summary"].set_index(["optimizer", "seed"])
    assert seeds.loc[("A", 0), "epochs_to_target"] == 2 and seeds.loc[("A", 0), "seconds_to_target"] == 20
    assert seeds.loc[("A", 1), "epochs_to_target"] == 3 and seeds.loc[("A", 1), "seconds_to_target"] == 60
    assert seeds.loc[("A", 2), "epochs_to_target"] == 2
    assert np.isnan(seeds.loc[("B", 0), "epochs_to_target"])
    assert seeds.loc[("A", 0), "lowest_test_loss"] == 0.8 and seeds.loc[("A", 0), "lowest_test_loss_epoch"] == 2
    assert seeds.loc[("A", 1), "best_test_acc"] == 0.9 and seeds.loc[("A", 2), "best_test_acc"] == 0.8


def test_optimizer_summary(tables):
    summary = tables["optimizer_summary"].set_index("optimizer")
    assert list(summary.index) == ["A", "B"]  # sorted by rank
    a, b = summary.loc["A"], summary.loc["B"]
    assert (a["rank"], b["rank"]) == (1, 2)
    assert a["final_test_acc"] == pytest.approx(0.8) and b["final_test_acc"] == pytest.approx(0.5)
    assert a["final_test_acc_std"] == pytest.approx(0.1)
    assert a["final_test_acc_ci_high"] - a["final_test_acc"] == pytest.approx(T_975_2 * 0.1 / math.sqrt(3))
    assert a["epochs_to_target"] == pytest.approx(7 / 3) and a["seconds_to_target"] == pytest.approx(100 / 3)
    assert a["runs_reaching_target"] == 3 and b["runs_reaching_target"] == 0 and np.isnan(b["epochs_to_target"])
    assert a["mean_epoch_seconds"] == pytest.approx(40 / 3) and b["mean_epoch_seconds"] == 10
    assert a["best_test_acc"] == pytest.approx((0.8 + 0.9 + 0.8) / 3)
    assert a["divergences"] == 0 and a["seeds"] == 3


def test_tables_are_written_as_csv_and_parquet(tables, tmp_path):
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "tables" / f"{name}.parquet"), frame,
                                      check_dtype=False)
        assert len(pd.read_csv(tmp_path / "tables" / f"{name}.csv")) == len(frame)


def test_single_seed_has_no_interval():
    long = pd.DataFrame({"dataset": "d", "model": "m", "optimizer": "A", "seed": 0, "epoch": 1,
                         "metric": "test_acc", "value": [0.5]})
    row = aggregate.epoch_stats(long).iloc[0]
    assert row["mean"] == 0.5 and np.isnan(row["std"]) and np.isnan(row["ci_low"])


def article_summary(**final_test_acc):
    names = ["Adamax", "SGD", "Adam", "AdamW", "Adagrad", "Adadelta", "ASGD"]
    base = pd.DataFrame({"optimizer": names, "final_train_acc": [0.99, 0.98, 0.97, 0.96, 0.7, 0.6, 0.9],
                         "final_test_acc": [0.90, 0.895, 0.89, 0.888, 0.6, 0.5, 0.8],
                         "final_test_loss": [0.5, 0.45, 0.3, 0.31, 1.0, 1.2, 0.6],
                         "lowest_test_loss": [0.4, 0.35, 0.3, 0.31, 1.0, 1.2, 0.6]})
    for name, value in final_test_acc.items():
        base.loc[base.optimizer == name, "final_test_acc"] = value
    return base


def test_claims_all_hold_on_a_summary_built_to_match_the_article():
    claims = aggregate.claims_table(article_summary())
    assert len(claims) == 5 and claims["holds"].tolist() == [True] * 5


def test_claims_fail_when_the_numbers_disagree():
    claims = aggregate.claims_table(article_summary(Adamax=0.5, Adagrad=0.95))
    assert claims["holds"].tolist() == [True, False, True, True, False]
    assert "spread 0.3950" in claims["measured"][1]


def test_claims_with_missing_optimizers_are_not_tested():
    claims = aggregate.claims_table(article_summary().query("optimizer != 'Adamax'"))
    assert claims["holds"].isna().tolist() == [True, True, True, False, False]
    assert "not tested: ['Adamax']" in claims["measured"][0]


def test_descent_reproduction_pivots_the_article_runs():
    rows = []
    for gradient, epochs in (("as-printed", 139), ("central", 1)):
        rows.append({"function": "ackley", "method": "article-vanilla", "gradient": gradient, "kind": "article",
                     "lr": 1e-5, "momentum": np.nan, "h": 1e-3, "start_x": -2, "start_y": -2, "epochs": epochs,
                     "converged": True, "final_x": 0.0, "final_y": 0.0, "final_f": 0.1,
                     "distance_to_minimum": 0.02, "reached_minimum": gradient == "as-printed"})
    rows.append({**rows[0], "kind": "optimizer", "method": "SGD"})
    table = aggregate.descent_reproduction(pd.DataFrame(rows))
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["epochs_as-printed"], row["epochs_central"]) == (139, 1)
    assert bool(row["reached_minimum_as-printed"]) and not bool(row["reached_minimum_central"])


def test_cost_is_job_seconds_times_the_gpu_share_per_optimizer_and_in_all(tables):
    cost = tables["cost"].set_index("optimizer")
    assert list(cost.index) == ["A", "B", "all"]
    # A: two runs of 40 s; the resumed one counts its epochs (3 × 20 s training + 3 × 1 s evaluation).
    assert cost.loc["A", "device_seconds"] == pytest.approx((40 + 63 + 40) * 0.25)
    assert cost.loc["B", "device_seconds"] == pytest.approx(3 * 40 * 0.25)
    assert cost.loc["all", "device_seconds"] == pytest.approx((143 + 120) * 0.25)
    assert cost.loc["all", "job_seconds"] == pytest.approx(6 * 40)
    assert (cost.loc["all", "runs"], cost.loc["all", "epochs"], cost.loc["all", "unit"]) == (6, 18, "GPU")
    assert cost.loc["A", "samples_per_second"] == pytest.approx(10.0)  # median of runs at 10, 5, 10 samples/s
    assert cost.loc["all", "device_seconds_per_epoch"] == pytest.approx(263 * 0.25 / 18)
    hours = aggregate.projected_device_hours(tables["cost"], epochs=50, seeds=3, optimizers=7)
    assert hours == pytest.approx(263 * 0.25 / 18 * 50 * 3 * 7 / 3600)


def test_cpu_runs_cost_core_seconds_and_missing_benchmarks_fall_back_to_epoch_seconds(tmp_path):
    path = write_run(tmp_path, "B", 0, [0.1, 0.2, 0.3])
    info = json.loads((path.parent / "run.json").read_text())
    (path.parent / "run.json").write_text(json.dumps({**info, "device": "cpu", "device_name": "cpu"}))
    with_benchmark = aggregate.run_cost(path, path.parent / "benchmark.tsv", gpu_share=0.25)
    assert (with_benchmark["unit"], with_benchmark["share"], with_benchmark["device_seconds"]) == ("CPU core", 2, 80.0)
    without = aggregate.run_cost(path, tmp_path / "missing.tsv", gpu_share=0.25)
    assert math.isnan(without["job_seconds"]) and without["device_seconds"] == 2 * (3 * 10 + 3 * 1)
