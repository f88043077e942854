"""The tuning stage: selection, budget curves, the learning-rate schedules, and the trainer's validation
and test modes."""

import dataclasses
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from optimbench import optim, split, train, tune
from optimbench.plan import Plan
from optimbench.runs import Trial, TuneStage

from helpers import plan_problem


# ---------------------------------------------------------------- selection
def plan_of(trials=(), select_by="final_val", spaces=None) -> Plan:
    """A plan of the two problems whose tuning stage holds `trials`."""
    stage = TuneStage(optimizers=["A"], split_files={}, validation_size=0, split_seed=0, select_by=select_by,
                      sampler="grid", spaces=spaces or {}, trials=list(trials), selections={}, finals=[])
    settings = {"problems": {name: plan_problem(name) for name in ("digits-resnet18", "digits-vae")}}
    return Plan("results", {}, {}, [], [], settings, stage)


PROBLEMS = plan_of().problems
CLS, VAE = PROBLEMS["digits-resnet18"], PROBLEMS["digits-vae"]


def trials(scores, diverged=None, problem="digits-resnet18"):
    diverged = diverged or [False] * len(scores)
    return pd.DataFrame({"problem": problem, "optimizer": "A", "trial": range(len(scores)),
                         "lr": [10.0 ** -k for k in range(len(scores))],
                         "score": [np.nan if d else s for s, d in zip(scores, diverged)], "diverged": diverged})


def test_selection_takes_the_best_score_with_ties_to_the_earlier_trial():
    assert tune.select(trials([0.5, 0.9, 0.7]), "final_val_acc", CLS)["trial"] == 1
    assert tune.select(trials([0.5, 0.9, 0.9]), "final_val_acc", CLS)["trial"] == 1
    assert tune.select(trials([0.5, 0.9, 0.7]), "final_val", CLS)["trial"] == 1  # the primary: accuracy
    assert tune.select(trials([0.5, 0.2, 0.7]), "lowest_val_loss", CLS)["trial"] == 1  # a loss: lower wins
    assert tune.select(trials([300, 200, 250]), "final_val", VAE)["trial"] == 1  # a negative ELBO: lower wins
    assert tune.select(trials([300, 200, 200]), "best_val", VAE)["trial"] == 1


def test_a_diverged_trial_loses_to_any_finished_one():
    assert tune.select(trials([0.9, 0.1, 0.2], diverged=[True, False, False]), "final_val_acc", CLS)["trial"] == 2
    assert tune.select(trials([0.9, 0.1], diverged=[True, False]), "lowest_val_loss", CLS)["trial"] == 1
    assert tune.select(trials([0.9, 0.1], diverged=[True, True]), "final_val_acc", CLS)["trial"] == 0
    assert tune.select(trials([100, 400], diverged=[True, False]), "final_val", VAE)["trial"] == 1


def test_a_selection_at_the_edge_of_the_range_is_flagged():
    table = trials([0.9, 0.5, 0.1])  # the largest lr tried (trial 0: lr 1) wins
    space = {"lr": {"low": 0.01, "high": 1.0}}
    assert tune.at_edge(table, tune.select(table, "final_val_acc", CLS), space) == ["lr=1 (highest tried)"]
    middle = trials([0.5, 0.9, 0.1])
    assert tune.at_edge(middle, tune.select(middle, "final_val_acc", CLS), space) == []


def test_trial_score_by_criterion_and_divergence():
    metrics = pd.DataFrame({"val_acc": [0.2, 0.6, 0.5], "val_loss": [2.0, 1.0, 1.5], "diverged": [False] * 3})
    assert tune.trial_score(metrics, "final_val_acc", CLS) == 0.5
    assert tune.trial_score(metrics, "best_val_acc", CLS) == 0.6
    assert tune.trial_score(metrics, "final_val", CLS) == 0.5 and tune.trial_score(metrics, "best_val", CLS) == 0.6
    assert tune.trial_score(metrics, "lowest_val_loss", CLS) == 1.0
    assert math.isnan(tune.trial_score(metrics.assign(diverged=[False, False, True]), "best_val_acc", CLS))
    vae = pd.DataFrame({"val_neg_elbo": [300.0, 200.0, 250.0], "val_kl": [9.0, 8.0, 7.0], "diverged": [False] * 3})
    assert tune.trial_score(vae, "final_val", VAE) == 250
    assert tune.trial_score(vae, "best_val", VAE) == 200  # the lowest


def test_a_criterion_the_problem_lacks_names_criterion_problem_and_the_valid_choices():
    metrics = pd.DataFrame({"val_neg_elbo": [300.0], "diverged": [False]})
    with pytest.raises(ValueError, match="'final_val_acc' reads val_acc, which problem digits-vae does not have; "
                                         "valid criteria for digits-vae: final_val, best_val$"):
        tune.trial_score(metrics, "final_val_acc", VAE)
    with pytest.raises(ValueError, match="'lowest_val_loss'.*digits-vae"):
        tune.select(trials([1.0]), "lowest_val_loss", VAE)


def write_trial(root, problem, trial, lr, columns, diverged=False):
    """A finished trial of optimizer A (metrics.csv over two epochs); returns its plan entry."""
    folder = root / problem / "A" / f"trial{trial}"
    folder.mkdir(parents=True)
    frame = pd.DataFrame({"epoch": [1, 2], **columns, "diverged": [False, diverged]})
    frame.to_csv(folder / "metrics.csv", index=False)
    return Trial(problem=problem, optimizer="A", trial=trial, setting={"lr": lr}, dir=str(folder), spec={})


def test_trials_are_scored_and_selected_per_problem_in_its_direction(tmp_path):
    vae = {"val_recon": [270.0, 225.0], "val_kl": [30.0, 25.0]}
    trials = [write_trial(tmp_path, "digits-vae", 0, 0.1, {"val_neg_elbo": [300.0, 250.0], **vae}),
              write_trial(tmp_path, "digits-vae", 1, 0.01, {"val_neg_elbo": [240.0, 260.0], **vae}),
              write_trial(tmp_path, "digits-resnet18", 0, 0.1, {"val_loss": [1.0, 0.9], "val_acc": [0.5, 0.6]}),
              write_trial(tmp_path, "digits-resnet18", 1, 0.01, {"val_loss": [1.0, 0.8], "val_acc": [0.5, 0.7]})]
    plan = plan_of(trials, "final_val", {"A": {"lr": {"low": 0.001, "high": 1.0}}})
    table = tune.trials_table(plan).set_index(["problem", "trial"])
    assert table["score"].to_dict() == {("digits-vae", 0): 250, ("digits-vae", 1): 260,
                                        ("digits-resnet18", 0): 0.6, ("digits-resnet18", 1): 0.7}
    assert table.loc[("digits-vae", 1), "best_val"] == 240
    assert table.loc[("digits-vae", 1), "val_metric"] == "val_neg_elbo"
    assert table.loc[("digits-vae", 1), "final_val_kl"] == 25 and table.loc[("digits-resnet18", 0), "best_val"] == 0.6
    chosen = tune.write_selection(plan, "A", tmp_path / "vae.json", problem="digits-vae")
    assert (chosen["problem"], chosen["trial"], chosen["score"]) == ("digits-vae", 0, 250)
    assert chosen["setting"] == {"lr": 0.1}
    assert chosen["at_edge"] == ["lr=0.1 (highest tried)"] and json.loads((tmp_path / "vae.json").read_text()) == chosen
    # what the select rule runs: the part of the plan this selection reads, inline (one problem: none named)
    tune.main(["select", "--plan", plan.selection_plan("digits-vae", "A").to_json(), "--optimizer", "A",
               "--out", str(tmp_path / "rule.json")])
    assert json.loads((tmp_path / "rule.json").read_text()) == chosen
    assert tune.write_selection(plan, "A", tmp_path / "cls.json", problem="digits-resnet18")["trial"] == 1
    best = dataclasses.replace(plan, tune=dataclasses.replace(plan.tune, select_by="best_val"))
    assert tune.write_selection(best, "A", tmp_path / "best.json", problem="digits-vae")["trial"] == 1  # 240
    with pytest.raises(ValueError, match="name the one to select on"):
        tune.write_selection(plan, "A", tmp_path / "which.json")


# ---------------------------------------------------------------- budget curves
def test_expected_max_equals_brute_force_over_every_subset():
    values = [0.3, 0.9, 0.1, 0.5, 0.7]
    for k in range(1, 6):
        subsets = list(itertools.combinations(values, k))
        assert tune.expected_max(values, k) == pytest.approx(np.mean([max(s) for s in subsets]))
    with pytest.raises(ValueError):
        tune.expected_max(values, 6)


def test_budget_curves_rank_optimizers_at_each_k_and_score_divergence_worst():
    table = pd.concat([trials([0.1, 0.9, 0.2]), trials([0.5, 0.6, 0.0], diverged=[False, False, True])
                       .assign(optimizer="B")])
    curves = tune.budget_curves(table, "final_val_acc", PROBLEMS).set_index(["optimizer", "k"])
    assert curves.loc[("A", 1), "expected_best"] == pytest.approx(0.4)
    assert curves.loc[("B", 1), "expected_best"] == pytest.approx(1.1 / 3)  # the diverged trial counts 0
    assert curves.loc[("A", 3), "expected_best"] == 0.9 and curves.loc[("B", 3), "expected_best"] == 0.6
    assert (curves.loc[("A", 1), "rank"], curves.loc[("B", 1), "rank"]) == (1, 2)


def test_budget_curves_of_a_lower_is_better_problem_expect_the_lowest_and_a_diverged_trial_costs_infinity():
    table = pd.concat([trials([100.0, 200.0, 0.0], diverged=[False, False, True], problem="digits-vae"),
                       trials([150.0, 160.0, 170.0], problem="digits-vae").assign(optimizer="B"),
                       trials([0.1, 0.9, 0.2])])  # another problem: ranked on its own
    curves = tune.budget_curves(table, "final_val", PROBLEMS).set_index(["problem", "optimizer", "k"])
    vae = curves.loc["digits-vae"]
    assert vae.loc[("A", 1), "expected_best"] == math.inf  # a third of the draws is the diverged trial
    # best of 2 of {100, 200, ∞}: pairs (100, 200) → 100, (100, ∞) → 100, (200, ∞) → 200
    assert vae.loc[("A", 2), "expected_best"] == pytest.approx(400 / 3) and vae.loc[("A", 3), "expected_best"] == 100
    assert vae.loc[("B", 1), "expected_best"] == pytest.approx(160) and vae.loc[("B", 3), "expected_best"] == 150
    assert vae.loc[("B", 2), "expected_best"] == pytest.approx((150 + 150 + 160) / 3)
    assert [vae.loc[(o, k), "rank"] for o in "AB" for k in (1, 2, 3)] == [2, 1, 1, 1, 2, 2]  # lower: better
    assert (vae["metric"] == "val_neg_elbo").all() and not vae["higher_is_better"].any()
    assert curves.loc[("digits-resnet18", "A", 1), "rank"] == 1 and len(curves) == 9


# ---------------------------------------------------------------- schedules
@pytest.mark.parametrize("schedule", [None, "linear", "cosine", "warmup-cosine"])
def test_each_schedule_is_a_torch_scheduler_following_its_formula(schedule):
    total = 40
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    stepper = optim.lr_scheduler(schedule, optimizer, total)
    assert isinstance(stepper, torch.optim.lr_scheduler.LRScheduler)
    warm = optim.warmup_steps(total)
    for t in range(total + 1):
        if schedule is None:
            expected = 1.0
        elif schedule == "linear":
            expected = 1 - t / total
        elif schedule == "cosine":
            expected = 0.5 * (1 + math.cos(math.pi * t / total))
        else:
            expected = (t + 1) / (warm + 1) if t < warm else 0.5 * (1 + math.cos(math.pi * (t - warm) / (total - warm)))
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * expected, abs=1e-12), t
        optimizer.step()
        stepper.step()


# ---------------------------------------------------------------- the trainer's validation and test modes
def test_a_trial_trains_without_its_validation_images_and_never_sees_the_test_set(tiny_spec, synthetic_npz, tmp_path):
    split.write_split(synthetic_npz, 50, 0, tmp_path / "split.json")
    spec = {**tiny_spec, "train_subset": None, "validation": str(tmp_path / "split.json"), "test": "never"}
    metrics = train.run(spec, tmp_path / "trial", save_model=False)
    assert metrics["test_acc"].isna().all() and metrics["val_acc"].between(0, 1).all()
    assert not (tmp_path / "trial" / "model.pt").exists()
    info = json.loads((tmp_path / "trial" / "run.json").read_text())
    assert info["steps_per_epoch"] == math.ceil((300 - 50) / spec["batch_size"])  # 250 training images


def test_a_final_run_is_tested_once_after_its_last_epoch(tiny_spec, synthetic_npz, tmp_path):
    split.write_split(synthetic_npz, 50, 0, tmp_path / "split.json")
    spec = {**tiny_spec, "validation": str(tmp_path / "split.json"), "test": "final"}
    metrics = train.run(spec, tmp_path / "final")
    assert metrics["test_acc"].isna().tolist() == [True, False] and metrics["val_acc"].notna().all()


# ---------------------------------------------------------------- mutation-testing additions
def test_trial_score_final_is_the_last_epoch_not_the_second():
    metrics = pd.DataFrame({"val_acc": [0.2, 0.6, 0.5], "diverged": [False] * 3})
    assert tune.trial_score(metrics, "final_val_acc", CLS) == 0.5
    assert tune.trial_score(metrics, "best_val_acc", CLS) == 0.6


def test_select_and_expected_max_name_what_is_wrong():
    with pytest.raises(ValueError, match="^no trials to select from$"):
        tune.select(trials([]), "final_val_acc", CLS)
    with pytest.raises(ValueError, match=r"^k = 4 must be between 1 and the 3 values$"):
        tune.expected_max([1.0, 2.0, 3.0], 4)
    with pytest.raises(ValueError, match=r"^k = 0 must be between 1 and the 3 values$"):
        tune.expected_max([1.0, 2.0, 3.0], 0)


def test_at_edge_flags_the_lowest_and_highest_tried_and_skips_the_schedule_a_missing_kwarg_and_a_fixed_one():
    # trials 0..3: lr 1, 0.1, 0.01, 0.001; momentum fixed at 0.9; the schedule factor varies
    table = trials([0.1, 0.2, 0.3, 0.9]).assign(momentum=0.9, lr_schedule=[0.0, 1.0, 2.0, 3.0])
    space = {"lr_schedule": ["a", "b"], "absent": {"low": 0, "high": 1}, "momentum": {"low": 0.5, "high": 0.99},
             "lr": {"low": 1e-4, "high": 1.0}}
    lowest = tune.select(table, "final_val_acc", CLS)  # trial 3: the smallest lr, the largest schedule value
    assert tune.at_edge(table, lowest, space) == ["lr=0.001 (lowest tried)"]
    highest = tune.select(table.assign(score=[0.9, 0.2, 0.3, 0.1]), "final_val_acc", CLS)
    assert tune.at_edge(table, highest, space) == ["lr=1 (highest tried)"]


def test_budget_curves_list_problems_and_optimizers_in_the_order_of_the_trials_and_tied_ranks_take_the_smaller():
    table = pd.concat([trials([0.5, 0.7]).assign(optimizer="Z"), trials([0.7, 0.5]).assign(optimizer="B"),
                       trials([0.1, 0.2]).assign(optimizer="A"),
                       trials([300.0, 200.0], problem="digits-vae").assign(optimizer="Y")])
    table = pd.concat([table.iloc[6:], table.iloc[:6]])  # the VAE problem first
    curves = tune.budget_curves(table, "final_val", PROBLEMS)
    assert curves[["problem", "optimizer", "k"]].values.tolist() == [
        ["digits-vae", "Y", 1], ["digits-vae", "Y", 2], ["digits-resnet18", "Z", 1], ["digits-resnet18", "Z", 2],
        ["digits-resnet18", "B", 1], ["digits-resnet18", "B", 2], ["digits-resnet18", "A", 1],
        ["digits-resnet18", "A", 2]]
    # Z and B: the same two scores, so the same expected best (0.6, then 0.7): both rank 1, A third
    assert curves["rank"].tolist() == [1, 1, 1, 1, 1, 1, 3, 3]
    assert curves["expected_best"].tolist() == pytest.approx([250, 200, 0.6, 0.7, 0.6, 0.7, 0.15, 0.2])


def test_the_selection_table_reads_as_the_report_shows_it():
    chosen = {"trial": 3, "setting": {"lr": 0.1, "betas": [0.9, 0.99]}, "criterion": "final_val", "score": 0.8,
              "all_diverged": False, "at_edge": ["lr=0.1 (highest tried)", "eps=1e-08 (lowest tried)"]}
    table = tune.selection_table({"digits-resnet18": {"A": chosen}})
    assert table.to_dict("records") == [{
        "problem": "digits-resnet18", "optimizer": "A", "trial": 3, "setting": '{"betas": [0.9, 0.99], "lr": 0.1}',
        "criterion": "final_val", "score": 0.8, "all_trials_diverged": False,
        "at_edge": "lr=0.1 (highest tried); eps=1e-08 (lowest tried)"}]


def test_rankings_put_the_default_and_tuned_rankings_side_by_side_sorted_by_tuned_rank_then_name():
    def summary(rows):
        return pd.DataFrame([{"problem": p, "optimizer": o, "metric": "test_acc", "higher_is_better": True,
                              "rank": r, "final": f, "final_ci_low": f - 0.1, "final_ci_high": f + 0.1,
                              "separated_from_best": r > 1, "divergences": d, "seeds": 3}
                             for p, o, r, f, d in rows])
    default = summary([("P", "A", 1, 0.9, 0), ("P", "B", 2, 0.8, 1), ("P", "C", 3, 0.7, 0), ("O", "A", 1, 0.5, 0)])
    tuned = summary([("P", "A", 2, 0.85, 0), ("P", "B", 1, 0.95, 0), ("P", "D", 1, 0.95, 2), ("O", "A", 1, 0.6, 1)])
    table = tune.rankings(default, tuned)
    columns = ["rank", "final", "final_ci_low", "final_ci_high", "separated_from_best", "divergences"]
    assert list(table.columns) == (["problem", "optimizer", "metric", "higher_is_better"]
                                   + [f"{c}_default" for c in columns] + [f"{c}_tuned" for c in columns])
    assert table.index.tolist() == [0, 1, 2, 3, 4]
    # O before P; in P the tuned rank, ties (B, D) by name, C (not tuned) last
    expected = [["O", "A"], ["P", "B"], ["P", "D"], ["P", "A"], ["P", "C"]]
    assert table[["problem", "optimizer"]].values.tolist() == expected
    rows = table.set_index("optimizer").loc[["B", "D", "C"]]
    assert rows.loc["B", ["rank_default", "final_default", "divergences_default"]].tolist() == [2, 0.8, 1]
    assert rows.loc["B", ["rank_tuned", "final_tuned", "final_ci_low_tuned", "divergences_tuned"]].tolist() == [
        1, 0.95, pytest.approx(0.85), 0]
    assert np.isnan(rows.loc["D", "rank_default"]) and rows.loc["D", "divergences_tuned"] == 2
    assert np.isnan(rows.loc["C", "rank_tuned"]) and rows.loc["C", "rank_default"] == 3
