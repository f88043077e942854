"""The report's text, computed from hand-made tables: the ranking, the conclusions, the verdict counts,
the cost projection and the warning when the config differs from the runs; then the notebook, rendered
on a hand-made study (study_plan, study_tables: test_sections.py reuses them)."""

import re

import numpy as np
import pandas as pd

from optimbench import plots, render, report
from optimbench.focus import FOCUS_COLUMNS
from optimbench.metrics import Metric
from optimbench.plan import Plan
from optimbench.runs import StudyProblem, TuneStage

INF = float("inf")
ACC = Metric("test_acc", True, 0.0, 1.0)
NEG_ELBO = Metric("test_neg_elbo", False, 0.0, INF)
VAE_ENTRY = {"primary": "test_neg_elbo", "higher_is_better": False, "target": 120.0, "title": "digits / VAE",
             "kind": "vae", "metrics": [{"name": "test_neg_elbo", "higher_is_better": False, "low": 0.0, "high": None}]}
VAE = StudyProblem.from_summary("digits-vae", VAE_ENTRY)
CLS_ENTRY = {"primary": "test_acc", "higher_is_better": True, "target": 0.5, "title": "digits / ResNet18",
             "metrics": [{"name": "test_acc", "higher_is_better": True, "low": 0.0, "high": 1.0}]}


def stage(**fields) -> TuneStage:
    """A tuning stage as the plan gives it (no trials or runs: the report reads its settings)."""
    return TuneStage(**{"optimizers": ["A", "B"], "split_files": {}, "validation_size": 200, "split_seed": 0,
                        "select_by": "final_val", "sampler": "sobol", "spaces": {}, "trials": [], "selections": {},
                        "finals": [], **fields})


def summary():
    """Adam and SGD cannot be ordered (places 1-2); Boom failed on every seed (no mean: listed, place 3)."""
    return pd.DataFrame({
        "optimizer": ["Adam", "SGD", "Boom"], "rank": [1.0, 2.0, 3.0], "seeds": [3, 3, 3], "divergences": [0, 0, 3],
        "failed": [0, 0, 3], "failed_seeds": ["", "", "0, 1, 2"],
        "final": [0.91, 0.90, np.nan], "final_ci_low": [0.88, 0.85, np.nan], "final_ci_high": [0.94, 0.95, np.nan],
        "place_low": [1, 1, 3], "place_high": [2, 2, 3],
        "separated_from_best": [False, False, True], "best": [0.92, 0.93, 0.1]})


def vae_summary():
    """A lower-is-better problem: Adam's 98 nats beat SGD's 120 (SGD's seed 1 failed); Boom failed on every seed."""
    return pd.DataFrame({
        "problem": "digits-vae", "optimizer": ["Adam", "SGD", "Boom"], "rank": [1, 2, 3], "seeds": [3, 3, 3],
        "divergences": [0, 0, 3], "failed": [0, 1, 3], "failed_seeds": ["", "1", "0, 1, 2"],
        "metric": "test_neg_elbo", "higher_is_better": False,
        "final": [98.0, 120.0, np.nan], "final_ci_low": [95.5, 100.0, np.nan], "final_ci_high": [100.5, 140.0, np.nan],
        "place_low": [1, 2, 2], "place_high": [1, 3, 3],
        "separated_from_best": [False, True, True], "best": [97.0, 96.5, INF]})


def test_training_conclusion_names_who_shares_first_and_the_failed_runs_by_seed():
    text = report.training_conclusion(summary(), ACC)
    assert ("- Final test accuracy, higher is better: **Adam**, **SGD** can each be first; last in order **Boom** "
            "(every run failed).") in text
    assert "Best test accuracy at any epoch (mean over seeds of each run's best epoch): **SGD** (0.9300)." in text
    assert ("Failed runs (diverged, or ending more than 4× worse than their own best epoch; listed, scored 0, never "
            "averaged): Boom seeds 0, 1, 2 (3 of 3)") in text
    assert "best" not in text.split("\n")[0].lower()  # a shared place is never "the best"


def test_ranking_lists_every_optimizer_with_its_interval_and_shared_places():
    text = report.ranking(summary(), ACC, 0.95)
    assert text.startswith("Final test accuracy, higher is better: mean over the completed seeds with its 95% interval")
    lines = text.splitlines()[2:]
    assert lines == ["- places 1–2 (with SGD): **Adam**: 0.9100 [0.8800, 0.9400] over 3 completed seeds",
                     "- places 1–2 (with Adam): **SGD**: 0.9000 [0.8500, 0.9500] over 3 completed seeds",
                     "- place 3: **Boom**: no completed seed, **3 failed runs** (seeds 0, 1, 2; scored 0, not "
                     "averaged)"]


def test_a_vae_problem_speaks_of_negative_elbo_lower_is_better_and_never_of_accuracy():
    texts = {"ranking": report.ranking(vae_summary(), NEG_ELBO, 0.95),
             "conclusion": report.training_conclusion(vae_summary(), NEG_ELBO),
             "answer": report.problem_answer(vae_summary(), "digits / VAE", NEG_ELBO),
             "intro": report.problem_intro(VAE)}
    for name, text in texts.items():
        assert "negative ELBO" in text and "lower is better" in text, name
        assert "accuracy" not in text.lower(), name
    assert texts["ranking"].splitlines()[2:] == [
        "- place 1: **Adam**: 98.00 [95.50, 100.5] over 3 completed seeds",
        "- places 2–3 (with Boom): **SGD**: 120.0 [100.0, 140.0] over 2 completed seeds, **1 failed run** (seed 1; "
        "scored ∞, not averaged)",
        "- places 2–3 (with SGD): **Boom**: no completed seed, **3 failed runs** (seeds 0, 1, 2; scored ∞, not "
        "averaged)"]
    # the best epoch is the lowest value: SGD's 96.5
    assert "Best test negative ELBO at any epoch (mean over seeds of each run's best epoch): **SGD** (96.50)." \
        in texts["conclusion"]
    assert "last in order **Boom** (every run failed)" in texts["conclusion"]
    assert "SGD seed 1 (1 of 3), Boom seeds 0, 1, 2 (3 of 3)" in texts["conclusion"]
    assert texts["answer"] == ("- **digits / VAE** (final test negative ELBO, lower is better; mean over completed "
                               "seeds, 95% interval): first: **Adam** (Adam 98.00 [95.50, 100.5]), decided better "
                               "than every other; failed runs: SGD seed 1, Boom seeds 0, 1, 2.")
    assert "target: test negative ELBO ≤ 120" in texts["intro"] and "scores ∞ in test negative ELBO" in texts["intro"]
    columns = report.summary_columns(vae_summary().assign(final_test_kl=1.0, final_test_kl_ci_low=0.5))
    assert columns[:6] == ["rank", "optimizer", "seeds", "divergences", "metric", "final"]
    assert columns[-1] == "final_test_kl" and "final_test_kl_ci_low" not in columns


def test_profile_and_ranks_across_problems():
    scores = pd.DataFrame({"measure": ["time", "time", "metric", "metric"], "optimizer": ["SGD", "Adam", "SGD", "Adam"],
                           "score": [0.25, 0.75, 1.0, 0.5]})
    ranks_summary = pd.DataFrame({"optimizer": ["Adam", "SGD"], "mean_rank": [1.5, 1.5], "first": [1, 1],
                                  "possibly_first": [2, 1], "problems": [2, 2]})
    # the headline: the final primary metric's profile (report.HEADLINE), best first; with a focus, its place
    headline = report.profile_conclusion(scores, 2)
    assert headline.startswith("Performance-profile score by final primary metric over the 2 problems (area under")
    # scores with bootstrap intervals and places: SGD and Adam overlap on time (shared places), not on metric
    scores = scores.assign(score_low=[0.1, 0.5, 0.9, 0.4], score_high=[0.6, 0.9, 1.0, 0.6],
                           place_low=[1, 1, 1, 2], place_high=[2, 2, 1, 2])
    headline = report.profile_conclusion(scores, 2)
    assert headline.startswith("Performance-profile score by final primary metric over the 2 problems (area under")
    assert "higher is better" in headline and headline.endswith(
        "): SGD 1.0 [0.90, 1.0] (place 1), Adam 0.50 [0.40, 0.60] (place 2).")
    assert report.profile_conclusion(scores, 2, focus="Adam").endswith(
        "): Adam is alone in place 2. SGD 1.0 [0.90, 1.0] (place 1), Adam 0.50 [0.40, 0.60] (place 2).")
    timed = report.profile_conclusion(scores, 2, focus="SGD", measure="time")
    assert "SGD is in places 1–2, shared with Adam (the seeds cannot order them)." in timed
    assert "place 1 " not in timed  # a tie is never crowned
    lines = report.other_measures(scores, ranks_summary, 2).splitlines()
    assert lines[0].startswith("- Performance-profile score by seconds to target") and lines[0].endswith(
        "): Adam 0.75 [0.50, 0.90] (places 1–2), SGD 0.25 [0.10, 0.60] (places 1–2).")
    assert lines[1].startswith("- Mean rank over the 2 problems (1 = best, lower is better;") and lines[1].endswith(
        "): Adam 1.50 (first alone on 1, possibly first on 2), SGD 1.50 (first alone on 1, possibly first on 1).")
    assert len(lines) == 2  # no epochs measure in this table: no line for it
    ranks = pd.DataFrame({"problem": ["digits-vae", "digits-vae", "cls", "cls"],
                          "optimizer": ["Adam", "SGD", "SGD", "Adam"],
                          "rank": [1, 2, 1, 2], "rank_low": [1, 1, 1, 2], "rank_high": [2, 2, 1, 2]})
    problems = {"cls": StudyProblem.from_summary("cls", CLS_ENTRY), "digits-vae": VAE}
    assert report.problem_ranks_text(ranks, problems).splitlines()[2:] == [
        "- digits / ResNet18 (test accuracy, higher is better): SGD 1, Adam 2.",
        "- digits / VAE (test negative ELBO, lower is better): Adam 1–2 (with SGD), SGD 1–2 (with Adam)."]


def test_cost_projects_the_article_study_from_start_up_and_epochs():
    cost = pd.DataFrame([{"optimizer": "all", "unit": "GPU", "device": "H100", "runs": 6, "epochs": 24,
                          "device_seconds": 7200.0, "startup_device_seconds_per_run": 20.0,
                          "device_seconds_per_epoch": 30.0, "samples_per_second": 5000.0, "share": 0.25}])
    text = report.cost_conclusion(cost, "digits")
    assert "**2.000 GPU-hours** for 6 runs and 24 epochs on H100" in text
    hours = (7 * 3 * 20.0 + 7 * 3 * 50 * 30.0) / 3600  # the article's 7 optimizers × 3 seeds × 50 epochs
    assert f"would take **{hours:.2f} GPU-hours**" in text and report.ARTICLE_STUDY == {
        "optimizers": 7, "seeds": 3, "epochs": 50}


def test_mismatch_warning_only_when_runs_differ_from_the_config():
    runs = pd.DataFrame({"optimizer": ["SGD", "SGD"], "seed": [0, 1], "matches_config": [True, True],
                         "differences": ["", ""]})
    assert report.mismatch_warning(runs) == ""
    runs.loc[1, ["matches_config", "differences"]] = [False, "optimizer.kwargs.lr: 0.01 recorded, 0.5 in the config"]
    text = report.mismatch_warning(runs)
    assert text.startswith("**Warning: 1 of 2 runs were trained with other settings")
    assert "- SGD seed 1: optimizer.kwargs.lr: 0.01 recorded, 0.5 in the config" in text


def test_descent_finding_per_function():
    runs = pd.DataFrame({"function": ["ackley", "ackley", "beale"], "method": ["SGD", "Adam", "SGD"],
                         "gradient": ["autograd"] * 3, "group": ["g"] * 3, "final_f": [3.0, 0.001, np.nan],
                         "diverged": [False, False, True], "reached_minimum": [False, True, False]})
    lines = report.descent_finding(runs).splitlines()
    assert lines == ["- ackley: 1 of 2 runs reached a global minimum; lowest value 0.001000 by Adam (autograd, g).",
                     "- beale: 0 of 1 runs reached a global minimum; 1 diverged."]


def test_descent_finding_says_when_methods_end_at_the_same_point():
    # the compare preset's Ackley: SGD, Adam, Adagrad end at one local minimum (issue 36); a run 0.99e-3 away
    # shares it, one 1.5e-3 away does not
    assert report.SAME_POINT == 1e-3
    x = -1.974452
    runs = pd.DataFrame({"function": ["ackley"] * 4, "method": ["SGD", "Adam", "Adagrad", "Lion"],
                         "gradient": ["autograd"] * 4, "group": ["optimizers"] * 4,
                         "final_x": [x, x, x + 0.59e-3, x + 1.5e-3], "final_y": [x, x, x + 0.8e-3, x],
                         "final_f": [6.559645, 6.559645, 6.559646, 6.56], "diverged": [False] * 4,
                         "reached_minimum": [False] * 4})
    [line] = report.descent_finding(runs).splitlines()
    assert line == ("- ackley: 0 of 4 runs reached a global minimum; lowest value 6.560 where Adam (autograd, "
                    "optimizers), SGD (autograd, optimizers), Adagrad (autograd, optimizers) all end (the same "
                    "point).")
    assert "lowest value 6.560 by" not in line  # no single "lowest" for a shared point


def test_study_heading_names_the_data_and_model_the_runs_used():
    runs = pd.DataFrame({"dataset": ["digits"], "model": ["resnet18_cifar"], "width": [8], "train_images": [1347],
                         "test_images": [450]})
    assert report.study_heading(runs) == "digits, resnet18_cifar (width 8, 1,347 training / 450 test examples)"


def test_tuning_summary_compares_tuned_with_tuned_and_each_with_its_own_default():
    """Only SGD and Adam were tuned; AdamW (untuned) is the best at default settings and never enters the
    statement. The tuned runs trained on fewer images (a validation split held out): the summary says so."""
    nan = float("nan")
    rankings = pd.DataFrame({"optimizer": ["SGD", "Adam", "AdamW"], "rank_default": [3.0, 2.0, 1.0],
                             "rank_tuned": [1.0, 2.0, nan], "final_default": [0.80, 0.85, 0.95],
                             "final_ci_low_default": [0.78, 0.83, 0.93], "final_ci_high_default": [0.82, 0.87, 0.97],
                             "final_tuned": [0.90, 0.84, nan], "final_ci_low_tuned": [0.88, 0.80, nan],
                             "final_ci_high_tuned": [0.92, 0.88, nan]})
    default = pd.DataFrame({"claim": ["a", "b", "c"], "verdict": ["holds", "contradicted", "holds"]})
    tuned = pd.DataFrame({"claim": ["a", "b", "c"], "verdict": ["holds", "holds", "not tested"]})
    selection = pd.DataFrame({"optimizer": ["SGD", "Adam"], "at_edge": ["lr=1 (highest tried)", ""]})
    default_runs = pd.DataFrame({"optimizer": ["SGD", "Adam", "AdamW"], "train_images": [1348, 1348, 1348]})
    tuned_runs = pd.DataFrame({"optimizer": ["SGD", "Adam"], "train_images": [1048, 1048]})
    lines = report.tuning_summary(rankings, default, tuned, selection, ACC, default_runs, tuned_runs).splitlines()
    assert lines[0] == ("- Among the tuned optimizers (Adam, SGD), final test accuracy, higher is better: best tuned "
                        "**SGD** (0.9000 [0.8800, 0.9200]); the same optimizers at default settings: best **Adam** "
                        "(0.8500 [0.8300, 0.8700]) — tuning changed which of them is best.")
    assert "AdamW" not in "\n".join(lines)  # never compared: it was not tuned
    assert lines[1] == ("- Adam: tuned 0.8400 against its default 0.8500: test accuracy lower (worse) by 0.01000 "
                        "(see the intervals in the table below).")
    assert lines[2].startswith("- SGD: tuned 0.9000 against its default 0.8000: test accuracy higher (better) by "
                               "0.1000")
    assert lines[3].startswith("- The tuned runs trained on 1,048 images, the default runs on 1,348")
    assert lines[4] == ("- The article's claims tested both ways: 1 of 2 verdicts change with tuning: b: contradicted "
                        "→ holds")
    assert lines[5] == "- **Selected at the edge of the search range** (widen it): SGD lr=1 (highest tried)"


def test_tuning_a_vae_problem_without_claims():
    rankings = pd.DataFrame({"optimizer": ["SGD", "Adam"], "rank_default": [1, 2], "rank_tuned": [1, 2],
                             "final_default": [110.0, 130.0], "final_tuned": [100.0, 104.0]})
    empty = pd.DataFrame(columns=["problem", "claim", "verdict"])
    text = report.tuning_summary(rankings, empty, empty, pd.DataFrame({"optimizer": ["SGD"], "at_edge": [""]}),
                                 NEG_ELBO)
    assert text.splitlines() == [
        "- Among the tuned optimizers (Adam, SGD), final test negative ELBO, lower is better: best tuned **SGD** "
        "(100.0 (fewer than 2 completed seeds: no interval)); the same optimizers at default settings: best **SGD** "
        "(110.0 (fewer than 2 completed seeds: no interval)) — tuning did not change which of them is best.",
        "- Adam: tuned 104.0 against its default 130.0: test negative ELBO lower (better) by 26.00 (see the "
        "intervals in the table below).",
        "- SGD: tuned 100.0 against its default 110.0: test negative ELBO lower (better) by 10.00 (see the "
        "intervals in the table below)."]  # no claims tested: no line about them (not "0 of 0")
    trials = pd.DataFrame({"optimizer": ["SGD"] * 3 + ["Adam"] * 3, "trial": [0, 1, 2] * 2})
    intro = report.tuning_intro(stage(), VAE, trials)
    assert intro.startswith("Each optimizer's search space was tried with 3 trials (sobol sampler) on a stratified "
                            "validation split of 200 training examples (seed 0); the trial with the best final "
                            "validation negative ELBO (lower is better) was selected")
    ptb = StudyProblem.from_summary("ptb", {"primary": "test_perplexity", "target": 200.0, "kind": "language_model",
                                            "metrics": [{"name": "test_perplexity", "higher_is_better": False}]})
    assert "the data set's own validation stream" in report.tuning_intro(stage(), ptb, trials)


def test_words_true_to_the_data():
    assert report.data_words("cifar10", "digits") == "digits (CIFAR-10 format)"
    assert report.data_words("cifar10", "download") == "CIFAR-10" and report.data_words("mnist", "digits") == \
        "digits (MNIST format)"
    runs = pd.DataFrame({"problem": ["p", "p", "q", "q"], "optimizer": ["A", "B", "A", "B"], "seed": 0,
                         "epochs": [1, 1, 1, 1]})
    assert report.ran_sentence(runs) == ("**What ran**: 2 problems × 2 optimizers × 1 seed = 4 training runs of 1 "
                                         "epoch each, as their run.json recorded.")
    runs["epochs"] = [3, 3, 1, 1]  # per-problem epochs: each said
    assert report.ran_sentence(runs).endswith("4 training runs of 3 epochs (p), 1 epoch (q), as their run.json "
                                              "recorded.")
    problem = StudyProblem.from_summary("digits-resnet18", {**CLS_ENTRY, "dataset": "cifar10", "data_source": "digits",
                                                            "model": "resnet18_cifar", "width": 8})
    assert report.problem_title(problem) == "digits-resnet18 (digits (CIFAR-10 format), resnet18_cifar at width 8)"
    assert report.default_title({"digits-resnet18": problem}, ["A", "B"], ["ackley"]) == (
        "optimbench: 2 optimizers on digits-resnet18 (digits (CIFAR-10 format)) and the Ackley function")
    assert report.default_title({"digits-resnet18": problem}, ["A"]) == (
        "optimbench: 1 optimizer on digits-resnet18 (digits (CIFAR-10 format))")


def focus_rows(problem, higher, rows):
    """Rows of a focus table (3 paired seeds each, a family of 5); `rows`: (baseline, difference, low, high, p,
    verdict); Holm's p is 5 p (at most 1); an inconclusive one would need 9 seeds; Big's seed 1 failed."""
    return pd.DataFrame([{"problem": problem, "metric": "m", "higher_is_better": higher, "focus": "Mine",
                          "baseline": b, "best_baseline": i == 0, "difference": d, "difference_ci_low": lo,
                          "difference_ci_high": hi, "p_value": p, "p_adjusted": min(1.0, 5 * p), "verdict": v,
                          "test": "paired t", "pairs": 2 if b == "Big" else 3,
                          "wins": 3 if (d > 0) == higher else 0, "losses": 0 if (d > 0) == higher else 3,
                          "focus_failed": "", "baseline_failed": "1" if b == "Big" else "",
                          "seeds_needed": 9 if v == "inconclusive" else np.nan, "family_size": 5, "focus_seeds": 3}
                         for i, (b, d, lo, hi, p, v) in enumerate(rows)])


def test_focus_verdicts_say_the_direction_in_words():
    acc = focus_rows("cls", True, [("Fast", -0.1, -0.12, -0.08, 0.001, "worse"),
                                   ("Slow", 0.3, 0.28, 0.32, 0.0001, "better"),
                                   ("Noisy", 0.05, -0.2, 0.3, 0.6, "inconclusive")])
    vae = focus_rows("digits-vae", False, [("Tiny", 20.0, 18.0, 22.0, 0.001, "worse"),
                                           ("Big", -30.0, -33.0, -27.0, 0.001, "better")])
    problems = {"cls": StudyProblem.from_summary("cls", CLS_ENTRY), "digits-vae": VAE}
    lines = report.focus_lines(pd.concat([acc, vae]), problems, 0.95).split("\n\n", 1)[1].splitlines()
    text = report.focus_lines(pd.concat([acc, vae]), problems, 0.95)
    assert text.startswith("**Mine against the field** (baselines: Fast, Slow, Noisy, Tiny, Big; one family of 5 "
                           "comparisons: 1 × 5 baselines × 2 problems, Holm at 5%).")
    assert lines == [
        "- **digits / ResNet18** (final test accuracy, higher is better): **Mine** against the best baseline **Fast** "
        "is **worse**: Mine − Fast = −0.1000 [−0.1200, −0.08000], lower (worse), over 3 paired seeds, p = 0.0010 "
        "(Holm 0.0050); worse on 3 of 3 seeds.",
        "  - **better** than Slow: Mine − Slow = +0.3000 [+0.2800, +0.3200], higher (better), over 3 paired seeds, "
        "p = 1.0e-04 (Holm 5.0e-04); better on 3 of 3 seeds.",
        "  - **inconclusive** against Noisy: Mine − Noisy = +0.05000 [−0.2000, +0.3000], higher (better), over 3 "
        "paired seeds, p = 0.60 (Holm 1.0); better on 3 of 3 seeds; about 9 seeds each would settle a difference "
        "this size.",
        "- **digits / VAE** (final test negative ELBO, lower is better): **Mine** against the best baseline **Tiny** "
        "is **worse**: Mine − Tiny = +20.00 [+18.00, +22.00], higher (worse), over 3 paired seeds, p = 0.0010 "
        "(Holm 0.0050); worse on 3 of 3 seeds.",
        "  - **better** than Big: Mine − Big = −30.00 [−33.00, −27.00], lower (better), over 2 paired seeds, "
        "p = 0.0010 (Holm 0.0050); better on 3 of 3 seeds; Big's seed 1 failed (not averaged)."]
    assert report.focus_lines(acc.iloc[0:0], problems, 0.95) == ""  # no focus: nothing said


# ---------------------------------------------------------------- the notebook, executed on hand-made tables
def study_plan(names=("cls", "digits-vae"), tune=True) -> Plan:
    """The plan of a study by hand: a classification problem and a VAE (or those of `names`), two optimizers,
    two seeds, tuning (unless not `tune`); no runs (the report reads the tables)."""
    def metrics(names, higher, high=INF):
        return [{"name": f"{s}_{n}", "higher_is_better": higher, "low": 0.0, "high": high}
                for s in ("train", "val", "test") for n in names]
    problems = {"cls": {"dataset": "cifar10", "model": "resnet18_cifar", "kind": "classification",
                        "primary": "test_acc", "higher_is_better": True, "target": 0.5, "title": "digits / ResNet18",
                        "data_source": "digits", "metrics": metrics(["loss"], False) + metrics(["acc"], True, 1.0)},
                "digits-vae": {**VAE_ENTRY, "dataset": "mnist", "model": "vae", "data_source": "digits",
                               "metrics": metrics(["neg_elbo", "recon", "kl"], False)}}
    settings = {"title": "A study of two problems", "confidence": 0.95,
                "problems": {name: problems[name] for name in names},
                "train": {"optimizers": ["A", "B"], "seeds": [0, 1], "epochs": 2, "batch_size": 64,
                          "lr_schedule": None}}
    tuning = stage(optimizers=["A"], select_by="final_val", sampler="grid", validation_size=100,
                   spaces={"A": {"lr": {"low": 1e-3, "high": 1e-1}}}) if tune else None
    return Plan.from_json(Plan("results", {}, {}, [], [], settings, tuning).to_json())


def study_tables(names=("cls", "digits-vae")) -> dict:
    """The aggregate tables of study_plan(names), by hand."""
    problems = study_plan(names).problems
    values = {"cls": {"A": [0.8, 0.9], "B": [0.6, 0.5]}, "digits-vae": {"A": [130.0, 131.0], "B": [100.0, 102.0]}}
    seeds = pd.DataFrame([{"problem": p, "optimizer": o, "seed": s, "final": v[o][s], "diverged": False}
                          for p, v in values.items() for o in v for s in (0, 1)])
    summary = (seeds.groupby(["problem", "optimizer"], as_index=False)["final"].mean()
               .assign(seeds=2, divergences=0, runs_reaching_target=1, separated_from_best=False,
                       seconds_to_target=5.0, seconds_to_target_ci_low=4.0, seconds_to_target_ci_high=6.0))
    summary["final_ci_low"], summary["final_ci_high"] = summary["final"] - 1e-3, summary["final"] + 1e-3
    summary["rank"] = [1, 2, 2, 1]  # cls: A 0.85 beats B 0.55; the VAE: B's 101 nats beat A's 130.5
    summary["place_low"] = summary["place_high"] = summary["rank"]  # the procedure orders them
    summary["separated_from_best"] = summary["rank"] == 2
    stats = pd.DataFrame([{"problem": p, "optimizer": o, "epoch": e, "metric": m, "mean": 1.0 + e,
                           "ci_low": 0.5 + e, "ci_high": 1.5 + e}
                          for p, info in problems.items() for o in ("A", "B") for e in (1, 2) for m in info.metrics])
    profile = pd.DataFrame({"measure": ["time"] * 4 + ["metric"] * 4, "optimizer": ["A", "A", "B", "B"] * 2,
                            "tau": [1.0, 4.0] * 4, "fraction": [0.5, 1.0, 0.5, 0.5] * 2})
    scores = pd.DataFrame({"measure": ["time", "time", "metric", "metric"], "optimizer": ["A", "B", "A", "B"],
                           "score": [0.75, 0.5, 1.0, 0.9]})
    ranks = summary[["problem", "optimizer", "rank"]].assign(rank_low=1, rank_high=2)
    runs = seeds[["problem", "optimizer", "seed"]].assign(
        dataset=lambda f: f["problem"].map({"cls": "cifar10", "digits-vae": "mnist"}),
        model=lambda f: f["problem"].map({"cls": "resnet18_cifar", "digits-vae": "vae"}), width=8, train_images=100,
        test_images=50, epochs=2, matches_config=True, differences="")
    cost = pd.DataFrame([{"optimizer": "all", "unit": "CPU core", "device": "cpu", "runs": 8, "epochs": 16, "share": 1,
                          "device_seconds": 360.0, "startup_device_seconds_per_run": 2.0,
                          "device_seconds_per_epoch": 20.0, "samples_per_second": 100.0}])
    descent = pd.DataFrame({"group": ["g"], "function": ["ackley"], "method": ["SGD"], "gradient": ["autograd"],
                            "epochs": [10], "converged": [True], "diverged": [False], "final_f": [0.1],
                            "distance_to_minimum": [0.01], "reached_minimum": [False]})
    trials = pd.DataFrame({"problem": ["cls", "cls", "digits-vae", "digits-vae"], "optimizer": "A", "trial": [0, 1] * 2,
                           "lr": [0.01, 0.1] * 2, "score": [0.7, 0.8, 120.0, 110.0], "selected": [False, True] * 2})
    tables = {"seed_summary": seeds, "optimizer_summary": summary, "epoch_stats": stats, "performance_profile": profile,
              "profile_score": scores, "problem_ranks": ranks, "rank_summary": pd.DataFrame(
                  {"optimizer": ["A", "B"], "mean_rank": [1.5, 1.5], "first": [1, 1], "possibly_first": [2, 2],
                   "problems": [2, 2]}),
              "runs": runs, "cost": cost, "descent_runs": descent, "descent_reproduction": pd.DataFrame(),
              "article_claims": pd.DataFrame({"problem": ["cls"], "claim": ["Adamax trains best"],
                                              "compared": ["A, B"], "measured": ["-"], "verdict": ["not tested"]}),
              "tune_trials": trials, "tune_selection": trials[trials["selected"]].assign(at_edge=""),
              "budget_curves": trials.assign(k=trials["trial"] + 1, expected_best=trials["score"], rank=1),
              "rankings": summary[["problem", "optimizer"]].assign(  # A alone was tuned
                  rank_default=[1, 2, 2, 1], rank_tuned=[1, np.nan, 1, np.nan], final_default=summary["final"],
                  final_tuned=(summary["final"] - 0.01).where(summary["optimizer"] == "A")),
              "tuned_claims": pd.DataFrame(columns=["problem", "claim", "verdict"]),
              "tuned_runs": runs[runs["optimizer"] == "A"].assign(train_images=80),
              "focus": pd.DataFrame(columns=FOCUS_COLUMNS), "tuned_focus": pd.DataFrame(columns=FOCUS_COLUMNS),
              "tuned_optimizer_summary": summary, "tuned_seed_summary": seeds}
    return {name: frame[frame["problem"].isin(names)] if "problem" in frame else frame
            for name, frame in tables.items()}


def study_files(root, names=("cls", "digits-vae")) -> Plan:
    """study_plan(names) and its tables written into `root`, with every figure the report shows."""
    plan = study_plan(names)
    (root / "plan.json").write_text(plan.to_json())
    (root / "tables").mkdir()
    for name, frame in study_tables(names).items():
        frame.to_parquet(root / "tables" / f"{name}.parquet")
    plots.train_figures(plan, root / "tables", root / "figures" / "train")
    plots.tune_figures(plan, root / "tables", root / "figures" / "tune")
    (root / "figures" / "descent").mkdir(parents=True)
    for name in ("ackley_views.png", "ackley_all_runs.png"):
        (root / "figures" / "descent" / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "figures" / "descent" / "ackley_3d.html").write_text('<div id="ackley-3d"></div>')
    return plan


def render_study(root, names=("cls", "digits-vae")):
    """The report of study_files(root, names): (executed notebook, HTML)."""
    study_files(root, names)
    executed, page = root / "study.ipynb", root / "study.html"
    render.render(render.TEMPLATES.parent / "study.ipynb", executed, page,
                  {"plan_file": str(root / "plan.json"), "tables_dir": str(root / "tables"),
                   "figures_dir": str(root / "figures"), "report_dir": str(root)}, title="A study of two problems")
    return executed, page.read_text()


def test_the_notebook_reports_each_problem_in_its_own_metric(tmp_path):
    import nbformat

    executed, html = render_study(tmp_path)
    body = html.split("<body")[1]
    answer, details = body.index("The answer"), body.index('id="per-problem"')
    assert "Performance-profile score by final primary metric" in body[answer:details]
    assert ("<strong>digits-vae (digits (MNIST format), vae)</strong> (final test negative ELBO, lower is better; "
            "mean over completed seeds, 95% interval): first: <strong>B</strong>") in body[answer:details]
    assert "The article's claims, checked" in body and "Judged on cls (digits (CIFAR-10 format)" in body
    assert "The article's 1 claims here: 1 not tested" in body[answer:details]
    assert body.index('id="per-problem"') < body.index('id="tuned"') < body.index('id="descent"') < body.index(
        'id="cost"') < body.index('id="setup"')  # the details, in the order
    assert "…" not in re.sub(r'src="data:image/png;base64,[^"]*"', "", body)  # no table cut off
    # every output of the VAE's own section: its metric and direction, never accuracy
    checked = []
    for cell in nbformat.read(executed, as_version=4).cells:
        outputs = ["".join(str(v) for v in o.get("data", {}).values()) for o in cell.get("outputs", [])]
        for text in outputs:
            if text.startswith("<details><summary><strong>digits-vae</strong>"):
                assert "negative ELBO" in text and "lower is better" in text and "accuracy" not in text.lower()
                assert text.count("<img") == 4
                checked.append(cell.source)
    assert checked == ["display(*sections.problem_sections(plan, tables, figures_dir, links))"]
    # headline and all profiles, ranks; per problem 4 training and 3 tuning figures; Ackley's views and runs
    assert len(re.findall(r'<img alt="', html)) == 3 + 2 * 4 + 2 * 3 + 2


def test_primary_metric_reads_an_unbounded_end_written_as_null():
    from optimbench import labels

    problem = StudyProblem.from_summary("ptb", {
        "primary": "test_perplexity", "higher_is_better": False, "target": 200.0,
        "metrics": [{"name": "test_perplexity", "higher_is_better": False, "low": 1.0, "high": None}]})
    metric = problem.primary
    assert (metric.low, metric.high, metric.worst) == (1.0, INF, INF)
    assert labels.axis_label("test_perplexity", False) == "test perplexity (lower is better)"
    assert labels.metric_label("val_neg_elbo") == "validation negative ELBO"


def test_a_report_of_one_vae_problem_never_says_accuracy(tmp_path):
    _, html = render_study(tmp_path, ["digits-vae"])
    text = re.sub(r'src="data:image/png;base64,[^"]*"', "", html.split("<body")[1])
    assert "accuracy" not in text.lower() and "_acc" not in text
    answer, details = text.index("The answer"), text.index('id="per-problem"')
    assert "first: <strong>B</strong> (B 101.0 [101.0, 101.0])" in text[answer:details]
    assert "<li>place 1: <strong>B</strong>: 101.0 [101.0, 101.0] over 2 completed seeds</li>" in text[details:]
    assert "Performance-profile" not in text and "claims" not in text  # one problem; no claims judged
    assert len(re.findall(r'<img alt="', html)) == 4 + 3 + 2  # its training and tuning figures; descent
