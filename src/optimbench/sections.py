"""What the report shows, section by section, as displayable parts.

The report opens with the answer (`answer`: what ran; with `report.focus`, that optimizer against the field;
per problem the best optimizer, those the seeds cannot separate from it and the article's claims; across
problems one headline performance profile, the other measures one click away), then the details: each
problem (`problem_sections`), the claims (`claims_section`), the tuned comparison (`tuning_sections`), descent
(`descent_section`), cost (`cost_section`) and the setup (`setup`: one line per distinct setting, every run
on demand). Each section function returns a list of Markdown and Html parts (tables are complete HTML
tables in a scroll box, never cut to "…"; long parts sit in a collapsed <details>); the notebook
(report/study.ipynb) only displays them. The sentences and figure lists come from optimbench.report; the
tables are the aggregate tables of a folder (`Tables`) or any mapping of table name to DataFrame; `Links`
turns a table or figure file into a link relative to the report's folder.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import mistune
import pandas as pd
from PIL import Image

from optimbench import labels
from optimbench.calibrate import published_words
from optimbench.compare import procedure_words
from optimbench.files import ACKLEY_VIEWS, report_tables
from optimbench.labels import data_words
from optimbench.report import (
    HEADLINE,
    MEASURES,
    cost_conclusion,
    default_title,
    descent_conclusion,
    descent_figures,
    descent_finding,
    focus_lines,
    for_problem,
    metric_phrase,
    mismatch_warning,
    other_measures,
    problem_answer,
    problem_intro,
    problem_ranks_text,
    problem_title,
    profile_conclusion,
    ran_sentence,
    ranking,
    study_figures,
    study_heading,
    summary_columns,
    train_figures,
    training_conclusion,
    tune_figures,
    tuning_intro,
    tuning_summary,
)
from optimbench.runs import Plan
from optimbench.tables import read_table

# Markdown to HTML with any raw HTML in the text escaped (a title or a name is text, never markup).
_MARKDOWN = mistune.create_markdown(escape=True)
TABLE_HEIGHT = 420  # px: a longer table scrolls inside its box
# Rows a table shows in the report when its whole CSV is linked beside it: a 5,000-run study's table of every
# run would be megabytes of HTML no one scrolls (issue 38); the CSV holds every row.
TABLE_ROWS = 500
FIGURE_BYTES = 1_000_000  # a larger PNG is embedded with a palette: a 5,000-run report stays under 10 MB


class Markdown(str):
    """Markdown text the notebook displays, rendered to HTML here (as_html: any raw HTML in it escaped)."""

    def _repr_html_(self) -> str:
        return as_html(self)

    def _repr_pretty_(self, printer, cycle) -> None:  # the notebook's text/plain: not the text a second time
        printer.text("<Markdown>")


class Html(str):
    """HTML the notebook displays as it is (a figure, a table, a collapsed section)."""

    def _repr_html_(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text("<HTML>")


class Tables:
    """The aggregate tables of a folder that the report reads (optimbench.files.report_tables: the report
    rule's inputs), each read on first use: `tables["runs"]` is runs.parquet. The sections take any mapping
    of table name to DataFrame (a dict of hand-made tables in the tests).

    Raises (on reading):
        KeyError: a table the report rule does not declare, so that a rule never misses what the report reads.
    """

    def __init__(self, folder, plan: Plan):
        self.folder, self.names, self.read = Path(folder), report_tables(plan.tune is not None), {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self.names:
            raise KeyError(f"table {name!r} is not among the report's inputs {self.names} (optimbench.files)")
        if name not in self.read:
            self.read[name] = read_table(self.folder / f"{name}.parquet")
        return self.read[name]


class Links:
    """Links from the report (in `report_dir`) to the files beside it: a table's CSV, a figure file. Without a
    report folder a link is the path as given."""

    def __init__(self, tables_dir=None, report_dir=None):
        self.tables_dir, self.report_dir = tables_dir, report_dir

    def to(self, path) -> str:
        return Path(os.path.relpath(path, self.report_dir)).as_posix() if self.report_dir else str(path)

    def table(self, name: str) -> str | None:
        return self.to(Path(self.tables_dir) / f"{name}.csv") if self.tables_dir else None


# ---------------------------------------------------------------- parts
def _smaller_png(data: bytes) -> bytes:
    """A PNG re-encoded with a 256-colour palette: a plot's few flat colours survive, its size falls 3-5×."""
    image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def figure(path, alt: str, width: int | None = None) -> str:
    """An <img> with the PNG embedded (base64) and alternative text, for display(HTML(...)). A PNG larger than
    FIGURE_BYTES (a figure of hundreds of optimizers) is embedded with a 256-colour palette (_smaller_png)."""
    data = Path(path).read_bytes()
    encoded = base64.b64encode(data if len(data) <= FIGURE_BYTES else _smaller_png(data)).decode()
    size = f"width: {width}px; " if width else ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}" style="{size}max-width: 100%">'


def _figures(pairs) -> list[Html]:
    return [Html(figure(path, alt)) for path, alt in pairs]


def _cell(value) -> str:
    """A table cell: numbers as the report prints them (4 decimals; a small one such as a learning rate with 3
    significant digits); a short text kept on one line, a long one wrapped."""
    if isinstance(value, float):
        return f"{value:.3g}" if value and abs(value) < 0.01 else labels.number(value)
    text = "" if value is None else str(value)
    return text.replace(" ", "\u00a0") if len(text) <= 30 else text


def table(frame: pd.DataFrame, csv: str | None = None, height: int = TABLE_HEIGHT) -> Html:
    """Every row and column of `frame` as an HTML table (text escaped, long text wrapped) in a box that scrolls
    when it is taller than `height` px or wider than the page; `csv`: a link to the whole table as CSV. With
    that link, a table of more than TABLE_ROWS rows shows its first TABLE_ROWS and says so."""
    shown = frame.head(TABLE_ROWS) if csv and len(frame) > TABLE_ROWS else frame
    body = shown.to_html(index=False, escape=True, na_rep="–", formatters={c: _cell for c in frame.columns},
                         classes="ob-table", border=0)
    link = f'<p><a href="{html.escape(csv)}">the table as CSV</a></p>' if csv else ""
    if len(shown) < len(frame):
        link = (f'<p>The first {len(shown):,} of {len(frame):,} rows; every row: '
                f'<a href="{html.escape(csv)}">the table as CSV</a></p>')
    return Html(f'<div class="ob-scroll" style="max-height: {height}px; overflow: auto; max-width: 100%">'
                f"<style>.ob-table td {{white-space: normal; max-width: 40em; vertical-align: top}}</style>"
                f"{body}</div>{link}")


def as_html(part) -> str:
    """A part as HTML: Markdown rendered (raw HTML in it escaped), a DataFrame as a `table`, Html as it is."""
    if isinstance(part, pd.DataFrame):
        return table(part)
    if isinstance(part, Markdown):
        return _MARKDOWN(str(part))
    return str(part)


def details(summary: str, parts, opened: bool = False) -> Html:
    """A collapsible section: `summary` (Markdown) always shown, `parts` on a click."""
    inner = "".join(as_html(p) for p in parts)
    head = _MARKDOWN(summary).strip().removeprefix("<p>").removesuffix("</p>")
    return Html(f"<details{' open' if opened else ''}><summary>{head}</summary>{inner}</details>")


def heading(text: str, anchor: str, level: int = 2) -> Html:
    return Html(f'<h{level} id="{anchor}">{html.escape(text, quote=False)}</h{level}>')


def headings(plan: Plan, runs: pd.DataFrame) -> dict[str, str]:
    """{problem: what its runs used} (study_heading of each problem's runs, with its data source)."""
    return {name: study_heading(for_problem(runs, name), p.data_source) for name, p in plan.problems.items()}


def _descent_functions(tables) -> list[str]:
    runs = tables["descent_runs"]
    return sorted(runs["function"].unique()) if "function" in runs else []


def title(plan: Plan) -> list:
    """The report's title (escaped): report.title, or one made from the study's problems."""
    text = plan.settings.get("title") or default_title(plan.problems, plan.settings["train"]["optimizers"],
                                                       plan.descent_functions())
    return [Html(f"<h1>{html.escape(text)}</h1>")]


CONTENTS = {"per-problem": "Per problem", "claims": "The article's claims", "tuned": "Tuned comparison",
            "descent": "Descent on 2-D functions", "cost": "Cost", "setup": "Setup"}


# ---------------------------------------------------------------- the answer
def _problem_lines(plan: Plan, tables) -> str:
    """Per problem its answer line, and under it the article's claims judged there."""
    summary, claims, lines = tables["optimizer_summary"], tables["article_claims"], []
    for name, p in plan.problems.items():
        lines.append(problem_answer(for_problem(summary, name), problem_title(p), p.primary, plan.confidence))
        mine = for_problem(claims, name) if not claims.empty else claims
        if len(mine):
            counts = mine["verdict"].value_counts()
            lines.append(f"  - The article's {len(mine)} claims here: " + ", ".join(
                f"{counts[v]} {v}" for v in ("holds", "contradicted", "inconclusive", "not tested") if v in counts)
                + ":")
            lines += [f"    - *{r.verdict}*: {r.claim}" for r in mine.itertuples()]
    return "\n".join(lines)


def _across_problems(plan: Plan, tables, figures_dir, links: Links) -> list:
    """The headline profile (one measure, HEADLINE) with its figure; the other measures and ranks on a click."""
    problems, focus = plan.problems, plan.settings.get("focus")
    figures, scores = study_figures(figures_dir), tables["profile_score"]
    others = [Markdown(other_measures(scores, tables["rank_summary"], len(problems))),
              *_figures([figures["performance_profile"]]),
              table(scores.pivot(index="optimizer", columns="measure", values="score").reset_index(),
                    links.table("profile_score")),
              Markdown(problem_ranks_text(tables["problem_ranks"], problems)), *_figures([figures["ranks"]]),
              table(tables["rank_summary"], links.table("rank_summary"))]
    other_names = ", ".join(MEASURES[m] for m in MEASURES if m != HEADLINE)
    return [Markdown(f"**Across problems.** {profile_conclusion(scores, len(problems), focus)} Measured by the "
                     f"{MEASURES[HEADLINE]}, what each problem's answer above ranks by."),
            Html(figure(*figures["headline_profile"], width=860)),
            details(f"Other measures ({other_names}) and the ranks per problem", others)]


def answer(plan: Plan, tables, figures_dir, links: Links | None = None) -> list:
    """The first screen: a warning when the runs differ from the config, what ran, the focus optimizer's
    verdicts (with report.focus), per problem the answer and the claims, across problems the headline profile;
    then the contents of the details."""
    links = links or Links()
    parts = [heading("The answer", "answer")]
    parts += [Markdown(warning)] if (warning := mismatch_warning(tables["runs"])) else []
    parts += [Markdown(ran_sentence(tables["runs"])), Markdown(procedure_words(plan.confidence))]
    if published := plan.settings.get("published"):  # the field imported, not trained here (optimbench.published)
        parts.append(Markdown(published_words(published, tables["calibration"])))
    if (text := focus_lines(tables["focus"], plan.problems, plan.confidence)):
        parts += [Markdown(text), details("Every comparison of the focus optimizer (table)",
                                          [table(tables["focus"], links.table("focus"))])]
    summary = tables["optimizer_summary"]
    family = (f" Places and \"can be first\" come from the comparison of every pair of optimizers on each problem: "
              f"one family of {int(summary['field_family'].iloc[0])} comparisons, Holm"
              + (" (the focus's comparisons are their own family, above)" if plan.settings.get("focus") else "")
              + "." if "field_family" in summary and len(summary) else "")
    parts.append(Markdown(f"**Per problem.**{family}\n\n" + _problem_lines(plan, tables)))
    if len(plan.problems) > 1:
        parts += _across_problems(plan, tables, figures_dir, links)
    absent = {"tuned": not plan.tune, "claims": tables["article_claims"].empty}
    shown = [a for a in CONTENTS if not absent.get(a)]
    parts.append(Markdown("Details: " + " · ".join(f"[{CONTENTS[a]}](#{a})" for a in shown)))
    return parts


# ---------------------------------------------------------------- details
def problem_sections(plan: Plan, tables, figures_dir, links: Links | None = None) -> list:
    """Per problem, collapsed: its intro, conclusion, ranking, summary table and figures."""
    links, study = links or Links(), headings(plan, tables["runs"])
    parts = [heading("Per problem", "per-problem")]
    for name, p in plan.problems.items():
        mine = for_problem(tables["optimizer_summary"], name)
        inner = [Markdown(f"Runs: {study[name]}. " + problem_intro(p)),
                 Markdown(training_conclusion(mine, p.primary, plan.confidence)),
                 Markdown(ranking(mine, p.primary, plan.confidence)),
                 table(mine[summary_columns(mine)], links.table("optimizer_summary")),
                 *_figures(train_figures(figures_dir, p))]
        parts.append(details(f"**{p.name}** ({study[name]}; final {metric_phrase(p.primary)})", inner,
                             opened=len(plan.problems) == 1))
    return parts


def claims_section(plan: Plan, tables, links: Links | None = None) -> list:
    """The article's claims, checked, each with its evidence in full (nothing when none was judged)."""
    claims, problems = tables["article_claims"], plan.problems
    if claims.empty:
        return []
    judged = (", ".join(problem_title(problems[p]) if p in problems else p for p in dict.fromkeys(claims["problem"]))
              if "problem" in claims else "the article's problem")
    return [heading("The article's claims, checked", "claims"),
            Markdown(f"Judged on {judged}, among the article's optimizers present in this study, by the study's "
                     "comparison procedure (stated at the top; each claim's comparisons one family, Holm): *holds* "
                     "when every comparison it makes is decided in its favour, *contradicted* when one is decided "
                     "against it, *inconclusive* when the seeds cannot tell; the equivalence and one-sample tests of "
                     "two claims are named in their rows."),
            table(claims[[c for c in ("problem", "claim", "verdict", "measured", "compared") if c in claims]],
                  (links or Links()).table("article_claims"))]


def tuning_sections(plan: Plan, tables, figures_dir, links: Links | None = None) -> list:
    """The tuned comparison, like with like: per problem the tuned optimizers against their own defaults and each
    other (report.tuning_summary), the focus optimizer tuned against the others tuned (when it was tuned), then
    collapsed the selection, figures, rankings and every trial."""
    if not plan.tune:
        return []
    links = links or Links()
    parts = [heading("Tuned comparison", "tuned"),
             Markdown(f"Only the tuned optimizers ({', '.join(plan.tune.optimizers)}) are compared: each with its "
                      "own default-setting runs and with each other. Each one's setting was chosen on validation "
                      "data, then rerun over the study's seeds.")]
    for name, p in plan.problems.items():
        trials, judged = for_problem(tables["tune_trials"], name), for_problem(tables["tuned_claims"], name)
        summary = tuning_summary(for_problem(tables["rankings"], name), for_problem(tables["article_claims"], name),
                                 judged, for_problem(tables["tune_selection"], name), p.primary,
                                 for_problem(tables["runs"], name), for_problem(tables["tuned_runs"], name))
        focus = focus_lines(for_problem(tables["tuned_focus"], name), plan.problems, plan.confidence)
        inner = [Markdown(tuning_intro(plan.tune, p, trials)),
                 table(for_problem(tables["tune_selection"], name), links.table("tune_selection")),
                 *_figures(tune_figures(figures_dir, p, plan.tune.select_by)),
                 Markdown("Ranking of the tuned optimizers at each budget k (expected best validation score):"),
                 table(for_problem(tables["budget_curves"], name).pivot(index="k", columns="optimizer",
                                                                        values="rank").reset_index()),
                 Markdown(f"Default and tuned final {metric_phrase(p.primary)} (tuned columns: tuned optimizers "
                          "only; the ranks of each column are among its own optimizers):"),
                 table(for_problem(tables["rankings"], name), links.table("rankings"))]
        if not judged.empty:
            inner += [Markdown("The article's claims, judged on the tuned runs:"), table(judged)]
        inner += [Markdown("Every trial:"), table(trials, links.table("tune_trials"))]
        tuned_focus = f"\n\nTuned against tuned: {focus}" if focus else ""
        parts += [Markdown(f"**{problem_title(p)}**\n\n{summary}{tuned_focus}"),
                  details(f"{p.name}: the selection, figures, rankings and every trial", inner)]
    return parts


def descent_section(tables, figures_dir, links: Links | None = None) -> list:
    """The article's descent, as printed and with the correct gradient, the views of Ackley, every run on a
    click, and the interactive 3-D views as their own files (plotly, offline), linked."""
    links = links or Links()
    reproduction, runs, functions = tables["descent_reproduction"], tables["descent_runs"], _descent_functions(tables)
    figures = descent_figures(figures_dir, functions)
    parts = [heading("Gradient descent on 2-D test functions", "descent"),
             Markdown("The article's loop on Ackley, run exactly as printed (its gradient has an operator-precedence "
                      "slip: `f(X + h·eᵢ) - f(X - h·eᵢ) / (2h)`) and with the correct central difference.\n\n"
                      + descent_conclusion(reproduction) + "\n" + descent_finding(runs))]
    if not reproduction.empty:
        parts.append(table(reproduction[[c for c in ["function", "method", "lr", "momentum"] + [
            f"{value}_{gradient}" for gradient in ("as-printed", "central")
            for value in ("epochs", "final_f", "distance_to_minimum", "reached_minimum")] if c in reproduction]],
            links.table("descent_reproduction")))
    parts += _figures([figures[None, ACKLEY_VIEWS]])
    if functions:
        parts.append(Markdown("Interactive 3-D views, each its own page (drag to rotate; the legend toggles "
                              "trajectories; works offline): " + ", ".join(
                                  f"[{f}]({links.to(figures[f, 'interactive'])})" for f in functions) + "."))
        every = [table(runs[[c for c in ["group", "function", "method", "gradient", "epochs", "converged", "diverged",
                                         "final_f", "distance_to_minimum", "reached_minimum"] if c in runs]],
                       links.table("descent_runs"))]
        for function in functions:
            every += [Markdown(f"**{function}: every run**"), *_figures([figures[function, "all_runs"]])]
        parts.append(details(f"Every descent run ({len(runs)}) and its plot per function", every))
    return parts


def cost_section(plan: Plan, tables, links: Links | None = None) -> list:
    """Device time: the conclusion, and the cost table with whatever columns it holds."""
    cost = tables["cost"]
    return [heading("Cost", "cost"),
            Markdown("Device time per optimizer and for the whole study: each job's wall time (its run.json's "
                     "`job_seconds`) times the share of a device it held, split into the start-up each run pays "
                     "once and the cost per epoch.\n\n"
                     + cost_conclusion(cost, "; ".join(headings(plan, tables["runs"]).values()))),
            table(cost, (links or Links()).table("cost"))]


IMPLEMENTATION = ("foreach", "capturable", "differentiable", "fused", "maximize")  # switches, not hyperparameters
RUN_KEYS = ("problem", "optimizer", "seed")
NOT_SETTINGS = ("matches_config", "differences", "diverged", "diverged_epoch", "resumed_after_epoch")


def _distinct(runs: pd.DataFrame, column: str) -> str:
    """One line for a setting of the runs: its one value, or its value per optimizer / per problem when it
    follows them, else its values."""
    values = runs[column].map(lambda v: "–" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    if values.nunique() == 1:
        return f"- **{column}**: {values.iloc[0]}"
    for key in ("optimizer", "problem"):
        by = values.groupby(runs[key], sort=False).agg(lambda v: ", ".join(dict.fromkeys(v)))
        if (values.groupby(runs[key]).nunique() == 1).all():
            return f"- **{column}** by {key}: " + "; ".join(f"{k}: {v}" for k, v in by.items())
    return f"- **{column}**: " + ", ".join(dict.fromkeys(values)) + " (varies between runs)"


def optimizer_settings(plan: Plan) -> str:
    """Every optimizer's effective settings: its class's defaults with the config's kwargs filled in (the plan's
    optimizer_settings), implementation switches (foreach, fused, ...) left out."""
    settings = plan.settings.get("optimizer_settings") or {}
    if not settings:
        return ""
    lines = [f"- **{name}**: " + ", ".join(f"{k} {_setting(v)}" for k, v in values.items() if k not in IMPLEMENTATION)
             for name, values in settings.items()]
    return "**Optimizer settings** (each class's defaults with the configuration's values filled in):\n\n" + "\n".join(
        lines)


def _setting(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def setup(plan: Plan, tables, links: Links | None = None) -> list:
    """What the runs used, collapsed: per problem its data and model, one line per distinct setting the runs
    recorded (run.json), and every run on demand."""
    runs, study = tables["runs"], headings(plan, tables["runs"])
    problems = "\n".join(f"- {p.name}: {study[name]}; data source `{p.data_source}` "
                         f"({data_words(p.dataset, p.data_source)})" for name, p in plan.problems.items())
    settings = [c for c in runs.columns if c not in RUN_KEYS + NOT_SETTINGS]
    lines = "\n".join(_distinct(runs, c) for c in settings) if len(runs) else "No training runs."
    settings_text = optimizer_settings(plan)
    return [heading("Setup", "setup"), *([Markdown(settings_text)] if settings_text else []),
            details(f"What the {len(runs)} runs used: one line per setting, as their run.json recorded it",
                    [Markdown(problems + "\n\n" + lines),
                     details(f"Every run ({len(runs)} rows)", [table(runs, (links or Links()).table("runs"))])])]
