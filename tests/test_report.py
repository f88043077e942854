"""The report's text, computed from hand-made tables: the ranking, the conclusions, the verdict counts,
the cost projection and the warning when the config differs from the runs; then the notebook, rendered
on a hand-made study (study_plan, study_tables: test_sections.py reuses them)."""

import re

import numpy as np
import pandas as pd

from optimbench import plots, render, report
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
    return pd.DataFrame({
        "optimizer": ["Adam", "SGD", "Boom"], "rank": [1.0, 2.0, 3.0], "seeds": [3, 3, 3], "divergences": [0, 0, 3],
        "final": [0.91, 0.90, 0.0], "final_ci_low": [0.88, 0.85, 0.0], "final_ci_high": [0.94, 0.95, 0.0],
        "separated_from_best": [False, False, True], "best": [0.92, 0.93, 0.1]})


def claims():
    return pd.DataFrame({"claim": ["a", "b", "c", "d"], "verdict": ["holds", "holds", "contradicted", "not tested"]})


def vae_summary():
    """A lower-is-better problem: Adam's 98 nats beat SGD's 120; Boom diverged (scored ∞)."""
    return pd.DataFrame({
        "problem": "digits-vae", "optimizer": ["Adam", "SGD", "Boom"], "rank": [1, 2, 3], "seeds": [3, 3, 3],
        "divergences": [0, 1, 3], "metric": "test_neg_elbo", "higher_is_better": False,
        "final": [98.0, INF, INF], "final_ci_low": [95.5, INF, INF], "final_ci_high": [100.5, INF, INF],
        "separated_from_best": [False, True, True], "best": [97.0, 96.5, INF]})


def test_training_conclusion_names_best_worst_ties_and_divergences():
    text = report.training_conclusion(summary(), ACC)
    assert ("Best mean final test accuracy, higher is better: **Adam** (0.9100 [0.8800, 0.9400] at 95%, 3 seed(s)); "
            "the seeds do not separate it from SGD. Worst: **Boom** (0.0000).") in text
    assert "Best test accuracy at any epoch (mean over seeds of each run's best epoch): **SGD** (0.9300)." in text
    assert "Diverged runs (each scored 0.0000 in test accuracy from the epoch it diverged): Boom (3 of 3)" in text


def test_ranking_lists_every_optimizer_with_its_interval():
    text = report.ranking(summary(), ACC, 0.95)
    assert text.startswith("Final test accuracy, higher is better: mean over seeds with its 95% interval")
    lines = text.splitlines()[2:]
    assert lines == ["- rank 1: **Adam**: 0.9100 [0.8800, 0.9400] over 3 seed(s)",
                     "- rank 2: **SGD**: 0.9000 [0.8500, 0.9500] over 3 seed(s) — "
                     "not separated from the best by these seeds",
                     "- rank 3: **Boom**: 0.0000 [0.0000, 0.0000] over 3 seed(s), **3 diverged** (scored 0.0000) — "
                     "below the best"]


def test_a_vae_problem_speaks_of_negative_elbo_lower_is_better_and_never_of_accuracy():
    texts = {"ranking": report.ranking(vae_summary(), NEG_ELBO, 0.95),
             "conclusion": report.training_conclusion(vae_summary(), NEG_ELBO),
             "answer": report.problem_answer(vae_summary(), "digits / VAE", NEG_ELBO),
             "intro": report.problem_intro(VAE)}
    for name, text in texts.items():
        assert "negative ELBO" in text and "lower is better" in text, name
        assert "accuracy" not in text.lower(), name
    assert texts["ranking"].splitlines()[2:] == [
        "- rank 1: **Adam**: 98.0000 [95.5000, 100.5000] over 3 seed(s)",
        "- rank 2: **SGD**: ∞ [∞, ∞] over 3 seed(s), **1 diverged** (scored ∞) — below the best",
        "- rank 3: **Boom**: ∞ [∞, ∞] over 3 seed(s), **3 diverged** (scored ∞) — below the best"]
    # the best epoch is the lowest value: SGD's 96.5 before it diverged, not Boom's ∞
    assert "Best test negative ELBO at any epoch (mean over seeds of each run's best epoch): **SGD** (96.5000)." \
        in texts["conclusion"]
    assert "Worst: **Boom** (∞)" in texts["conclusion"] and "SGD (1 of 3), Boom (3 of 3)" in texts["conclusion"]
    assert texts["answer"] == ("- **digits / VAE** (final test negative ELBO, lower is better): best **Adam** "
                               "(98.0000 [95.5000, 100.5000]); separated from every other.")
    assert "target: test negative ELBO ≤ 120" in texts["intro"] and "scores ∞ in test negative ELBO" in texts["intro"]
    columns = report.summary_columns(vae_summary().assign(final_test_kl=1.0, final_test_kl_ci_low=0.5))
    assert columns[:6] == ["rank", "optimizer", "seeds", "divergences", "metric", "final"]
    assert columns[-1] == "final_test_kl" and "final_test_kl_ci_low" not in columns


def test_profile_and_ranks_across_problems():
    scores = pd.DataFrame({"measure": ["time", "time", "metric", "metric"], "optimizer": ["SGD", "Adam", "SGD", "Adam"],
                           "score": [0.25, 0.75, 1.0, 0.5]})
    ranks_summary = pd.DataFrame({"optimizer": ["Adam", "SGD"], "mean_rank": [1.5, 1.5], "first": [1, 1],
                                  "possibly_first": [2, 1], "problems": [2, 2]})
    lines = report.profile_conclusion(scores, ranks_summary, 2).splitlines()
    assert lines[0].startswith("- Performance-profile score by time to target (") and lines[0].endswith(
        "): **Adam** 0.75, SGD 0.25.")
    assert lines[1].endswith("): **SGD** 1.00, Adam 0.50.")
    assert lines[2] == ("- Mean rank over the 2 problems (1 = best): **Adam** 1.50 (first on 1, possibly first on 2), "
                        "SGD 1.50 (first on 1, possibly first on 1).")
    ranks = pd.DataFrame({"problem": ["digits-vae", "digits-vae", "cls", "cls"],
                          "optimizer": ["Adam", "SGD", "SGD", "Adam"],
                          "rank": [1, 2, 1, 2], "rank_low": [1, 1, 1, 2], "rank_high": [2, 2, 1, 2]})
    problems = {"cls": StudyProblem.from_summary("cls", CLS_ENTRY), "digits-vae": VAE}
    assert report.problem_ranks_text(ranks, problems).splitlines()[2:] == [
        "- digits / ResNet18 (test accuracy, higher is better): SGD 1, Adam 2.",
        "- digits / VAE (test negative ELBO, lower is better): Adam 1 (could be 1–2), SGD 2 (could be 1–2)."]


def test_claims_name_their_problem():
    text = report.claims_summary(claims().assign(problem="digits-resnet18"))
    assert text.startswith("The article's 4 claims (judged on digits-resnet18): 2 holds")
    text = report.claims_summary(claims().assign(problem="digits-resnet18"), {"digits-resnet18": "digits / ResNet18"})
    assert text.startswith("The article's 4 claims (judged on digits / ResNet18): 2 holds")


def test_claims_summary_counts_each_verdict():
    text = report.claims_summary(claims())
    assert text.startswith("The article's 4 claims: 2 holds, 1 contradicted, 0 inconclusive, 1 not tested.")
    assert "- *contradicted*: c" in text


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
    assert lines == ["- ackley: 1 of 2 runs reached a global minimum; lowest value 0.001 by Adam (autograd, g).",
                     "- beale: 0 of 1 runs reached a global minimum; 1 diverged."]


def test_study_heading_names_the_data_and_model_the_runs_used():
    runs = pd.DataFrame({"dataset": ["digits"], "model": ["resnet18_cifar"], "width": [8], "train_images": [1347],
                         "test_images": [450]})
    assert report.study_heading(runs) == "digits, resnet18_cifar (width 8, 1,347 training / 450 test examples)"


def test_tuning_summary_says_whether_tuning_changed_the_answer():
    rankings = pd.DataFrame({"optimizer": ["SGD", "Adam"], "rank_default": [2.0, 1.0], "rank_tuned": [1.0, 2.0],
                             "final_default": [0.80, 0.85], "final_tuned": [0.90, 0.86]})
    default = pd.DataFrame({"claim": ["a", "b", "c"], "verdict": ["holds", "contradicted", "holds"]})
    tuned = pd.DataFrame({"claim": ["a", "b", "c"], "verdict": ["holds", "holds", "not tested"]})
    selection = pd.DataFrame({"optimizer": ["SGD", "Adam"], "at_edge": ["lr=1 (highest tried)", ""]})
    lines = report.tuning_summary(rankings, default, tuned, selection, ACC).splitlines()
    assert lines[0] == ("- Best after tuning: **SGD** (test accuracy 0.9000); at default settings: **Adam** (0.8500; "
                        "higher is better) — tuning changed the winner.")
    assert lines[1] == ("- The article's claims tested both ways: 1 of 2 verdicts change with tuning: b: contradicted "
                        "→ holds (1 claim(s) name optimizers this tuned study did not run.)")
    assert lines[2] == "- **Selected at the edge of the search range** (widen it): SGD lr=1 (highest tried)"


def test_tuning_a_vae_problem_without_claims():
    rankings = pd.DataFrame({"optimizer": ["SGD", "Adam"], "rank_default": [1, 2], "rank_tuned": [1, 2],
                             "final_default": [110.0, 130.0], "final_tuned": [100.0, 104.0]})
    empty = pd.DataFrame(columns=["problem", "claim", "verdict"])
    text = report.tuning_summary(rankings, empty, empty, pd.DataFrame({"optimizer": ["SGD"], "at_edge": [""]}),
                                 NEG_ELBO)
    assert text == ("- Best after tuning: **SGD** (test negative ELBO 100.0000); at default settings: **SGD** "
                    "(110.0000; lower is better) — tuning did not change the winner.")
    trials = pd.DataFrame({"optimizer": ["SGD"] * 3 + ["Adam"] * 3, "trial": [0, 1, 2] * 2})
    intro = report.tuning_intro(stage(), VAE, trials)
    assert intro.startswith("Each optimizer's search space was tried with 3 trials (sobol sampler) on a stratified "
                            "validation split of 200 training examples (seed 0); the trial with the best final "
                            "validation negative ELBO (lower is better) was selected")
    ptb = StudyProblem.from_summary("ptb", {"primary": "test_perplexity", "target": 200.0, "kind": "language_model",
                                            "metrics": [{"name": "test_perplexity", "higher_is_better": False}]})
    assert "the data set's own validation stream" in report.tuning_intro(stage(), ptb, trials)


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
    tuning = stage(select_by="final_val", sampler="grid", validation_size=100,
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
    stats = pd.DataFrame([{"problem": p, "optimizer": o, "epoch": e, "metric": m, "mean": 1.0 + e,
                           "ci_low": 0.5 + e, "ci_high": 1.5 + e}
                          for p, info in problems.items() for o in ("A", "B") for e in (1, 2) for m in info.metrics])
    profile = pd.DataFrame({"measure": "time", "optimizer": ["A", "A", "B", "B"], "tau": [1.0, 4.0] * 2,
                            "fraction": [0.5, 1.0, 0.5, 0.5]})
    scores = pd.DataFrame({"measure": ["time", "time"], "optimizer": ["A", "B"], "score": [0.75, 0.5]})
    ranks = summary[["problem", "optimizer", "rank"]].assign(rank_low=1, rank_high=2)
    runs = seeds[["problem", "optimizer", "seed"]].assign(
        dataset=lambda f: f["problem"].map({"cls": "digits", "digits-vae": "mnist"}),
        model=lambda f: f["problem"].map({"cls": "resnet18_cifar", "digits-vae": "vae"}), width=8, train_images=100,
        test_images=50, matches_config=True, differences="")
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
              "rankings": summary[["problem", "optimizer"]].assign(rank_default=[1, 2, 2, 1], rank_tuned=[1, 2, 2, 1],
                                                                   final_default=summary["final"],
                                                                   final_tuned=summary["final"]),
              "tuned_claims": pd.DataFrame(columns=["problem", "claim", "verdict"]),
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
                   "figures_dir": str(root / "figures")}, title="A study of two problems")
    return executed, page.read_text()


def test_the_notebook_reports_each_problem_in_its_own_metric(tmp_path):
    import nbformat

    executed, html = render_study(tmp_path)
    body = html.split("<body")[1]
    answer, setup = body.index("The answer"), body.index("Setup: the runs of this study")
    assert "Performance-profile score by time to target" in body[answer:setup]
    assert "<strong>digits / VAE</strong> (final test negative ELBO, lower is better): best <strong>B</strong>" \
        in body[answer:setup]
    assert "The article's claims, checked" in body and "Judged on digits / ResNet18" in body
    assert "The article's 1 claims (judged on digits / ResNet18)" in body[answer:setup]
    # every output of the VAE's own sections (training, tuning): its metric and direction, never accuracy
    checked = []
    for cell in nbformat.read(executed, as_version=4).cells:
        texts = ["".join(str(v) for v in o.get("data", {}).values()) for o in cell.get("outputs", [])]
        vae = [i for i, t in enumerate(texts) if "digits / VAE" in t and ("## " in t or "### " in t)]
        if vae and cell.source.startswith(("display(*sections.training_sections", "display(*sections.tuning_sections")):
            own = " ".join(texts[vae[0]:])
            assert "negative ELBO" in own and "lower is better" in own
            assert "accuracy" not in own.lower() and "final_test_acc" not in own
            assert own.count("<img") == (4 if "training" in cell.source else 3)
            checked.append(cell.source)
    assert checked == ["display(*sections.training_sections(plan, tables, figures_dir))",
                       "display(*sections.tuning_sections(plan, tables, figures_dir))"]
    assert len(re.findall(r'<img alt="', html)) == 2 + 2 * 4 + 2 * 3 + 2  # profile, ranks; per problem; descent


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
    answer, setup = text.index("The answer"), text.index("Setup: the runs of this study")
    assert "<li>rank 1: <strong>B</strong>: 101.0000 [100.9990, 101.0010] over 2 seed(s)</li>" in text[answer:setup]
    assert "Final test negative ELBO, lower is better" in text[answer:setup]
    assert "Performance-profile" not in text and "claims" not in text  # one problem; no claims judged
    assert len(re.findall(r'<img alt="', html)) == 4 + 3 + 2  # its training and tuning figures; descent
