"""Aggregation on hand-made runs, checked against values computed by hand: intervals, the divergence
policy, ranks in each metric's direction, the cross-problem tables, the runs as recorded, the tuned
tables, and the table files each stage writes."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optimbench import aggregate, descent, files, tune
from optimbench.plan import Plan
from optimbench.runs import DescentRun, StudyProblem, TrainRun, Trial, TuneStage
from optimbench.tables import IDENTITY_COLUMNS, read_table

from helpers import plan_problem

T_975_2 = 4.302652729911275  # Student t quantile, 97.5%, 2 degrees of freedom
T_975_1 = 12.706204736174707  # ... 1 degree of freedom
TEST_ACC = {("A", 0): [0.5, 0.7, 0.8], ("A", 1): [0.4, 0.6, 0.9], ("A", 2): [0.6, 0.8, 0.7],
            ("B", 0): [0.3, 0.4, 0.5], ("B", 1): [0.2, 0.5, 0.6], ("B", 2): [0.1, 0.3, 0.4]}
CLS, VAE = "digits-resnet18", "digits-vae"
SPEC = {"dataset": "toy", "model": "m", "epochs": 3, "batch_size": 64, "width": 8,
        "optimizer": {"class": "SGD", "kwargs": {"lr": 0.1}}}


def save_run(root, problem, optimizer, seed, frame, startup=None, device="cuda", spec=None):
    """A finished run's folder (metrics.csv as given, run.json with the job's 40 s); returns its TrainRun."""
    run = root / problem / optimizer / f"seed{seed}"
    run.mkdir(parents=True)
    frame.to_csv(run / "metrics.csv", index=False)
    spec = {**SPEC, "problem": problem, "optimizer_name": optimizer, "seed": seed, **(spec or {})}
    resumed = 2 if (optimizer, seed) == ("A", 1) else None  # its job_seconds timed the last attempt only
    info = {"spec": spec, "device": device, "device_name": "NVIDIA H100" if device == "cuda" else "cpu",
            "threads": 2, "resumed_after_epoch": resumed, "diverged": bool(frame["diverged"].any()),
            "versions": {"torch": "2.14.1", "python": "3.11"}, "train_images": 300, "test_images": 100,
            "job_seconds": 40.0}
    if startup is not None:
        info["startup_seconds"] = startup
    (run / "run.json").write_text(json.dumps(info))
    planned = {**SPEC, "problem": problem, "optimizer_name": optimizer, "seed": seed}
    return TrainRun(problem=problem, dataset="toy", model="m", optimizer=optimizer, seed=seed, dir=str(run),
                    spec=planned, execution={})


def write_run(root, optimizer, seed, test_acc, diverged_epoch=None, startup=None, device="cuda", spec=None,
              problem=CLS, seconds=None):
    """A classification run: test accuracy per epoch as given, train accuracy 0.05 above it."""
    seconds = seconds or (20.0 if (optimizer, seed) == ("A", 1) else 10.0)
    epochs = len(test_acc) if diverged_epoch is None else diverged_epoch
    frame = pd.DataFrame({"epoch": range(1, epochs + 1), "train_loss": [2.0, 1.5, 1.0][:epochs],
                          "train_acc": [a + 0.05 for a in test_acc][:epochs], "val_loss": np.nan, "val_acc": np.nan,
                          "test_loss": ([1.0, 0.8, 0.9] if (optimizer, seed) == ("A", 0) else [1.2, 1.1, 1.0])[:epochs],
                          "test_acc": test_acc[:epochs], "lr": 0.1, "epoch_seconds": seconds, "eval_seconds": 1.0,
                          "samples_per_second": 100.0 / seconds, "diverged": False})
    if diverged_epoch is not None:  # as the trainer records it: a non-finite loss, no evaluation
        frame.loc[epochs - 1, ["train_loss", "test_loss", "test_acc", "diverged"]] = [np.nan, np.nan, np.nan, True]
    return save_run(root, problem, optimizer, seed, frame, startup, device, spec)


def write_vae_run(root, optimizer, seed, neg_elbo, diverged_epoch=None, seconds=10.0, problem=VAE):
    """A VAE run: test negative ELBO per epoch as given (recon 0.9 of it, KL 0.1), train's 5 nats lower."""
    epochs = len(neg_elbo) if diverged_epoch is None else diverged_epoch
    test = np.asarray(neg_elbo[:epochs], dtype=float)
    frame = pd.DataFrame({"epoch": range(1, epochs + 1), "train_neg_elbo": test - 5, "train_recon": 0.9 * (test - 5),
                          "train_kl": 0.1 * (test - 5), "val_neg_elbo": np.nan, "val_recon": np.nan, "val_kl": np.nan,
                          "test_neg_elbo": test, "test_recon": 0.9 * test, "test_kl": 0.1 * test, "lr": 0.1,
                          "epoch_seconds": seconds, "eval_seconds": 1.0, "samples_per_second": 100.0 / seconds,
                          "diverged": False})
    if diverged_epoch is not None:
        nan = [c for c in frame.columns if c.startswith(("train_", "test_"))]
        frame.loc[epochs - 1, nan] = np.nan
        frame.loc[epochs - 1, "diverged"] = True
    return save_run(root, problem, optimizer, seed, frame)


def plan_of(runs, target=0.7, confidence=0.95, gpu_share=0.25, problems=None, tune=None):
    problems = problems or {CLS: plan_problem(CLS, target=target)}
    settings = {"problems": problems, "confidence": confidence, "gpu_share": gpu_share}
    return Plan("results", {}, {}, runs, [], settings, tune)


def study_problems(**entries) -> dict[str, StudyProblem]:
    """Plan.problems of a plan whose settings["problems"] are `entries` (name -> plan_problem entry)."""
    return plan_of([], problems=entries).problems


@pytest.fixture
def tables(tmp_path):
    runs = [write_run(tmp_path / "runs", o, s, acc) for (o, s), acc in TEST_ACC.items()]
    return aggregate.aggregate_train(plan_of(runs), tmp_path / "tables")


def test_problem_metrics_are_the_plans_metrics_as_registry_metrics():
    problems = study_problems(**{VAE: plan_problem(VAE, target=150.0)})
    vae = problems[VAE]
    assert (vae.primary.name, vae.primary.higher_is_better, vae.primary.worst, vae.target) == (
        "test_neg_elbo", False, math.inf, 150.0)
    assert vae.columns() == ["train_neg_elbo", "train_recon", "train_kl", "test_neg_elbo", "test_recon", "test_kl"]
    assert vae.columns(("val",)) == ["val_neg_elbo", "val_recon", "val_kl"]
    acc = study_problems(**{CLS: plan_problem(CLS)})[CLS].metrics["val_acc"]
    assert (acc.low, acc.high, acc.worst) == (0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="primary metric 'test_acc' is not among"):
        study_problems(**{VAE: plan_problem(VAE, primary="test_acc")})


def test_every_accuracy_interval_in_every_table_lies_in_0_1(tmp_path):
    runs = [write_run(tmp_path, "Adagrad", 0, [0.05, 0.1, 0.1]), write_run(tmp_path, "Adagrad", 1, [0.5, 0.9, 0.95])]
    tables = aggregate.aggregate_train(plan_of(runs), tmp_path / "tables")
    summary = tables["optimizer_summary"]
    for column in ("final", "best", "final_test_acc", "final_train_acc", "best_test_acc"):
        assert summary[f"{column}_ci_low"].between(0, 1).all() and summary[f"{column}_ci_high"].between(0, 1).all()
    assert (summary["final_test_acc_ci_low"].item(), summary["final_test_acc_ci_high"].item()) == (0.0, 1.0)
    acc = tables["epoch_stats"][tables["epoch_stats"]["metric"].isin(["test_acc", "train_acc"])]
    assert acc["ci_low"].dropna().between(0, 1).all() and acc["ci_high"].dropna().between(0, 1).all()
    loss = tables["epoch_stats"][tables["epoch_stats"]["metric"] == "test_loss"]
    assert (loss["ci_low"].dropna() >= 0).all()


def test_long_table_has_one_row_per_run_epoch_metric(tables):
    long = tables["epochs_long"]
    assert list(long.columns) == ["problem", "optimizer", "seed", "epoch", "scored", "metric", "value"]
    metrics = ["train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds", "samples_per_second"]
    assert long["metric"].unique().tolist() == metrics  # the problem's train_ and test_ columns, no val_
    assert len(long) == 6 * 3 * len(metrics)
    row = long[(long.optimizer == "A") & (long.seed == 1) & (long.epoch == 3) & (long.metric == "test_acc")]
    assert row["value"].item() == 0.9


def test_epoch_stats_mean_std_and_t_interval(tables):
    stats_ = tables["epoch_stats"].set_index(["optimizer", "epoch", "metric"])
    final = stats_.loc[("A", 3, "test_acc")]
    assert final["n"] == 3 and final["mean"] == pytest.approx(0.8) and final["std"] == pytest.approx(0.1)
    half = T_975_2 * 0.1 / math.sqrt(3)
    assert (final["ci_low"], final["ci_high"]) == (pytest.approx(0.8 - half), 1.0)  # 0.8 + half > 1: clipped
    first = stats_.loc[("B", 1, "test_acc")]
    assert first["mean"] == pytest.approx(0.2) and first["std"] == pytest.approx(0.1)
    assert len(tables["epoch_stats"]) == 2 * 3 * 7


def test_per_seed_time_to_target_and_final_values(tables):
    seeds = tables["seed_summary"].set_index(["optimizer", "seed"])
    assert (seeds["problem"] == CLS).all() and (seeds["metric"] == "test_acc").all()
    assert seeds["higher_is_better"].all() and (seeds["target"] == 0.7).all()
    assert seeds.loc[("A", 1), "final"] == 0.9 and seeds.loc[("A", 2), "final"] == 0.7
    assert seeds.loc[("A", 2), "best"] == 0.8 and seeds.loc[("A", 2), "best_epoch"] == 2
    assert seeds.loc[("A", 0), "epochs_to_target"] == 2 and seeds.loc[("A", 0), "seconds_to_target"] == 20
    assert seeds.loc[("A", 1), "epochs_to_target"] == 3 and seeds.loc[("A", 1), "seconds_to_target"] == 60
    assert seeds.loc[("A", 2), "epochs_to_target"] == 2
    assert np.isnan(seeds.loc[("B", 0), "epochs_to_target"]) and not seeds.loc[("B", 0), "reached_target"]
    assert seeds.loc[("A", 0), "best_test_loss"] == 0.8  # a loss's best is its lowest
    assert seeds.loc[("A", 1), "best_test_acc"] == 0.9 and seeds.loc[("A", 2), "best_test_acc"] == 0.8
    # final = the last epoch's value, not the first's
    assert seeds.loc[("A", 0), "final_train_acc"] == pytest.approx(0.85)
    assert seeds.loc[("A", 0), "final_train_loss"] == 1.0 and seeds.loc[("A", 0), "final_test_loss"] == 0.9


def test_optimizer_summary(tables):
    summary = tables["optimizer_summary"].set_index("optimizer")
    assert list(summary.index) == ["A", "B"]  # sorted by rank
    a, b = summary.loc["A"], summary.loc["B"]
    assert (a["rank"], b["rank"]) == (1, 2)
    assert a["final_test_acc"] == pytest.approx(0.8) and b["final_test_acc"] == pytest.approx(0.5)
    assert a["final"] == a["final_test_acc"] and a["final_ci_low"] == a["final_test_acc_ci_low"]
    assert (a["metric"], a["higher_is_better"], a["target"], a["problem"]) == ("test_acc", True, 0.7, CLS)
    assert a["final_test_acc_std"] == pytest.approx(0.1) and a["final_test_acc_n"] == 3
    assert a["final_test_acc"] - a["final_test_acc_ci_low"] == pytest.approx(T_975_2 * 0.1 / math.sqrt(3))
    assert a["epochs_to_target"] == pytest.approx(7 / 3) and a["seconds_to_target"] == pytest.approx(100 / 3)
    sem = np.std([2, 3, 2], ddof=1) / math.sqrt(3)
    assert a["epochs_to_target_ci_high"] == pytest.approx(7 / 3 + T_975_2 * sem)
    assert a["runs_reaching_target"] == 3 and b["runs_reaching_target"] == 0 and np.isnan(b["epochs_to_target"])
    assert a["mean_epoch_seconds"] == pytest.approx(40 / 3) and b["mean_epoch_seconds"] == 10
    assert a["best_test_acc"] == pytest.approx((0.8 + 0.9 + 0.8) / 3)
    assert a["divergences"] == 0 and a["seeds"] == 3
    # B's seeds (0.5, 0.6, 0.4) against A's (0.8, 0.9, 0.7): Welch's t = 3.67, p = 0.011 < 0.05
    assert bool(b["separated_from_best"]) and not bool(a["separated_from_best"])


def test_tables_are_written_as_csv_and_parquet(tables, tmp_path):
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "tables" / f"{name}.parquet"), frame,
                                      check_dtype=False)
        assert len(pd.read_csv(tmp_path / "tables" / f"{name}.csv")) == len(frame)


def test_the_train_stage_writes_exactly_the_files_optimbench_files_names(tables, tmp_path):
    assert list(tables) == list(files.TRAIN_TABLES)
    assert sorted((tmp_path / "tables").iterdir()) == sorted(files.table_files(tmp_path / "tables", files.TRAIN_TABLES))
    with pytest.raises(ValueError, match="are not the stage's"):
        aggregate.write_tables({**tables, "extra": tables["runs"]}, tmp_path / "other", files.TRAIN_TABLES)


def test_single_seed_has_no_interval():
    long = pd.DataFrame({"problem": CLS, "optimizer": "A", "seed": 0, "epoch": 1, "metric": "test_acc",
                         "value": [0.5]})
    row = aggregate.epoch_stats(long, study_problems(**{CLS: plan_problem(CLS)})).iloc[0]
    assert row["mean"] == 0.5 and np.isnan(row["std"]) and np.isnan(row["ci_low"])


# ---------------------------------------------------------------- divergence
def test_a_diverged_seed_counts_against_its_optimizer_and_the_tables_agree(tmp_path):
    runs = [write_run(tmp_path, "A", 0, [0.5, 0.8, 0.90]), write_run(tmp_path, "A", 1, [0.5, 0.8, 0.88]),
            write_run(tmp_path, "A", 2, [0.5, 0.8, 0.88], diverged_epoch=3)]
    tables = aggregate.aggregate_train(plan_of(runs), tmp_path / "tables")
    values = [0.90, 0.88, 0.0]  # the diverged seed scores accuracy 0
    mean, std = np.mean(values), np.std(values, ddof=1)
    half = T_975_2 * std / math.sqrt(3)
    a = tables["optimizer_summary"].iloc[0]
    assert (a["seeds"], a["final_test_acc_n"], a["divergences"]) == (3, 3, 1)
    assert a["final_test_acc"] == pytest.approx(mean)
    assert (a["final_test_acc_ci_low"], a["final_test_acc_ci_high"]) == (pytest.approx(max(0, mean - half)),
                                                                         pytest.approx(min(1, mean + half)))
    final = tables["epoch_stats"].set_index(["optimizer", "epoch", "metric"]).loc[("A", 3, "test_acc")]
    assert (final["n"], final["mean"], final["ci_low"], final["ci_high"]) == (
        3, pytest.approx(mean), pytest.approx(a["final_test_acc_ci_low"]), pytest.approx(a["final_test_acc_ci_high"]))
    by_epoch = tables["epoch_stats"].set_index(["optimizer", "epoch", "metric"])
    assert by_epoch.loc[("A", 3, "test_loss"), "mean"] == math.inf
    seeds = tables["seed_summary"].set_index("seed")
    assert bool(seeds.loc[2, "diverged"]) and not bool(seeds.loc[0, "diverged"])
    assert seeds.loc[2, "diverged_epoch"] == 3 and seeds.loc[2, "final_test_loss"] == math.inf
    # it reached 0.7 at epoch 2, before diverging, but a diverged run never reaches the target
    assert not bool(seeds.loc[2, "reached_target"]) and a["runs_reaching_target"] == 2
    assert seeds.loc[2, "final"] == 0.0 and seeds.loc[2, "best"] == 0.8  # its best epoch came before


def test_an_optimizer_that_diverged_early_is_extended_to_its_planned_epochs_and_ranked_last(tmp_path):
    runs = [write_run(tmp_path, "SGD", s, [0.5, 0.6, 0.7]) for s in (0, 1)]
    runs += [write_run(tmp_path, "Boom", s, [0.5, 0.6, 0.7], diverged_epoch=1) for s in (0, 1)]
    tables = aggregate.aggregate_train(plan_of(runs), tmp_path / "tables")
    summary = tables["optimizer_summary"].set_index("optimizer")
    assert list(summary.index) == ["SGD", "Boom"] and summary.loc["Boom", "rank"] == 2
    assert summary.loc["Boom", "final_test_acc"] == 0 and summary.loc["Boom", "divergences"] == 2
    boom = tables["epochs_long"].query("optimizer == 'Boom' and metric == 'test_acc'")
    assert sorted(boom["epoch"].unique()) == [1, 2, 3] and boom["scored"].all() and (boom["value"] == 0).all()
    loss = tables["epochs_long"].query("optimizer == 'Boom' and metric == 'train_loss'")
    assert len(loss) == 6 and (loss["value"] == math.inf).all()


# ---------------------------------------------------------------- a lower-is-better problem
NEG_ELBO = {("Adam", 0): [200, 140, 120], ("Adam", 1): [190, 150, 110], ("Adam", 2): [210, 125, 130],
            ("SGD", 0): [300, 250, 200], ("SGD", 1): [310, 240, 190], ("SGD", 2): [290, 260, 210],
            ("Far", 0): [100, 50, 5], ("Far", 1): [400, 300, 295], ("Boom", 1): [220, 180, 160]}


@pytest.fixture
def vae_tables(tmp_path):
    runs = [write_vae_run(tmp_path, o, s, values) for (o, s), values in NEG_ELBO.items()]
    runs.append(write_vae_run(tmp_path, "Boom", 0, [140, 130, 120], diverged_epoch=2))  # met 150, then diverged
    plan = plan_of(runs, problems={VAE: plan_problem(VAE, target=150.0)})
    return aggregate.aggregate_train(plan, tmp_path / "tables")


def test_a_lower_is_better_metric_reaches_its_target_from_above_and_its_best_is_its_lowest(vae_tables):
    seeds = vae_tables["seed_summary"].set_index(["optimizer", "seed"])
    assert (seeds["metric"] == "test_neg_elbo").all() and not seeds["higher_is_better"].any()
    assert seeds.loc[("Adam", 0), "epochs_to_target"] == 2 and seeds.loc[("Adam", 0), "seconds_to_target"] == 20
    assert seeds.loc[("Adam", 1), "epochs_to_target"] == 2  # 150 meets a target of 150
    assert seeds.loc[("Far", 0), "epochs_to_target"] == 1 and seeds.loc[("Far", 0), "seconds_to_target"] == 10
    assert not seeds.loc[("SGD", 0), "reached_target"] and not seeds.loc[("Far", 1), "reached_target"]
    assert (seeds.loc[("Adam", 2), "best"], seeds.loc[("Adam", 2), "best_epoch"]) == (125, 2)
    assert seeds.loc[("Adam", 2), "final"] == 130 and seeds.loc[("Adam", 2), "final_test_kl"] == pytest.approx(13)
    assert seeds.loc[("Adam", 2), "best_train_neg_elbo"] == 120 and seeds.loc[("Adam", 2), "final_train_recon"] == 112.5
    summary = vae_tables["optimizer_summary"].set_index("optimizer")
    reaching = summary["runs_reaching_target"].to_dict()
    assert reaching == {"Adam": 3, "Far": 1, "SGD": 0, "Boom": 0}  # Boom's seed 0 met it, then diverged
    assert summary.loc["Adam", "best"] == pytest.approx((120 + 110 + 125) / 3)


def test_a_diverged_vae_run_scores_infinite_negative_elbo_in_every_table(vae_tables):
    seeds = vae_tables["seed_summary"].set_index(["optimizer", "seed"])
    boom = seeds.loc[("Boom", 0)]
    assert boom["final"] == math.inf and boom["diverged_epoch"] == 2 and boom["epochs"] == 3
    for column in ("test_neg_elbo", "test_recon", "test_kl", "train_neg_elbo", "train_recon", "train_kl"):
        assert boom[f"final_{column}"] == math.inf, column
    assert (boom["best"], boom["best_epoch"]) == (140, 1)  # before it diverged
    long = vae_tables["epochs_long"].query("optimizer == 'Boom' and seed == 0 and metric == 'test_neg_elbo'")
    assert long["value"].tolist() == [140, math.inf, math.inf] and long["scored"].tolist() == [False, True, True]
    summary = vae_tables["optimizer_summary"].set_index("optimizer")
    assert summary.loc["Boom", "final"] == math.inf and summary.loc["Boom", "divergences"] == 1
    assert (summary.loc["Boom", "final_ci_low"], summary.loc["Boom", "final_ci_high"]) == (math.inf, math.inf)


def test_a_lower_is_better_problem_ranks_and_separates_lowest_first(vae_tables):
    summary = vae_tables["optimizer_summary"]
    # means: Adam 120, Far 150, SGD 200, Boom ∞ (a diverged seed)
    assert summary["optimizer"].tolist() == ["Adam", "Far", "SGD", "Boom"] and summary["rank"].tolist() == [1, 2, 3, 4]
    summary = summary.set_index("optimizer")
    assert summary.loc["Adam", "final"] == pytest.approx(120) and summary.loc["Adam", "final_std"] == pytest.approx(10)
    half = T_975_2 * 10 / math.sqrt(3)
    assert (summary.loc["Adam", "final_ci_low"], summary.loc["Adam", "final_ci_high"]) == (
        pytest.approx(120 - half), pytest.approx(120 + half))
    # SGD's seeds (200, 190, 210) against Adam's (120, 110, 130): lower by 80 with t = 9.8; Far's two seeds
    # (5, 295) spread too far to tell; Boom's worst seed (∞) is worse than every seed of Adam's.
    p = stats.ttest_ind([-120, -110, -130], [-200, -190, -210], equal_var=False, alternative="greater").pvalue
    assert p < 0.001
    assert summary["separated_from_best"].to_dict() == {"Adam": False, "Far": False, "SGD": True, "Boom": True}
    assert (summary["metric"] == "test_neg_elbo").all() and (summary["target"] == 150).all()


def test_a_lower_is_better_interval_is_clipped_to_its_metrics_range_not_to_0_1(vae_tables):
    far = vae_tables["optimizer_summary"].set_index("optimizer").loc["Far"]
    std = np.std([5, 295], ddof=1)
    assert far["final"] == 150 and far["final_ci_low"] == 0.0  # 150 - 12.7 × 205 / √2 < 0: clipped at 0
    assert far["final_ci_high"] == pytest.approx(150 + T_975_1 * std / math.sqrt(2))  # > 1: a nats range
    assert far["final_test_recon_ci_low"] == 0.0 and far["final_test_recon_ci_high"] > 1000
    stats_ = vae_tables["epoch_stats"].set_index(["optimizer", "epoch", "metric"])
    assert stats_.loc[("Far", 3, "test_neg_elbo"), "ci_low"] == 0.0
    assert stats_.loc[("Far", 3, "test_neg_elbo"), "ci_high"] == pytest.approx(far["final_ci_high"])


def test_a_problem_outside_the_article_gets_no_claims_and_the_problems_table_lists_it(vae_tables):
    claims = vae_tables["article_claims"]
    assert claims.empty and list(claims.columns) == ["problem", "claim", "compared", "measured", "verdict"]
    problems = vae_tables["problems"]
    assert problems.to_dict("records") == [{
        "problem": VAE, "dataset": "mnist", "data_source": None, "model": "vae", "kind": "vae",
        "primary": "test_neg_elbo", "higher_is_better": False, "target": 150.0, "title": VAE, "runs": 10}]


def test_separation_from_the_best_compares_seeds_of_the_same_problem_only():
    finals = {(CLS, "A"): [0.90, 0.91, 0.92], (CLS, "B"): [0.50, 0.51, 0.52],
              (VAE, "A"): [100.0, 101.0, 102.0], (VAE, "B"): [100.5, 101.5, 99.0]}
    seeds = pd.DataFrame([{"problem": p, "optimizer": o, "seed": s, "final": v, "best": v, "diverged": False,
                           "reached_target": True, "epochs_to_target": 1, "seconds_to_target": 1.0,
                           "mean_epoch_seconds": 1.0}
                          for (p, o), values in finals.items() for s, v in enumerate(values)])
    problems = study_problems(**{CLS: plan_problem(CLS), VAE: plan_problem(VAE)})
    summary = aggregate.optimizer_summary(seeds, problems).set_index(["problem", "optimizer"])
    assert summary["rank"].to_dict() == {(CLS, "A"): 1, (CLS, "B"): 2, (VAE, "B"): 1, (VAE, "A"): 2}
    # CLS: B's 0.51 ± 0.01 is 0.4 below A's; VAE: A's 101 and B's 100.3 overlap (Welch p = 0.26)
    assert summary["separated_from_best"].to_dict() == {(CLS, "A"): False, (CLS, "B"): True,
                                                        (VAE, "B"): False, (VAE, "A"): False}


# ---------------------------------------------------------------- across problems
def test_two_problems_give_the_performance_tables_computed_by_hand(tmp_path):
    runs = [write_run(tmp_path, "A", 0, [0.5, 0.7, 0.8], seconds=10.0),    # target 0.7 at epoch 2: 20 s
            write_run(tmp_path, "A", 1, [0.6, 0.75, 0.9], seconds=10.0),   # epoch 2: 20 s
            write_run(tmp_path, "B", 0, [0.3, 0.5, 0.72], seconds=10.0),   # epoch 3: 30 s
            write_run(tmp_path, "B", 1, [0.3, 0.4, 0.5], seconds=10.0),    # never
            write_vae_run(tmp_path, "A", 0, [200, 140, 120]),              # target 150 at epoch 2: 20 s
            write_vae_run(tmp_path, "A", 1, [190, 160, 130]),              # epoch 3: 30 s
            write_vae_run(tmp_path, "B", 0, [170, 145, 100], seconds=5.0),  # epoch 2: 10 s
            write_vae_run(tmp_path, "B", 1, [180, 150, 110], seconds=5.0)]  # epoch 2: 10 s
    problems = {CLS: plan_problem(CLS, target=0.7), VAE: plan_problem(VAE, target=150.0)}
    tables = aggregate.aggregate_train(plan_of(runs, problems=problems), tmp_path / "tables")
    ratios = tables["performance_ratios"].set_index(["measure", "problem", "optimizer"])
    # median cost per problem × optimizer, ratio to the problem's best (∞: at least half the seeds failed)
    expected = {("time", CLS, "A"): (20, 1), ("time", CLS, "B"): (math.inf, math.inf),
                ("time", VAE, "A"): (25, 2.5), ("time", VAE, "B"): (10, 1),
                ("epochs", CLS, "A"): (2, 1), ("epochs", CLS, "B"): (math.inf, math.inf),
                ("epochs", VAE, "A"): (2.5, 1.25), ("epochs", VAE, "B"): (2, 1),
                ("metric", CLS, "A"): (0.85, 1), ("metric", CLS, "B"): (0.61, 0.85 / 0.61),  # best / value
                ("metric", VAE, "A"): (125, 125 / 105), ("metric", VAE, "B"): (105, 1)}  # value / best
    assert len(ratios) == len(expected)
    for key, (cost, ratio) in expected.items():
        assert (ratios.loc[key, "cost"], ratios.loc[key, "ratio"]) == (pytest.approx(cost), pytest.approx(ratio)), key
    assert list(tables["performance_ratios"].columns[:3]) == ["measure", "problem", "optimizer"]
    profile = tables["performance_profile"].query("measure == 'time'").set_index(["optimizer", "tau"])["fraction"]
    assert profile.to_dict() == {("A", 1.0): 0.5, ("A", 2.5): 1.0, ("A", 4.0): 1.0,
                                 ("B", 1.0): 0.5, ("B", 2.5): 0.5, ("B", 4.0): 0.5}
    # AlgoPerf's score: each problem with r ≤ 4 adds (4 - r) / 3 / 2 problems
    score = tables["profile_score"].set_index(["measure", "optimizer"])["score"]
    assert score[("time", "A")] == pytest.approx(3 / 6 + 1.5 / 6) and score[("time", "B")] == pytest.approx(0.5)
    assert score[("epochs", "A")] == pytest.approx(3 / 6 + 2.75 / 6) and score[("epochs", "B")] == pytest.approx(0.5)
    assert score[("metric", "A")] == pytest.approx(3 / 6 + (4 - 125 / 105) / 6)
    assert score[("metric", "B")] == pytest.approx((4 - 0.85 / 0.61) / 6 + 3 / 6)
    ranks = tables["problem_ranks"].set_index(["problem", "optimizer"])
    assert ranks.loc[(CLS, "A"), "rank"] == 1 and ranks.loc[(VAE, "B"), "rank"] == 1  # each in its direction
    assert ranks.loc[(CLS, "B"), "failures"] == 1 and ranks.loc[(VAE, "A"), "failures"] == 0
    assert ranks.loc[(VAE, "A"), "mean"] == 125 and ranks.loc[(CLS, "B"), "mean"] == pytest.approx(0.61)
    summary = tables["rank_summary"].set_index("optimizer")
    assert summary["mean_rank"].to_dict() == {"A": 1.5, "B": 1.5} and summary["first"].to_dict() == {"A": 1, "B": 1}
    ranked = tables["optimizer_summary"].set_index(["problem", "optimizer"])["rank"]
    assert ranked.to_dict() == {(CLS, "A"): 1, (CLS, "B"): 2, (VAE, "B"): 1, (VAE, "A"): 2}
    assert tables["problems"]["runs"].tolist() == [4, 4]


# ---------------------------------------------------------------- the tuned comparison, per problem
def write_trial(root, problem, optimizer, trial, lr, columns, diverged=False):
    folder = root / problem / optimizer / f"trial{trial}"
    folder.mkdir(parents=True)
    frame = pd.DataFrame({"epoch": [1, 2], **columns, "diverged": [False, diverged]})
    frame.to_csv(folder / "metrics.csv", index=False)
    return Trial(problem=problem, optimizer=optimizer, trial=trial, setting={"lr": lr}, dir=str(folder), spec={})


def test_the_tuned_tables_select_rank_and_compare_per_problem(tmp_path):
    def runs(root, cls, vae):
        return ([write_run(root, o, s, acc, seconds=10.0) for (o, s), acc in cls.items()]
                + [write_vae_run(root, o, s, v) for (o, s), v in vae.items()])

    default = runs(tmp_path / "default", {("A", 0): [0.5, 0.6, 0.7], ("A", 1): [0.5, 0.6, 0.72],
                                          ("B", 0): [0.5, 0.7, 0.8], ("B", 1): [0.5, 0.7, 0.82]},
                   {("A", 0): [300, 250, 200], ("A", 1): [300, 250, 210], ("B", 0): [300, 200, 150],
                    ("B", 1): [300, 200, 160]})
    finals = runs(tmp_path / "tuned", {("A", 0): [0.6, 0.8, 0.9], ("A", 1): [0.6, 0.8, 0.88],
                                       ("B", 0): [0.5, 0.6, 0.7], ("B", 1): [0.5, 0.6, 0.72]},
                  {("A", 0): [200, 150, 130], ("A", 1): [200, 150, 140], ("B", 0): [200, 180, 160],
                   ("B", 1): [200, 180, 170]})
    root = tmp_path / "trials"
    acc = {"val_loss": [1.0, 1.0]}
    elbo = {"val_recon": [1.0, 1.0], "val_kl": [1.0, 1.0]}
    trials = [write_trial(root, CLS, "A", 0, 0.1, {**acc, "val_acc": [0.5, 0.6]}),
              write_trial(root, CLS, "A", 1, 0.01, {**acc, "val_acc": [0.5, 0.7]}),
              write_trial(root, CLS, "B", 0, 0.1, {**acc, "val_acc": [0.4, 0.8]}),
              write_trial(root, CLS, "B", 1, 0.01, {**acc, "val_acc": [0.3, 0.5]}),
              write_trial(root, VAE, "A", 0, 0.1, {**elbo, "val_neg_elbo": [300, 250]}),
              write_trial(root, VAE, "A", 1, 0.01, {**elbo, "val_neg_elbo": [240, 260]}),
              write_trial(root, VAE, "B", 0, 0.1, {**elbo, "val_neg_elbo": [300, np.nan]}, diverged=True),
              write_trial(root, VAE, "B", 1, 0.01, {**elbo, "val_neg_elbo": [280, 270]})]
    problems = {CLS: plan_problem(CLS, target=0.7), VAE: plan_problem(VAE, target=150.0)}
    selections = {p: {o: str(tmp_path / f"{p}-{o}.json") for o in "AB"} for p in problems}
    stage = TuneStage(optimizers=["A", "B"], split_files={}, validation_size=0, split_seed=0, select_by="final_val",
                      sampler="grid", spaces={o: {"lr": {"low": 0.01, "high": 0.1}} for o in "AB"}, trials=trials,
                      selections=selections, finals=finals)
    plan = plan_of(default, problems=problems, tune=stage)
    aggregate.aggregate_train(plan, tmp_path / "tables")
    for problem, paths in selections.items():
        for optimizer, path in paths.items():
            tune.write_selection(plan, optimizer, path, problem)
    tables = aggregate.aggregate_tune(plan, tmp_path / "tables")
    assert list(tables) == list(files.TUNE_TABLES)
    written = sorted((tmp_path / "tables").iterdir())
    assert written == sorted(files.table_files(tmp_path / "tables", files.TRAIN_TABLES + files.TUNE_TABLES))
    chosen = tables["tune_selection"].set_index(["problem", "optimizer"])["trial"].to_dict()
    assert chosen == {(CLS, "A"): 1, (CLS, "B"): 0, (VAE, "A"): 0, (VAE, "B"): 1}  # VAE: the lowest finished
    selected = tables["tune_trials"].query("selected")
    picked = set(zip(selected["problem"], selected["optimizer"], selected["trial"]))
    assert picked == {(p, o, t) for (p, o), t in chosen.items()}
    curves = tables["budget_curves"].set_index(["problem", "optimizer", "k"])
    assert curves.loc[(VAE, "B", 1), "expected_best"] == math.inf and curves.loc[(VAE, "B", 2), "expected_best"] == 270
    assert curves.loc[(VAE, "A", 1), "expected_best"] == 255 and curves.loc[(VAE, "A", 1), "rank"] == 1
    assert curves.loc[(CLS, "B", 2), "expected_best"] == 0.8 and curves.loc[(CLS, "B", 2), "rank"] == 1
    tuned = tables["tuned_optimizer_summary"].set_index(["problem", "optimizer"])
    assert tuned["rank"].to_dict() == {(CLS, "A"): 1, (CLS, "B"): 2, (VAE, "A"): 1, (VAE, "B"): 2}
    assert tuned.loc[(VAE, "A"), "final"] == 135 and tuned.loc[(CLS, "A"), "final"] == pytest.approx(0.89)
    ranking = tables["rankings"].set_index(["problem", "optimizer"])
    assert ranking.loc[(VAE, "A"), ["rank_default", "rank_tuned"]].tolist() == [2, 1]
    assert ranking.loc[(VAE, "A"), ["final_default", "final_tuned"]].tolist() == [205, 135]
    assert ranking.loc[(CLS, "B"), ["rank_default", "rank_tuned"]].tolist() == [1, 2]
    assert ranking.loc[(CLS, "B"), "metric"] == "test_acc" and ranking.loc[(VAE, "B"), "metric"] == "test_neg_elbo"
    claims = tables["tuned_claims"]
    assert (claims["problem"] == CLS).all() and (claims["verdict"] == "not tested").all() and len(claims) == 5
    runs = tables["tuned_runs"].set_index(["problem", "optimizer", "seed"])
    # the planned spec of each final has its own problem's selection applied: VAE's B took trial 1 (lr 0.01)
    # (these hand-made run.json files record no selected_trial, so that key differs too)
    assert runs.loc[(VAE, "A", 0), "differences"] == "selected_trial: None recorded, 0 in the config"
    assert runs.loc[(VAE, "B", 0), "differences"] == ("optimizer.kwargs.lr: 0.1 recorded, 0.01 in the config; "
                                                      "selected_trial: None recorded, 1 in the config")


# ---------------------------------------------------------------- the runs as recorded
def test_runs_table_shows_what_each_run_recorded_and_flags_a_config_that_differs(tmp_path):
    same = write_run(tmp_path, "SGD", 0, [0.5, 0.6, 0.7])
    changed = write_run(tmp_path, "SGD", 1, [0.5, 0.6, 0.7])
    changed = dataclasses.replace(changed, spec={**changed.spec, "optimizer": {"class": "SGD", "kwargs": {"lr": 0.5}}})
    table = aggregate.runs_table([same, changed]).set_index("seed")
    assert table.loc[0, "kwargs"] == '{"lr": 0.1}' and table.loc[1, "kwargs"] == '{"lr": 0.1}'  # as recorded
    assert bool(table.loc[0, "matches_config"]) and not bool(table.loc[1, "matches_config"])
    assert table.loc[1, "differences"] == "optimizer.kwargs.lr: 0.1 recorded, 0.5 in the config"
    assert (table.loc[0, "train_images"], table.loc[0, "test_images"]) == (300, 100)


def test_a_run_of_the_same_plugin_file_in_another_folder_matches_the_config(tmp_path):
    """Issue 37.4: study 2 (its own copy of adabelief.py) fetched study 1's runs from the store, and its report
    warned that they "were trained with other settings than the configuration now says": only the folder of
    the file differed. An edit of the file still differs."""
    code = {"file": "sign.py", "sha256": "0123456789abcdef"}
    ran = write_run(tmp_path, "Sign", 0, [0.5, 0.6, 0.7])
    recorded = json.loads(Path(ran.file("run.json")).read_text())
    recorded["spec"]["optimizer"] = {"class": "/home/a/study1/opt/sign.py:Sign", "code": code}
    Path(ran.file("run.json")).write_text(json.dumps(recorded))
    same = dataclasses.replace(ran, spec={**ran.spec, "optimizer": {"class": "/b/study2/opt/sign.py:Sign",
                                                                    "code": code}})
    edited = dataclasses.replace(same, spec={**same.spec, "optimizer": {**same.spec["optimizer"],
                                                                        "code": {**code, "sha256": "f" * 16}}})
    assert aggregate.runs_table([same])["matches_config"].tolist() == [True]
    assert aggregate.runs_table([edited])["differences"].tolist() == [
        "optimizer.code.sha256: '0123456789abcdef' recorded, 'ffffffffffffffff' in the config"]


# ---------------------------------------------------------------- descent
def test_descent_reproduction_pivots_the_article_runs(tmp_path):
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
    runs = []
    for i, frame in enumerate([pd.DataFrame(rows[:1]), pd.DataFrame(rows[1:])]):  # one summary.csv per run
        (tmp_path / f"run{i}").mkdir()
        frame.to_csv(tmp_path / f"run{i}" / "summary.csv", index=False)
        runs.append(DescentRun("article", "ackley", "m", f"g{i}", str(tmp_path / f"run{i}"), "figure.png", {}))
    tables = aggregate.aggregate_descent(Plan("results", {}, {}, [], runs, {}), tmp_path / "tables")
    assert len(tables["descent_runs"]) == 3 and tables["descent_reproduction"].equals(table)
    written = sorted((tmp_path / "tables").iterdir())
    assert written == sorted(files.table_files(tmp_path / "tables", files.DESCENT_TABLES))




def test_times_to_target_have_intervals_clipped_at_zero_and_unbounded_above():
    # two seeds reaching the target after 1 and 9 epochs (10 s and 90 s): mean 5 ± 12.71 × 5.66 / √2 = ± 50.8,
    # a time's interval stops at 0 (optimbench.runs.POSITIVE) and is not clipped above (no metric's range)
    seeds = pd.DataFrame([{"problem": CLS, "optimizer": "A", "seed": s, "final": 0.8, "best": 0.8, "diverged": False,
                           "reached_target": True, "epochs_to_target": e, "seconds_to_target": 10.0 * e,
                           "mean_epoch_seconds": 10.0} for s, e in enumerate([1, 9])])
    row = aggregate.optimizer_summary(seeds, study_problems(**{CLS: plan_problem(CLS)})).iloc[0]
    half = T_975_1 * np.std([1, 9], ddof=1) / math.sqrt(2)
    assert half > 5
    assert (row["epochs_to_target"], row["epochs_to_target_ci_low"]) == (5, 0.0)
    assert row["epochs_to_target_ci_high"] == pytest.approx(5 + half)
    assert (row["seconds_to_target"], row["seconds_to_target_ci_low"]) == (50, 0.0)
    assert row["seconds_to_target_ci_high"] == pytest.approx(50 + 10 * half)


def test_a_run_never_evaluated_in_its_primary_metric_has_no_best_and_no_best_epoch():
    wide = pd.DataFrame({"problem": CLS, "optimizer": "A", "seed": 0, "epoch": [1, 2], "test_acc": np.nan,
                         "test_loss": [1.0, 0.5], "epoch_seconds": 10.0, "diverged": False})
    row = aggregate.per_seed_summary(wide, study_problems(**{CLS: plan_problem(CLS)})).iloc[0]
    assert np.isnan(row["best"]) and np.isnan(row["best_epoch"]) and np.isnan(row["final"])
    assert row["best_test_loss"] == 0.5 and not row["reached_target"]


def test_seed_rows_are_in_run_order_and_carry_dataset_and_model_even_for_one_epoch_and_one_seed():
    # wide given out of order; one-epoch runs; optimizer A has a single seed
    runs = [("B", 1, 0.4), ("B", 0, 0.6), ("A", 0, 0.9)]
    wide = pd.DataFrame([{"problem": CLS, "optimizer": o, "seed": s, "dataset": f"d{o}", "model": f"m{o}", "epoch": 1,
                          "test_acc": v, "test_loss": 1.0, "epoch_seconds": 10.0, "diverged": False}
                         for o, s, v in runs])
    problems = study_problems(**{CLS: plan_problem(CLS)})
    seeds = aggregate.per_seed_summary(wide, problems)
    assert seeds[["optimizer", "seed", "dataset", "model", "final"]].values.tolist() == [
        ["A", 0, "dA", "mA", 0.9], ["B", 0, "dB", "mB", 0.6], ["B", 1, "dB", "mB", 0.4]]
    summary = aggregate.optimizer_summary(seeds, problems)
    assert summary[["optimizer", "dataset", "model", "seeds", "rank"]].values.tolist() == [
        ["A", "dA", "mA", 1, 1], ["B", "dB", "mB", 2, 2]]


def test_optimizer_summary_has_exactly_its_columns_and_tied_means_share_the_smaller_rank():
    finals = {"C": [0.1, 0.2], "B": [0.8, 0.8], "A": [0.7, 0.9]}  # A and B tie at a mean of 0.8
    seeds = pd.DataFrame([{"problem": CLS, "optimizer": o, "seed": s, "final": v, "best": v, "final_test_acc": v,
                           "best_test_acc": v, "diverged": False, "reached_target": True, "epochs_to_target": 1,
                           "seconds_to_target": 1.0, "mean_epoch_seconds": 1.0}
                          for o, values in finals.items() for s, v in enumerate(values)])
    summary = aggregate.optimizer_summary(seeds, study_problems(**{CLS: plan_problem(CLS)}))
    stats_of = ["final", "best", "epochs_to_target", "seconds_to_target", "final_test_acc", "best_test_acc"]
    assert list(summary.columns) == (
        ["problem", "optimizer", "metric", "higher_is_better", "target", "seeds", "divergences",
         "runs_reaching_target", "mean_epoch_seconds"]
        + [f"{c}{s}" for c in stats_of for s in ("", "_n", "_std", "_ci_low", "_ci_high")]
        + ["rank", "separated_from_best"])
    assert summary.index.tolist() == [0, 1, 2]
    assert summary["optimizer"].tolist() == ["A", "B", "C"] and summary["rank"].tolist() == [1, 1, 3]
    assert summary["separated_from_best"].tolist() == [False, False, True]


# ---------------------------------------------------------------- names that read like numbers (issue 27.5)
ODD_NAMES = ["0.1", "1e3", "007", "True", "nan", "NA"]  # a float, a float, an int, a bool, NaN, NaN to pandas


def _tables_as_read(folder: Path, names) -> dict:
    """Every table written, CSV and Parquet, read back through the one reader (optimbench.tables.read_table)."""
    return {(name, suffix): read_table(folder / f"{name}.{suffix}") for name in names for suffix in ("csv", "parquet")}


def test_descent_names_that_read_like_numbers_stay_strings_in_every_table(tmp_path):
    """Was: methods named "0.1" made aggregate_descent stop with ArrowTypeError (the summaries read back as
    numbers). Groups and methods named like numbers, booleans and missing values, through descent's own files."""
    runs = []
    for i, name in enumerate(ODD_NAMES):
        spec = {"group": name, "function": "ackley", "method": name, "gradient": "central", "kind": "article",
                "update": "vanilla", "lr": 1e-2, "h": 1e-3, "tol": 1e-3, "max_epochs": 3, "start": [-2.0, -2.0]}
        folder = tmp_path / f"run{i}"
        descent.main(["--spec", json.dumps(spec), "--trajectory", str(folder / "trajectory.csv"),
                      "--summary", str(folder / "summary.csv")])
        runs.append(DescentRun(name, "ackley", name, "central", str(folder), "figure.png", spec))
        trajectory = read_table(folder / "trajectory.csv")
        assert set(trajectory["method"]) == {name} and set(trajectory["group"]) == {name}
    aggregate.aggregate_descent(Plan("results", {}, {}, [], runs, {}), tmp_path / "tables")
    for (name, suffix), table in _tables_as_read(tmp_path / "tables", files.DESCENT_TABLES).items():
        if name == "descent_runs":
            assert table["method"].tolist() == ODD_NAMES and table["group"].tolist() == ODD_NAMES, suffix
        else:
            assert sorted(table["method"]) == sorted(ODD_NAMES), (name, suffix)


def test_optimizer_and_problem_names_that_read_like_numbers_stay_strings_in_every_table(tmp_path):
    runs = [write_run(tmp_path / "runs", name, seed, [0.3 + 0.1 * i, 0.5, 0.6 + 0.01 * seed])
            for i, name in enumerate(ODD_NAMES) for seed in (0, 1)]
    aggregate.aggregate_train(plan_of(runs), tmp_path / "tables")
    names = [p.stem for p in (tmp_path / "tables").glob("*.parquet")]
    assert "optimizer_summary" in names and "seed_summary" in names
    for (name, suffix), table in _tables_as_read(tmp_path / "tables", names).items():
        if "optimizer" in table:
            assert set(ODD_NAMES) <= set(table["optimizer"].dropna()) <= {*ODD_NAMES, "all"}, (name, suffix)
            assert all(isinstance(v, str) for v in table["optimizer"].dropna()), (name, suffix)
    summary = read_table(tmp_path / "tables" / "optimizer_summary.csv")
    assert summary.set_index("optimizer").loc["007", "seeds"] == 2  # "007", not 7


def test_the_reader_keeps_identity_columns_as_written_and_guesses_the_rest(tmp_path):
    frame = pd.DataFrame({"problem": ["1e3", "NA"], "optimizer": ["True", "nan"], "method": ["007", ""],
                          "value": ["1.5", "NA"], "seed": [0, 1]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    table = read_table(tmp_path / "t.csv")
    assert table["problem"].tolist() == ["1e3", "NA"] and table["optimizer"].tolist() == ["True", "nan"]
    assert table["method"].iloc[0] == "007" and pd.isna(table["method"].iloc[1])  # an empty field: no name
    assert table["value"].iloc[0] == 1.5 and np.isnan(table["value"].iloc[1]) and table["seed"].tolist() == [0, 1]
    pd.DataFrame({"method": [0.1, 2.0]}).to_parquet(tmp_path / "old.parquet")
    with pytest.raises(ValueError, match="column 'method' holds non-string names"):
        read_table(tmp_path / "old.parquet")


def test_every_identity_key_is_read_as_a_string():
    from optimbench import runs

    keys = set(runs.RUN_KEYS + runs.GROUP_KEYS + list(descent.IDENTITY)) - {"seed"}
    assert keys <= set(IDENTITY_COLUMNS)
