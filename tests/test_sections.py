"""The notebook's sections, on hand-made tables: what each shows, in order (the answer first: what ran, the focus
optimizer's verdicts, per problem the best optimizer and the claims, across problems one headline profile; then
each problem, the claims, the tuned comparison, descent, cost and the setup), each problem in its own metric,
every table complete."""

import base64
import html
import io
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats
from test_report import study_plan, study_tables

from optimbench import compare, files, focus, sections


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
    """The Markdown of a section's parts; a heading reads "heading: text", a collapsed part "details: summary",
    a table as its columns, a figure as its alt text."""
    shown = []
    for part in parts:
        if part.startswith("<img"):
            shown.append("figure: " + re.search(r'alt="([^"]*)"', part).group(1))
        elif part.startswith("<h"):
            shown.append("heading: " + html.unescape(re.sub(r"<[^>]+>", "", part)))
        elif part.startswith("<details"):
            shown.append("details: " + re.sub(r"<[^>]+>", "", re.search(r"<summary>(.*?)</summary>", part).group(1)))
        elif part.startswith('<div class="ob-scroll"'):
            shown.append(f"table {re.findall(r'<th>(.*?)</th>', part)}")
        else:
            shown.append(str(part))
    return shown


def test_the_answer_across_two_problems(tmp_path):
    plan = study_plan()
    fake_figures(tmp_path, plan)
    shown = texts(sections.answer(plan, study_tables(), tmp_path))
    assert shown[:2] == ["heading: The answer", "**What ran**: 2 problems × 2 optimizers × 2 seeds = 8 training runs "
                                                "of 2 epochs each, as their run.json recorded."]
    assert shown[2] == compare.procedure_words(0.95)  # stated once, before any verdict
    shown = shown[:2] + shown[3:]
    assert shown[2] == ("**Per problem.**\n\n"
                        "- **cls (digits (CIFAR-10 format), resnet18_cifar)** (final test accuracy, higher is better; "
                        "mean over completed seeds, 95% interval): first: **A** (A 0.8500 [0.8490, 0.8510]), decided "
                        "better than every other.\n"
                        "  - The article's 1 claims here: 1 not tested:\n"
                        "    - *not tested*: Adamax trains best\n"
                        "- **digits-vae (digits (MNIST format), vae)** (final test negative ELBO, lower is better; "
                        "mean over completed seeds, 95% interval): first: **B** (B 101.0 [101.0, 101.0]), decided "
                        "better than every other.")
    assert shown[3].startswith("**Across problems.** Performance-profile score by final primary metric over the 2 "
                               "problems")
    assert shown[4].startswith("figure: Performance profile by final primary metric")
    assert shown[5] == ("details: Other measures (seconds to target, epochs to target) and the ranks per problem")
    assert shown[6] == ("Details: [Per problem](#per-problem) · [The article's claims](#claims) · [Tuned comparison]"
                        "(#tuned) · [Descent on 2-D functions](#descent) · [Cost](#cost) · [Setup](#setup)")
    assert len(shown) == 7


def test_with_a_focus_its_verdicts_lead_the_answer(tmp_path):
    plan = study_plan()
    fake_figures(tmp_path, plan)
    tables = study_tables()
    tables["focus"] = focus.focus_table(tables["seed_summary"], plan.problems, "B", plan.confidence)
    shown = texts(sections.answer(plan, tables, tmp_path))
    assert shown[3].startswith("**B against the field** (baselines: A; one family of 2 comparisons: 1 × 1 baselines × "
                               "2 problems, Holm at 5%).")
    # cls: B − A seed by seed −0.2, −0.4: t = −3 on 1 degree of freedom, p = 0.205; the VAE: −30, −29: t = −59,
    # p = 0.0108. Holm over the 2: 2 × 0.0108 = 0.022, then max(0.022, 0.205) = 0.205. Intervals at 1 − 0.05/2:
    # the t quantile (25.45 on 1 degree of freedom) × the standard error (0.1 and 0.5)
    assert stats.ttest_rel([0.6, 0.5], [0.8, 0.9]).pvalue == pytest.approx(0.2048, abs=1e-4)
    assert stats.t.ppf(1 - 0.025 / 2, 1) * 0.1 == pytest.approx(2.545, abs=1e-3)
    assert ("**B** against the best baseline **A** is **inconclusive**: B − A = −0.3000 "
            "[−2.845, +2.245], lower (worse), over 2 paired seeds, p = 0.20 (Holm 0.20); worse on 2 of 2 seeds; "
            "about 5 seeds each would settle a difference this size.") in shown[3]
    assert ("**B** against the best baseline **A** is **better**: B − A = −29.50 [−42.23, −16.77], "
            "lower (better), over 2 paired seeds, p = 0.011 (Holm 0.022); better on 2 of 2 seeds.") in shown[3]
    assert shown[4] == "details: Every comparison of the focus optimizer (table)" and shown[5].startswith(
        "**Per problem.**")


def test_the_answer_of_one_problem_without_tuning(tmp_path):
    plan = study_plan(["digits-vae"], tune=False)
    tables = study_tables(["digits-vae"])
    tables["runs"] = tables["runs"].assign(matches_config=[True, True, True, False],
                                           differences=["", "", "", "optimizer.kwargs.lr: 0.01 recorded, 0.5 now"])
    shown = texts(sections.answer(plan, tables, tmp_path))
    assert shown[1].startswith("**Warning: 1 of 4 runs were trained with other settings")
    assert shown[2] == ("**What ran**: 1 problem × 2 optimizers × 2 seeds = 4 training runs of 2 epochs each, as "
                        "their run.json recorded.")
    assert shown[3] == compare.procedure_words(0.95)
    assert shown[4].startswith("**Per problem.**\n\n- **digits-vae (digits (MNIST format), vae)** (final test "
                               "negative ELBO, lower is better")
    assert shown[5] == ("Details: [Per problem](#per-problem) · [Descent on 2-D functions](#descent) · [Cost](#cost) "
                        "· [Setup](#setup)")  # no claims, no tuning, no profile
    assert len(shown) == 6


def test_the_sections_of_each_problem(tmp_path):
    plan, tables = study_plan(), study_tables()
    fake_figures(tmp_path, plan)
    setup = sections.setup(plan, tables)
    assert texts(setup) == ["heading: Setup", "details: What the 8 runs used: one line per setting, as their "
                                              "run.json recorded it"]
    lines = re.sub(r"<[^>]+>", "", setup[1])
    assert "dataset by problem: cls: cifar10; digits-vae: mnist" in lines and "width: 8" in lines
    assert "Every run (8 rows)" in lines  # the per-run table on a click
    training = texts(sections.problem_sections(plan, tables, tmp_path))
    assert training == ["heading: Per problem",
                        "details: cls (digits (CIFAR-10 format), resnet18_cifar (width 8, 100 training / 50 test "
                        "examples); final test accuracy, higher is better)",
                        "details: digits-vae (digits (MNIST format), vae (width 8, 100 training / 50 test examples); "
                        "final test negative ELBO, lower is better)"]
    vae = sections.problem_sections(plan, tables, tmp_path)[2]
    assert "test negative ELBO ≤ 120" in vae and "accuracy" not in vae.lower() and vae.count("<img") == 4
    tuning = texts(sections.tuning_sections(plan, tables, tmp_path))
    assert tuning[:2] == ["heading: Tuned comparison", "Only the tuned optimizers (A) are compared: each with its own "
                          "default-setting runs and with each other. Each one's setting was chosen on validation "
                          "data, then rerun over the study's seeds."]
    assert tuning[2].startswith("**cls (digits (CIFAR-10 format), resnet18_cifar)**\n\n- Among the tuned "
                                "optimizers (A), final test accuracy")
    assert "- The tuned runs trained on 80 images, the default runs on 100" in tuning[2]
    assert " B" not in tuning[2] and "B " not in tuning[2]  # B was not tuned: never compared
    assert tuning[3] == "details: cls: the selection, figures, rankings and every trial"
    assert sections.tuning_sections(study_plan(tune=False), tables, tmp_path) == []
    claims = texts(sections.claims_section(plan, tables))
    assert claims[0] == "heading: The article's claims, checked"
    assert claims[2] == "table ['problem', 'claim', 'verdict', 'measured', 'compared']"


def test_the_descent_section_links_its_interactive_views(tmp_path):
    fake_figures(tmp_path, study_plan(), ("ackley", "beale"))
    tables = {"descent_reproduction": pd.DataFrame(),
              "descent_runs": pd.DataFrame({"group": "g", "function": ["beale", "ackley"], "method": "SGD",
                                            "gradient": "central", "epochs": 10, "converged": True, "diverged": False,
                                            "final_f": 0.1, "distance_to_minimum": 0.01, "reached_minimum": False})}
    links = sections.Links(tmp_path / "tables", tmp_path / "report")
    shown = texts(sections.descent_section(tables, tmp_path, links))
    assert shown[2:] == [
        "figure: The Ackley function: scatter, contours, 3-D contour lines and surface",
        "Interactive 3-D views, each its own page (drag to rotate; the legend toggles trajectories; works offline): "
        "[ackley](../descent/ackley_3d.html), [beale](../descent/beale_3d.html).",
        "details: Every descent run (2) and its plot per function"]


def test_every_table_is_complete_escaped_and_links_its_csv():
    frame = pd.DataFrame({f"column {i}": [f"<b>long text {r} " * 8 for r in range(80)] for i in range(30)})
    shown = sections.table(frame, "../tables/x.csv")
    assert shown.count("<tr") == 81 and shown.count("<th>") == 30  # every row and column: no "…" cut
    assert "…" not in shown and "<b>" not in shown and "&lt;b&gt;long text 79" in shown
    assert "overflow: auto" in shown and '<a href="../tables/x.csv">' in shown
    assert sections.as_html(sections.Markdown("a <b>&</b> **y**")) == \
        "<p>a &lt;b&gt;&amp;&lt;/b&gt; <strong>y</strong></p>\n"  # text, never markup


def test_the_title_is_escaped_and_follows_the_problems_by_default():
    plan = study_plan()
    plan.settings["title"] = "<b>&</b>"
    assert sections.title(plan) == ["<h1>&lt;b&gt;&amp;&lt;/b&gt;</h1>"]
    plan.settings["title"] = None
    assert sections.title(plan) == ["<h1>optimbench: 2 optimizers on cls, digits-vae (digits (CIFAR-10 format); "
                                    "digits (MNIST format))</h1>"]


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


def test_a_table_of_thousands_of_runs_shows_its_first_rows_and_links_every_row():
    """Issue 38: a 5,000-run study's table of every run is shown up to sections.TABLE_ROWS rows, with the CSV
    that holds them all linked; without a CSV to link, every row stays."""
    frame = pd.DataFrame({"run": range(sections.TABLE_ROWS + 7), "value": 0.5})
    shown = sections.table(frame, "../tables/runs.csv")
    assert shown.count("<tr") == sections.TABLE_ROWS + 1 and f"<td>{sections.TABLE_ROWS - 1}</td>" in shown
    assert f"<td>{sections.TABLE_ROWS}</td>" not in shown
    assert f"The first {sections.TABLE_ROWS:,} of {sections.TABLE_ROWS + 7:,} rows" in shown
    assert '<a href="../tables/runs.csv">the table as CSV</a>' in shown
    assert sections.table(frame).count("<tr") == sections.TABLE_ROWS + 8


def test_a_figure_of_hundreds_of_optimizers_is_embedded_with_a_palette(tmp_path):
    """Issue 38: a PNG over sections.FIGURE_BYTES is embedded as a 256-colour PNG of the same pixels' size; a
    smaller one byte for byte."""
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 4, (1000, 1000, 3), dtype=np.uint8) * 60  # 64 colours, hard to compress: > 1 MB
    Image.fromarray(noisy).save(tmp_path / "big.png")
    Image.fromarray(noisy[:50, :50]).save(tmp_path / "small.png")
    assert (tmp_path / "big.png").stat().st_size > sections.FIGURE_BYTES
    big = sections.figure(tmp_path / "big.png", "many lines")
    embedded = Image.open(io.BytesIO(base64.b64decode(big.split("base64,")[1].split('"')[0])))
    assert embedded.mode == "P" and embedded.size == (1000, 1000)
    assert np.array_equal(np.asarray(embedded.convert("RGB")), noisy)  # 64 colours fit a 256-colour palette
    assert len(big) < (tmp_path / "big.png").stat().st_size
    small = sections.figure(tmp_path / "small.png", "few lines")
    assert base64.b64decode(small.split("base64,")[1].split('"')[0]) == (tmp_path / "small.png").read_bytes()
