"""What the report shows, section by section, as displayable parts.

Each section function (`title`, `answer`, `setup`, `training_sections`, `claims_section`, `descent_section`,
`descent_runs_section`, `interactive_views`, `cost_section`, `tuning_sections`) returns a list of Markdown, Html
(an embedded figure, an interactive view) and tables, in the report's order; the notebook (report/study.ipynb)
only displays them. The sentences and the figure lists come from optimbench.report; the tables are the
aggregate tables of a folder (`Tables`) or any mapping of table name to DataFrame.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from optimbench.files import ACKLEY_VIEWS, report_tables
from optimbench.plan import Plan
from optimbench.report import (
    claims_summary,
    cost_conclusion,
    descent_conclusion,
    descent_figures,
    descent_finding,
    for_problem,
    metric_phrase,
    mismatch_warning,
    problem_answer,
    problem_intro,
    problem_ranks_text,
    profile_conclusion,
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


class Markdown(str):
    """Markdown text the notebook displays (IPython renders an object by its _repr_markdown_)."""

    def _repr_markdown_(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:  # the notebook's text/plain: not the text a second time
        printer.text("<Markdown>")


class Html(str):
    """HTML the notebook displays as it is (a figure, an interactive view)."""

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
            self.read[name] = pd.read_parquet(self.folder / f"{name}.parquet")
        return self.read[name]


def figure(path, alt: str) -> str:
    """An <img> with the PNG embedded (base64) and alternative text, for display(HTML(...))."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}" style="max-width: 100%">'


def _figures(pairs) -> list[Html]:
    return [Html(figure(path, alt)) for path, alt in pairs]


def _shown(frame: pd.DataFrame, columns) -> pd.DataFrame:
    return frame[[c for c in columns if c in frame]]


def headings(plan: Plan, runs: pd.DataFrame) -> dict[str, str]:
    """{problem: what its runs used} (study_heading of each problem's runs)."""
    return {name: study_heading(for_problem(runs, name)) for name in plan.problems}


def title(plan: Plan) -> list:
    return [Markdown(f"# {plan.settings['title']}")]


def _across_problems(plan: Plan, tables, figures_dir) -> list:
    """The answer's part for several problems: profile scores and ranks, then each problem's best."""
    problems = plan.problems
    profile, ranks = study_figures(figures_dir)
    summary = tables["optimizer_summary"]
    return [Markdown("**Across problems.**\n\n" + profile_conclusion(tables["profile_score"], tables["rank_summary"],
                                                                    len(problems))),
            *_figures([profile]), tables["profile_score"].pivot(index="optimizer", columns="measure", values="score"),
            Markdown(problem_ranks_text(tables["problem_ranks"], problems)), *_figures([ranks]),
            tables["rank_summary"],
            Markdown("**Per problem.**\n\n" + "\n".join(problem_answer(for_problem(summary, name), p.title, p.primary)
                                                        for name, p in problems.items()))]


def _tuned_answer(plan: Plan, tables) -> Markdown:
    return Markdown("**Tuned comparison** (each optimizer's setting chosen on validation data, then rerun over the "
                    "seeds).\n\n" + "\n".join(
                        f"*{p.title}*\n\n" + tuning_summary(
                            for_problem(tables["rankings"], name), for_problem(tables["article_claims"], name),
                            for_problem(tables["tuned_claims"], name), for_problem(tables["tune_selection"], name),
                            p.primary) + "\n" for name, p in plan.problems.items()))


def answer(plan: Plan, tables, figures_dir) -> list:
    """The answer: a warning when the runs differ from the config, the study's size, the ranking (across
    problems, or the one problem's), the claims, descent, cost and the tuned comparison."""
    problems, train, runs = plan.problems, plan.settings["train"], tables["runs"]
    study = headings(plan, runs)
    parts = [Markdown(warning)] if (warning := mismatch_warning(runs)) else []
    parts.append(Markdown(f"**Training study**: {len(problems)} problem(s), {len(train['optimizers'])} optimizers × "
                          f"{len(train['seeds'])} seeds × {train['epochs']} epochs."))
    if len(problems) > 1:
        parts += _across_problems(plan, tables, figures_dir)
    else:
        summary = tables["optimizer_summary"]
        parts += [Markdown(f"**{p.title}** ({study[name]}).\n\n"
                           + ranking(for_problem(summary, name), p.primary, plan.confidence))
                  for name, p in problems.items()]
    claims = tables["article_claims"]
    if not claims.empty:
        parts.append(Markdown(claims_summary(claims, {name: p.title for name, p in problems.items()})))
    parts.append(Markdown("**Descent on 2-D test functions.**\n\n" + descent_conclusion(tables["descent_reproduction"])
                          + "\n" + descent_finding(tables["descent_runs"])))
    parts.append(Markdown("**Cost.**\n\n" + cost_conclusion(tables["cost"], "; ".join(study.values()))))
    return parts + ([_tuned_answer(plan, tables)] if plan.tune else [])


RUN_COLUMNS = ["problem", "optimizer", "seed", "class", "kwargs", "demon", "epochs", "batch_size", "width",
               "train_images", "test_images", "device", "threads", "bf16", "torch", "git", "resumed_after_epoch",
               "diverged", "matches_config"]


def setup(plan: Plan, tables) -> list:
    """What the runs used, per problem, the training settings, and every run as its run.json recorded it."""
    train, study = plan.settings["train"], headings(plan, tables["runs"])
    return [Markdown("\n".join(f"- {p.title}: **{study[name]}** (data source `{p.data_source}`)"
                               for name, p in plan.problems.items())
                     + f"\n- Seeds: {train['seeds']}; batch size {train['batch_size']}; epochs {train['epochs']}; "
                     f"learning-rate schedule: {train['lr_schedule']}"),
            _shown(tables["runs"], RUN_COLUMNS)]


def training_sections(plan: Plan, tables, figures_dir) -> list:
    """Per problem: its intro, conclusion, ranking (when there are several), summary table and figures."""
    problems, study = plan.problems, headings(plan, tables["runs"])
    parts = []
    for name, p in problems.items():
        mine = for_problem(tables["optimizer_summary"], name)
        parts += [Markdown(f"## Training study: {study[name]}\n**{p.title}** (problem `{name}`). " + problem_intro(p)),
                  Markdown(training_conclusion(mine, p.primary, plan.confidence))]
        parts += [Markdown(ranking(mine, p.primary, plan.confidence))] if len(problems) > 1 else []
        parts += [mine[summary_columns(mine)], *_figures(train_figures(figures_dir, p))]
    return parts


def claims_section(plan: Plan, tables) -> list:
    """The article's claims, checked (nothing when none was judged)."""
    claims, problems = tables["article_claims"], plan.problems
    if claims.empty:
        return []
    judged = (", ".join(problems[p].title if p in problems else p for p in dict.fromkeys(claims["problem"]))
              if "problem" in claims else "the article's problem")
    return [Markdown("## The article's claims, checked\n"
                     f"Judged on {judged}, among the article's optimizers present in this study, with one-sided Welch "
                     "tests on the per-seed values: *holds* when every comparison it makes is significant in its "
                     "favour, *contradicted* when one is significant against it, *inconclusive* when the seeds "
                     "cannot tell."), claims]


def _descent_functions(tables) -> list[str]:
    return sorted(tables["descent_runs"]["function"].unique())


def descent_section(tables, figures_dir) -> list:
    """The article's descent, as printed and with the correct gradient, and the views of Ackley."""
    reproduction = tables["descent_reproduction"]
    parts = [Markdown(descent_conclusion(reproduction))]
    if not reproduction.empty:
        parts.append(_shown(reproduction, ["function", "method", "lr", "momentum"] + [
            f"{value}_{gradient}" for gradient in ("as-printed", "central")
            for value in ("epochs", "final_f", "distance_to_minimum", "reached_minimum")]))
    return parts + _figures([descent_figures(figures_dir, [])[None, ACKLEY_VIEWS]])


def descent_runs_section(tables, figures_dir) -> list:
    """Every descent run, then per test function the plot of every run on it."""
    runs, functions = tables["descent_runs"], _descent_functions(tables)
    figures = descent_figures(figures_dir, functions)
    parts = [runs[["group", "function", "method", "gradient", "epochs", "converged", "diverged", "final_f",
                   "distance_to_minimum", "reached_minimum"]]]
    for function in functions:
        parts += [Markdown(f"### {function}: every run"), *_figures([figures[function, "all_runs"]])]
    return parts


def interactive_views(tables, figures_dir) -> list:
    """Ackley's interactive 3-D view inline (one keeps the report light); the others named as files."""
    functions = _descent_functions(tables)
    views = descent_figures(figures_dir, functions)
    return [Html(views[f, "interactive"].read_text()) if f == "ackley"
            else Markdown(f"- {f}: `{views[f, 'interactive']}`") for f in functions]


COST_COLUMNS = ["problem", "optimizer", "runs", "epochs", "device", "unit", "share", "job_seconds", "startup_seconds",
                "device_seconds", "startup_device_seconds_per_run", "device_seconds_per_epoch", "samples_per_second",
                "seconds_per_step", "step_cost_vs_baseline", "step_baseline", "peak_host_mb", "peak_gpu_mb", "mem_mb",
                "runs_over_request"]


def cost_section(plan: Plan, tables) -> list:
    cost = tables["cost"]
    return [Markdown(cost_conclusion(cost, "; ".join(headings(plan, tables["runs"]).values()))),
            _shown(cost, COST_COLUMNS)]


def tuning_sections(plan: Plan, tables, figures_dir) -> list:
    """The tuned comparison per problem: how it was selected, the selection, its figures, the ranking at each
    budget, the default ranking beside the tuned one, the claims on the tuned runs and every trial."""
    if not plan.tune:
        return []
    parts = [Markdown("## Tuned comparison\nPer problem: the selection on validation data, the figures, the "
                      "default-hyperparameter ranking beside the tuned one, and every trial.")]
    for name, p in plan.problems.items():
        mine, judged = for_problem(tables["tune_trials"], name), for_problem(tables["tuned_claims"], name)
        parts += [Markdown(f"### {p.title}\n" + tuning_intro(plan.tune, p, mine)),
                  for_problem(tables["tune_selection"], name),
                  *_figures(tune_figures(figures_dir, p, plan.tune.select_by)),
                  Markdown("Ranking of the optimizers at each budget k (expected best validation score):"),
                  for_problem(tables["budget_curves"], name).pivot(index="k", columns="optimizer", values="rank"),
                  Markdown("The default-hyperparameter ranking beside the tuned one (final "
                           f"{metric_phrase(p.primary)}):"),
                  for_problem(tables["rankings"], name)]
        parts += [Markdown("The article's claims, judged on the tuned runs:"), judged] if not judged.empty else []
        parts += [Markdown("Every trial:"), mine]
    return parts
