"""The notebook's sections, on hand-made tables: what each shows, in order (the answer, the setup, each
problem's training and tuning, the claims, descent), each problem in its own metric."""

import re

import pandas as pd
import pytest
from test_report import study_plan, study_tables

from optimbench import files, report, sections


def fake_figures(root, plan, functions=("ackley",)) -> None:
    """A stand-in PNG at every figure path the report reads (the sections embed them), and the 3-D views."""
    paths = (files.train_figure_files(plan, root / "train", ("png",)) + files.tune_figure_files(plan, root / "tune")
             + files.descent_figure_files(functions, root / "descent", (files.ACKLEY_VIEWS, "all_runs")))
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\n")
    for function in functions:
        (root / "descent" / f"{function}_3d.html").write_text(f'<div id="{function}-3d"></div>')


def texts(parts) -> list[str]:
    """The Markdown and HTML of a section's parts; a table reads as its columns, a figure as its alt text."""
    shown = []
    for part in parts:
        if isinstance(part, pd.DataFrame):
            shown.append(f"table {list(part.columns)}")
        elif isinstance(part, sections.Html) and part.startswith("<img"):
            shown.append("figure: " + re.search(r'alt="([^"]*)"', part).group(1))
        else:
            shown.append(str(part))
    return shown


def test_the_answer_across_two_problems(tmp_path):
    plan = study_plan()
    fake_figures(tmp_path, plan)
    shown = texts(sections.answer(plan, study_tables(), tmp_path))
    assert shown[0] == "**Training study**: 2 problem(s), 2 optimizers × 2 seeds × 2 epochs."
    assert shown[1].startswith("**Across problems.**\n\n- Performance-profile score by time to target")
    assert shown[2].startswith("figure: Performance profiles") and shown[3] == "table ['time']"  # the pivot
    assert shown[4].splitlines()[2:] == [
        "- digits / ResNet18 (test accuracy, higher is better): A 1 (could be 1–2), B 2 (could be 1–2).",
        "- digits / VAE (test negative ELBO, lower is better): B 1 (could be 1–2), A 2 (could be 1–2)."]
    assert shown[5].startswith("figure: Rank of each optimizer") and shown[6].startswith("table ['optimizer'")
    assert shown[7] == ("**Per problem.**\n\n"
                        "- **digits / ResNet18** (final test accuracy, higher is better): best **A** "
                        "(0.8500 [0.8490, 0.8510]); not separated from it by the seeds: B.\n"
                        "- **digits / VAE** (final test negative ELBO, lower is better): best **B** "
                        "(101.0000 [100.9990, 101.0010]); not separated from it by the seeds: A.")
    assert shown[8].startswith("The article's 1 claims (judged on digits / ResNet18): 0 holds")
    assert shown[9] == ("**Descent on 2-D test functions.**\n\nNo article descent runs were found.\n"
                        "- ackley: 0 of 1 runs reached a global minimum; lowest value 0.1 by SGD (autograd, g).")
    assert shown[10].startswith("**Cost.**\n\n- This study: **0.100 CPU core-hours** for 8 runs")
    assert "(digits, resnet18_cifar (width 8, 100 training / 50 test examples); mnist, vae (width 8" in shown[10]
    assert shown[11].startswith("**Tuned comparison** (each optimizer's setting chosen on validation data, then rerun "
                                "over the seeds).\n\n*digits / ResNet18*\n\n- Best after tuning: **A** (test accuracy")
    assert "*digits / VAE*\n\n- Best after tuning: **B** (test negative ELBO 101.0000)" in shown[11]
    assert len(shown) == 12


def test_the_answer_of_one_problem_without_tuning_is_its_ranking(tmp_path):
    plan = study_plan(["digits-vae"], tune=False)
    tables = study_tables(["digits-vae"])
    tables["runs"] = tables["runs"].assign(matches_config=[True, True, True, False],
                                           differences=["", "", "", "optimizer.kwargs.lr: 0.01 recorded, 0.5 now"])
    shown = texts(sections.answer(plan, tables, tmp_path))
    assert shown[0].startswith("**Warning: 1 of 4 runs were trained with other settings")
    assert shown[1] == "**Training study**: 1 problem(s), 2 optimizers × 2 seeds × 2 epochs."
    assert shown[2].startswith("**digits / VAE** (mnist, vae (width 8, 100 training / 50 test examples)).\n\n"
                               "Final test negative ELBO, lower is better: mean over seeds with its 95% interval")
    assert shown[3].startswith("**Descent on 2-D test functions.**") and shown[4].startswith("**Cost.**")
    assert len(shown) == 5  # no claims judged, no tuning


def test_the_sections_of_each_problem(tmp_path):
    plan, tables = study_plan(), study_tables()
    fake_figures(tmp_path, plan)
    setup = texts(sections.setup(plan, tables))
    assert setup[0] == ("- digits / ResNet18: **digits, resnet18_cifar (width 8, 100 training / 50 test examples)** "
                        "(data source `digits`)\n- digits / VAE: **mnist, vae (width 8, 100 training / 50 test "
                        "examples)** (data source `digits`)\n- Seeds: [0, 1]; batch size 64; epochs 2; "
                        "learning-rate schedule: None")
    assert setup[1] == ("table ['problem', 'optimizer', 'seed', 'width', 'train_images', 'test_images', "
                        "'matches_config']")
    training = texts(sections.training_sections(plan, tables, tmp_path))
    vae = training.index(next(t for t in training if t.startswith("## Training study: mnist")))
    assert training[vae].startswith("## Training study: mnist, vae (width 8, 100 training / 50 test examples)\n"
                                    "**digits / VAE** (problem `digits-vae`). Primary metric: **test negative ELBO, "
                                    "lower is better**; target: test negative ELBO ≤ 120.")
    assert training[vae + 1].startswith("- Best mean final test negative ELBO, lower is better: **B**")
    assert training[vae + 2].startswith("Final test negative ELBO, lower is better: mean over seeds")
    assert training[vae + 4:] == ["figure: digits / VAE: every training and test metric per epoch",
                                  "figure: Final test negative ELBO, lower is better, per optimizer and seed",
                                  "figure: Generalisation gap in test negative ELBO per epoch",
                                  "figure: Seconds of training to test negative ELBO ≤ 120"]
    tuning = texts(sections.tuning_sections(plan, tables, tmp_path))
    vae = tuning.index("### digits / VAE\n" + report.tuning_intro(plan.tune, plan.problems["digits-vae"],
                                                                   tables["tune_trials"].iloc[2:]))
    assert tuning[vae + 2:vae + 5] == ["figure: Sensitivity: final validation negative ELBO of every trial",
                                       "figure: Expected best final validation negative ELBO after k trials",
                                       "figure: Final test negative ELBO, lower is better, tuned settings"]
    assert tuning[-2:] == ["Every trial:", "table ['problem', 'optimizer', 'trial', 'lr', 'score', 'selected']"]
    assert sections.tuning_sections(study_plan(tune=False), tables, tmp_path) == []
    claims = texts(sections.claims_section(plan, tables))
    assert claims[0].startswith("## The article's claims, checked\nJudged on digits / ResNet18, among the article's")


def test_the_descent_sections_show_ackley_inline_and_name_the_other_views(tmp_path):
    fake_figures(tmp_path, study_plan(), ("ackley", "beale"))
    tables = {"descent_reproduction": pd.DataFrame(),
              "descent_runs": pd.DataFrame({"group": "g", "function": ["beale", "ackley"], "method": "SGD",
                                            "gradient": "central", "epochs": 10, "converged": True, "diverged": False,
                                            "final_f": 0.1, "distance_to_minimum": 0.01, "reached_minimum": False})}
    assert texts(sections.descent_section(tables, tmp_path)) == [
        "No article descent runs were found.",
        "figure: The Ackley function: scatter, contours, 3-D contour lines and surface"]
    runs = texts(sections.descent_runs_section(tables, tmp_path))
    assert runs[1:] == ["### ackley: every run", "figure: Every descent run on the ackley function",
                        "### beale: every run", "figure: Every descent run on the beale function"]
    assert sections.interactive_views(tables, tmp_path) == [
        '<div id="ackley-3d"></div>', f"- beale: `{tmp_path / 'descent' / 'beale_3d.html'}`"]


def test_the_report_reads_only_the_tables_its_rule_declares(tmp_path):
    """sections.Tables reads a declared table (files.report_tables) from its Parquet file once, and refuses
    any other, so the report rule's inputs can never miss what the report reads."""
    plan = study_plan(tune=False)
    pd.DataFrame({"optimizer": ["A"]}).to_parquet(tmp_path / "runs.parquet")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "tune_trials.parquet")
    tables = sections.Tables(tmp_path, plan)
    assert tables["runs"]["optimizer"].tolist() == ["A"] and tables["runs"] is tables["runs"]
    with pytest.raises(KeyError, match="'tune_trials' is not among the report's inputs"):
        tables["tune_trials"]  # a tuning table, in a study without tuning
    assert list(sections.Tables(tmp_path, study_plan()).names) == [*files.REPORT_TABLES, *files.REPORT_TUNE_TABLES]
    assert sections.Tables(tmp_path, study_plan())["tune_trials"]["x"].tolist() == [1]
