"""Figures (SPEC §2.5, §2.9): the article's curves with seed bands, summaries, performance profiles and
ranks across problems, the tuned comparison and the descent views.

Training and tuning figures are drawn per problem of the plan (optimbench.plan.Plan), in the problem's own
primary metric and its direction (optimbench.metrics.Metric, named by optimbench.labels), into
`{out}/{problem}/`. optimbench.files names every file the writers write (`train_figure_files` /
`tune_figure_files`, also reachable here, and `descent_figure_files`); the rules declare their outputs from
there. Every optimizer keeps one colour across all figures (`palette`). Training figures are written as PNG
and SVG, tuning figures as PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

from optimbench import functions, labels  # noqa: E402
from optimbench.files import (  # noqa: E402, F401
    ACKLEY_VIEWS,
    TRAIN_FIGURE_TABLES,
    TRAIN_FORMATS,
    TUNE_FIGURE_TABLES,
    TUNE_FORMATS,
    descent_figure_paths,
    train_figure_files,
    train_figure_stems,
    tune_figure_files,
)
from optimbench.io import atomic_path, write_text  # noqa: E402
from optimbench.metrics import Metric  # noqa: E402
from optimbench.runs import Plan, read_plan  # noqa: E402
from optimbench.search import criterion_label  # noqa: E402
from optimbench.tables import read_table  # noqa: E402


def palette(names) -> dict[str, tuple]:
    """One colour per name, fixed by the names' sorted order (so every figure agrees)."""
    names = sorted(set(names))
    return dict(zip(names, sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))))


def save(fig, stem: Path, formats=("png", "svg")) -> list[Path]:
    """Save a figure atomically as `stem.<format>` for each format (the suffix is appended, never
    substituted: a stem holding dots keeps them); returns the paths."""
    written = []
    for fmt in formats:
        target = Path(f"{stem}.{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight")
        written.append(target)
    plt.close(fig)
    return written


# ---------------------------------------------------------------- training study
MEASURES = {"metric": "final primary metric (ratio to the best)", "time": "seconds to target (ratio to the fastest)",
            "epochs": "epochs to target (ratio to the fewest)"}


def _interval_label(confidence: float) -> str:
    return f"{confidence:.0%} t-interval across seeds, clipped to the metric's range"


def curves(stats: pd.DataFrame, colours: dict, path: Path, metrics: list[Metric],
           confidence: float = 0.95) -> list[Path]:
    """Learning curves over epochs: a grid of panels, one row per split (training, then test), one column per
    metric of `metrics` (the problem's train_ and test_ metrics, StudyProblem.split_metrics; for classification
    the article's four plots), one line per optimizer: the mean across seeds with the tables' interval
    (optimbench.stats.mean_interval) as a band. A diverged seed scores its metric's worst value (accuracy 0; a
    loss, negative ELBO or perplexity ∞, not drawn)."""
    splits = list(dict.fromkeys(m.name.partition("_")[0] for m in metrics))
    names = list(dict.fromkeys(m.name.partition("_")[2] for m in metrics))
    fig, axes = plt.subplots(len(splits), len(names), figsize=(6 * len(names), 4 * len(splits)), sharex=True,
                             squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)  # a split without a metric leaves its panel blank
    for metric in metrics:
        split, _, name = metric.name.partition("_")
        ax = axes[splits.index(split), names.index(name)]
        ax.set_visible(True)
        for optimizer, line in stats[stats["metric"] == metric.name].sort_values("epoch").groupby("optimizer"):
            finite = line.replace([np.inf, -np.inf], np.nan)
            ax.plot(finite["epoch"], finite["mean"], label=optimizer, color=colours[optimizer], marker=".")
            ax.fill_between(finite["epoch"], finite["ci_low"], finite["ci_high"], color=colours[optimizer],
                            alpha=0.2)
        ax.set(title=labels.metric_label(metric.name), xlabel="epoch",
               ylabel=labels.axis_label(metric.name, metric.higher_is_better))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(title="optimizer", fontsize="small")
    fig.suptitle(f"Training and test curves (mean across seeds; band: {_interval_label(confidence)})")
    return save(fig, path)


def _completed_limits(values: np.ndarray, metric: Metric) -> tuple[float, float] | None:
    """The y-range of a final-metric figure: a bounded metric's whole range (accuracy: 0 to 1) with a 2 % margin;
    otherwise the completed seeds' and intervals' values with a 5 % margin (None without any): a failed seed
    never sets the axis."""
    if np.isfinite(metric.low) and np.isfinite(metric.high):
        margin = 0.02 * (metric.high - metric.low)
        return metric.low - margin, metric.high + margin
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low) if high > low else 0.05 * max(abs(high), 1.0)
    return low - margin, high + margin


def final_metric(summary: pd.DataFrame, seeds: pd.DataFrame, colours: dict, path: Path, metric: Metric,
                 confidence: float = 0.95, formats=TRAIN_FORMATS) -> list[Path]:
    """The final primary metric per optimizer in the tables' order (`rank`): the mean of the completed seeds
    (`final`) with the tables' interval, each completed seed a dot. A failed seed (seed_summary's `failed`:
    diverged, or far worse than its best epoch; optimbench.metrics.failed) is a cross at the axis's worse edge
    (top for a lower-is-better metric, bottom otherwise), never a point that sets the axis: the y-range is the
    completed seeds' and the intervals'."""
    order = summary.sort_values(["rank", "optimizer"])
    lost = seeds["failed"].astype(bool) if "failed" in seeds else seeds["diverged"].astype(bool)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    shown = [seeds.loc[~lost, "final"].to_numpy(float), order[["final", "final_ci_low", "final_ci_high"]].to_numpy(
        float).ravel()]
    limits = _completed_limits(np.concatenate(shown), metric)
    edge = 0.0 if metric.higher_is_better else 1.0  # the worse edge, in axes coordinates
    for i, row in enumerate(order.itertuples()):
        low, high, mean = row.final_ci_low, row.final_ci_high, row.final
        if np.isfinite(low) and np.isfinite(high) and np.isfinite(mean):
            ax.errorbar(i, mean, yerr=[[mean - low], [high - mean]], fmt="D", color=colours[row.optimizer],
                        capsize=6, ms=8)
        elif np.isfinite(mean):
            ax.plot(i, mean, "D", color=colours[row.optimizer], ms=8)
        mine = seeds["optimizer"] == row.optimizer
        completed = seeds.loc[mine & ~lost, "final"].astype(float)
        ax.plot(np.full(len(completed), i + 0.15), completed, "o", color="black", alpha=0.6, ms=5)
        failed = int((mine & lost).sum())
        if failed:  # at the worse edge (x in data, y in axes coordinates), whatever its value
            ax.plot(np.full(failed, i + 0.15), np.full(failed, edge), "x", color="crimson", ms=9, mew=2,
                    transform=ax.get_xaxis_transform(), clip_on=False)
    ax.set_xticks(range(len(order)), order["optimizer"], rotation=20, ha="right")
    if limits is not None:
        ax.set_ylim(*limits)
    name = labels.metric_label(metric.name)
    ax.set(title=f"Final {name} ({labels.direction(metric.higher_is_better)}; diamond: mean of completed seeds, "
                 f"bar: {_interval_label(confidence)};\ndots: seeds; red crosses at the edge: failed seeds, not drawn "
                 "to scale (their values in the seed table))",
           ylabel=labels.axis_label(metric.name, metric.higher_is_better))
    return save(fig, path, formats)


def generalisation_gap(stats: pd.DataFrame, colours: dict, path: Path, metric: Metric) -> list[Path]:
    """How much better the primary metric is on the training set than on the test set, over epochs (mean
    across seeds): train − test for a higher-is-better metric, test − train for a lower-is-better one."""
    name = metric.name.removeprefix("test_")
    train, test = f"train_{name}", f"test_{name}"
    wide = stats.pivot_table(index=["optimizer", "epoch"], columns="metric", values="mean").reset_index()
    sign = 1.0 if metric.higher_is_better else -1.0
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for optimizer, line in wide.groupby("optimizer") if {train, test} <= set(wide.columns) else ():
        ax.plot(line["epoch"], sign * (line[train] - line[test]), label=optimizer, color=colours[optimizer],
                marker=".")
    ax.axhline(0, color="grey", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    first, second = (train, test) if metric.higher_is_better else (test, train)
    ax.set(title=f"Generalisation gap: {labels.metric_label(first)} − {labels.metric_label(second)} "
                 "(above 0: better on the training set)",
           xlabel="epoch", ylabel=f"{labels.NAMES.get(name, name)} gap")
    ax.legend(fontsize="small")
    return save(fig, path)


def time_to_target(summary: pd.DataFrame, colours: dict, metric: Metric, target: float, path: Path,
                   confidence: float = 0.95) -> list[Path]:
    """Seconds of training to the problem's target: the mean over the seeds that reached it, with the
    tables' interval; each bar says how many seeds reached it (a diverged seed never does)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = summary.sort_values(["seconds_to_target", "optimizer"], na_position="last").reset_index(drop=True)
    heights = data["seconds_to_target"].fillna(0)
    ax.bar(data["optimizer"], heights, color=[colours[n] for n in data["optimizer"]])
    low, high = data["seconds_to_target_ci_low"], data["seconds_to_target_ci_high"]
    has_interval = low.notna() & high.notna()
    ax.errorbar(np.flatnonzero(has_interval), heights[has_interval],
                yerr=[heights[has_interval] - low[has_interval], high[has_interval] - heights[has_interval]],
                fmt="none", color="black", capsize=4)
    for i, row in data.iterrows():
        text = (f"{row['runs_reaching_target']}/{row['seeds']} reached" if row["runs_reaching_target"]
                else "never reached")
        if "mean_epoch_seconds" in row and pd.isna(row["mean_epoch_seconds"]):  # a published field: no seconds
            text += ", no timings (published)"
        ax.text(i, 0, f" {text}", rotation=90, va="bottom", ha="center", fontsize="small")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")  # long names: published ones carry their source
    ax.set(title=f"Training seconds to {labels.target_text(metric.name, metric.higher_is_better, target)}\n"
                 f"(mean over seeds that reached it; bar: {_interval_label(confidence)})", ylabel="seconds")
    return save(fig, path)


TAU_TICKS = (1, 1.05, 1.1, 1.25, 1.5, 2, 3, 4, 6, 8, 10, 20, 50, 100, 1000)


def _tau_axis(ax, tau_max: float) -> None:
    """A log τ axis from 1 to tau_max with readable ticks (1, 1.1, 1.25, 1.5, 2, 3, 4, ...), never a lone 1."""
    ax.set_xscale("log")
    ax.set_xlim(1, tau_max * 1.02)
    ticks, gap = [], np.log(tau_max) / 9  # at most ~9 labels, evenly apart on the log axis
    for t in TAU_TICKS:
        if t <= tau_max * 1.02 and (not ticks or np.log(t) - np.log(ticks[-1]) >= gap):
            ticks.append(t)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: f"{t:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _profile_panel(ax, steps_of: pd.DataFrame, score: pd.Series, colours: dict, measure: str, n_problems: int,
                   focus: str | None) -> None:
    """One measure's ρ_s(τ) step functions on `ax`; the focus optimizer first in the legend, drawn thick on top."""
    names = sorted(steps_of["optimizer"].unique(), key=lambda o: (o != focus, -score.get((measure, o), 0), o))
    for optimizer in names:
        steps = steps_of[steps_of["optimizer"] == optimizer].sort_values("tau")
        mine = optimizer == focus
        ax.step(steps["tau"], steps["fraction"], where="post", color=colours[optimizer], lw=3.5 if mine else 1.5,
                zorder=3 if mine else 2, label=f"{optimizer} (score {score.get((measure, optimizer), np.nan):.2f})")
    _tau_axis(ax, max(4.0, float(steps_of.loc[np.isfinite(steps_of["tau"]), "tau"].max())))
    ax.set_ylim(-0.02, 1.02)
    ax.set(title=MEASURES[measure], xlabel="τ: performance ratio to the best on the problem (log scale)",
           ylabel=f"ρ(τ): share of the {n_problems} problems\nwithin τ of the best (higher is better)")
    ax.legend(fontsize="small", loc="lower right", title="optimizer (score: higher is better)",
              title_fontsize="small")


def performance_profile(profile: pd.DataFrame, scores: pd.DataFrame, colours: dict, path: Path,
                        n_problems: int, focus: str | None = None, measures=None) -> list[Path]:
    """Dolan & Moré (2002) performance profiles, one panel per measure of `measures` (default every one of
    `MEASURES` the table holds): ρ_s(τ), the fraction of problems on which optimizer s is within a factor τ of
    the best, as a step function of τ (log axis, readable ticks). `profile`: measure, optimizer, tau, fraction;
    `scores`: measure, optimizer, score (the legend's). The `focus` optimizer is listed first and drawn thick."""
    measures = [m for m in (measures or MEASURES) if m in set(profile["measure"])]
    fig, axes = plt.subplots(1, max(1, len(measures)), figsize=(6.5 * max(1, len(measures)), 4), squeeze=False)
    score = scores.set_index(["measure", "optimizer"])["score"]
    for ax, measure in zip(axes.flat, measures):
        _profile_panel(ax, profile[profile["measure"] == measure], score, colours, measure, n_problems, focus)
    fig.suptitle("Performance profiles (Dolan & Moré 2002); a diverged run or a missed target never counts")
    return save(fig, path)


def headline_profile(profile: pd.DataFrame, scores: pd.DataFrame, colours: dict, path: Path, n_problems: int,
                     focus: str | None = None, measure: str = "metric") -> list[Path]:
    """The report's headline: one measure's performance profile in one compact panel (performance_profile's)."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    if measure in set(profile["measure"]):
        _profile_panel(ax, profile[profile["measure"] == measure], scores.set_index(["measure", "optimizer"])["score"],
                       colours, measure, n_problems, focus)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), title_fontsize="small",
                  title="optimizer (score: higher\nis better)")
    return save(fig, path)


def ranks(problem_ranks: pd.DataFrame, colours: dict, path: Path, titles: dict | None = None,
          confidence: float = 0.95) -> list[Path]:
    """Each optimizer's rank per problem (1 = best, by the mean final primary metric in its direction) with
    the ranks its seeds allow as a bar (rank_low to rank_high; optimbench.performance.rank_table)."""
    problems = list(dict.fromkeys(problem_ranks["problem"]))
    optimizers = sorted(problem_ranks["optimizer"].unique())
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(problems)), 4.5))
    width = 0.6 / max(1, len(optimizers))
    for j, optimizer in enumerate(optimizers):
        mine = problem_ranks[problem_ranks["optimizer"] == optimizer].set_index("problem").reindex(problems)
        x = np.arange(len(problems)) - 0.3 + (j + 0.5) * width
        ax.errorbar(x, mine["rank"], yerr=[mine["rank"] - mine["rank_low"], mine["rank_high"] - mine["rank"]],
                    fmt="o", color=colours[optimizer], capsize=3, label=optimizer)
    ax.set_xticks(range(len(problems)), [(titles or {}).get(p, p) for p in problems], fontsize="small")
    ax.set_ylim(len(optimizers) + 0.5, 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=f"Rank per problem (1 = best; bar: the places the comparisons allow, paired t-tests, Holm, "
                 f"at {1 - confidence:.0%})", ylabel="rank")
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return save(fig, path)


def _of(frame: pd.DataFrame, problem: str) -> pd.DataFrame:
    return frame[frame["problem"] == problem]


def train_figures(plan: Plan, tables_dir, out_dir) -> list[Path]:
    """Every training figure (train_figure_files) from the tables: per problem of `plan` its curves, final
    primary metric, generalisation gap and time to target; across problems the performance profiles and
    the ranks."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    confidence, problems = plan.confidence, plan.problems
    table = {name: read_table(tables_dir / f"{name}.parquet") for name in TRAIN_FIGURE_TABLES}
    # published runs (their names carry their source, "Adam [deepobs-v1.1]") get colours of their own
    colours = palette(plan.settings["train"]["optimizers"] + [run["optimizer"] for run in plan.published_runs()])
    stems = train_figure_stems(plan, out_dir)
    written = []
    for name, problem in problems.items():
        metric = problem.primary
        stats, summary = _of(table["epoch_stats"], name), _of(table["optimizer_summary"], name)
        written += curves(stats, colours, stems[name, "curves"], problem.split_metrics(), confidence)
        written += final_metric(summary, _of(table["seed_summary"], name), colours, stems[name, "final_metric"],
                                metric, confidence)
        written += generalisation_gap(stats, colours, stems[name, "generalisation_gap"], metric)
        written += time_to_target(summary, colours, metric, problem.target, stems[name, "time_to_target"],
                                  confidence)
    focus = plan.settings.get("focus")
    written += headline_profile(table["performance_profile"], table["profile_score"], colours,
                                stems[None, "headline_profile"], len(problems), focus)
    written += performance_profile(table["performance_profile"], table["profile_score"], colours,
                                   stems[None, "performance_profile"], len(problems), focus)
    written += ranks(table["problem_ranks"], colours, stems[None, "ranks"],
                     {name: name for name in problems}, confidence)
    return written


# ---------------------------------------------------------------- tuned comparison
def sensitivity(trials: pd.DataFrame, colours: dict, criterion: str, path: Path, factor: str = "lr",
                log: bool = True, higher_is_better: bool = True) -> list[Path]:
    """Validation score of every trial against a searched factor (the learning rate by default), one line
    per optimizer (DeepOBS-style); the selected trial ringed; a diverged trial drawn as a cross at the worst
    end (the bottom when higher is better, else the top). `criterion` is the score's label."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    scores = trials["score"].astype(float)
    finite = scores[np.isfinite(scores)]
    worst = (finite.min() if higher_is_better else finite.max()) if len(finite) else 0.0
    for name, group in trials.sort_values(factor).groupby("optimizer", sort=False):
        finished = group[group["score"].notna()]
        ax.plot(finished[factor], finished["score"], "o-", color=colours[name], label=name)
        failed = group[group["score"].isna()]
        ax.plot(failed[factor], np.full(len(failed), worst), "x", color=colours[name], ms=8)
        chosen = group[group["selected"].astype(bool)]
        ax.plot(chosen[factor], chosen["score"], "o", ms=14, mfc="none", mec=colours[name])
    if log:
        ax.set_xscale("log")
    ax.set(title=f"Sensitivity: {criterion} of every trial (ring: selected; cross: diverged)",
           xlabel="learning rate" if factor == "lr" else factor,
           ylabel=f"{criterion} ({labels.direction(higher_is_better)})")
    ax.legend(fontsize="small")
    return save(fig, path, formats=TUNE_FORMATS)


def sensitivity_factor(spaces: dict) -> tuple[str, bool]:
    """The factor a sensitivity plot draws on its x axis: `lr` where any space searches it, else the first
    searched kwarg; and whether its range is logarithmic."""
    factors = {name: factor for space in spaces.values() for name, factor in space.items()
               if name != "lr_schedule" and "choices" not in factor}  # ranges only: a categorical factor has no axis
    name = "lr" if "lr" in factors else sorted(factors)[0]
    return name, factors[name].get("log", True)


def budget_curves(curves: pd.DataFrame, colours: dict, criterion: str, path: Path,
                  higher_is_better: bool = True) -> list[Path]:
    """Expected best validation score after k trials, per optimizer (Dodge et al. 2019)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, group in curves.groupby("optimizer", sort=False):
        ax.plot(group["k"], group["expected_best"], "o-", color=colours[name], label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=f"Budget curves: expected best {criterion} after k trials", xlabel="trials (k)",
           ylabel=f"expected best {criterion} ({labels.direction(higher_is_better)})")
    ax.legend(fontsize="small")
    return save(fig, path, formats=TUNE_FORMATS)


def tune_figures(plan: Plan, tables_dir, out_dir) -> list[Path]:
    """The tuned comparison's figures per problem (tune_figure_files): sensitivity, budget curves, and the
    selected settings' final primary metric."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    stage = plan.tune
    colours = palette(plan.settings["train"]["optimizers"] + stage.optimizers)
    table = {name: read_table(tables_dir / f"{name}.parquet") for name in TUNE_FIGURE_TABLES}
    factor = sensitivity_factor(stage.spaces)
    written = []
    for name, problem in plan.problems.items():
        criterion, higher = criterion_label(stage.select_by, problem.primary.name, problem.higher_is_better)
        folder = out_dir / name
        written += sensitivity(_of(table["tune_trials"], name), colours, criterion, folder / "sensitivity",
                               *factor, higher_is_better=higher)
        written += budget_curves(_of(table["budget_curves"], name), colours, criterion, folder / "budget_curves",
                                 higher)
        written += final_metric(_of(table["tuned_optimizer_summary"], name), _of(table["tuned_seed_summary"], name),
                                colours, folder / "tuned_final_metric", problem.primary, plan.confidence,
                                formats=TUNE_FORMATS)
    return written


# ---------------------------------------------------------------- descent
def grid(fn, bounds, n: int):
    """Values of fn on an n×n grid over bounds, vectorised in one call."""
    xs, ys = np.linspace(bounds[0], bounds[1], n), np.linspace(bounds[2], bounds[3], n)
    X, Y = np.meshgrid(xs, ys)
    return X, Y, fn.f(np.stack([X, Y], axis=-1))


def ackley_views(path: Path, n: int = 1000) -> list[Path]:
    """The article's four views of Ackley over linspace(-1, 1, n)²: scatter, labelled dashed contours over
    filled contours, 3-D contour lines (100 levels), surface; `path` is the PNG (or its stem)."""
    X, Y, Z = grid(functions.get("ackley"), (-1, 1, -1, 1), n)
    fig = plt.figure(figsize=(14, 11))
    ax = fig.add_subplot(2, 2, 1)
    step = max(1, n // 200)  # a scatter of every point would draw 10⁶ markers; 200² show the same field
    sc = ax.scatter(X[::step, ::step], Y[::step, ::step], c=Z[::step, ::step], s=1, cmap="viridis", rasterized=True)
    fig.colorbar(sc, ax=ax)
    ax.set(title="Ackley: scatter coloured by f", xlabel="x", ylabel="y")
    ax = fig.add_subplot(2, 2, 2)
    ax.contourf(X, Y, Z, levels=20, cmap="viridis")
    lines = ax.contour(X, Y, Z, levels=10, colors="white", linestyles="dashed")
    ax.clabel(lines, inline=True, fontsize=8)
    ax.set(title="contours (dashed, labelled) over filled contours", xlabel="x", ylabel="y")
    ax = fig.add_subplot(2, 2, 3, projection="3d")
    ax.contour3D(X, Y, Z, 100, cmap="viridis")
    ax.set(title="3-D contour lines (100 levels)", xlabel="x", ylabel="y", zlabel="f")
    ax = fig.add_subplot(2, 2, 4, projection="3d")
    ax.plot_surface(X, Y, Z, cmap="viridis", rcount=100, ccount=100, linewidth=0)
    ax.set(title="surface", xlabel="x", ylabel="y", zlabel="f")
    return save(fig, _png_stem(path), formats=("png",))


def _png_stem(path) -> Path:
    """The stem save() takes, from a figure's PNG path or its stem (dots in the name are kept)."""
    return Path(path).with_name(Path(path).name.removesuffix(".png"))


def trajectory_plot(fn, trajectories: dict[str, pd.DataFrame], colours: dict, title: str, path: Path,
                    bounds=None) -> list[Path]:
    """Trajectories drawn as points on the function's contour plot (one colour per run); `path` is the PNG."""
    bounds = bounds or fn.bounds
    X, Y, Z = grid(fn, bounds, 300)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.contourf(X, Y, np.log1p(Z - Z.min()), levels=30, cmap="Greys")
    for label, traj in trajectories.items():
        ax.plot(traj["x"], traj["y"], ".", ms=3, color=colours[label], label=f"{label} ({len(traj) - 1} epochs)")
    for mx, my in fn.minima:
        ax.plot(mx, my, "*", color="gold", ms=14, mec="black")
    ax.set(xlim=bounds[:2], ylim=bounds[2:], title=title, xlabel="x", ylabel="y")
    ax.legend(fontsize="x-small", loc="upper right")
    return save(fig, _png_stem(path), formats=("png",))


def interactive_view(fn, trajectories: dict[str, pd.DataFrame], path: Path) -> Path:
    """An interactive 3-D surface with the trajectories: a self-contained HTML fragment (plotly.js inlined,
    works offline) in a div with id `<function>-3d`, which the report embeds as it is. The axes keep the
    function's plot bounds and the surface's range (as trajectory_plot), so a diverged run (x = 1e28) does
    not stretch them."""
    import plotly.graph_objects as go

    X, Y, Z = grid(fn, fn.bounds, 100)  # 100²: smooth, a third of 150²'s bytes
    fig = go.Figure([go.Surface(x=X, y=Y, z=Z, colorscale="Viridis", opacity=0.85, showscale=False)])
    for label, traj in trajectories.items():
        fig.add_trace(go.Scatter3d(x=traj["x"], y=traj["y"], z=traj["f"], mode="markers+lines",
                                   marker={"size": 2}, name=label))
    fig.update_layout(title=f"{fn.name}: surface and trajectories", height=650,
                      margin={"l": 0, "r": 0, "t": 40, "b": 0},
                      scene={"xaxis": {"title": "x", "range": list(fn.bounds[:2])},
                             "yaxis": {"title": "y", "range": list(fn.bounds[2:])},
                             "zaxis": {"title": "f", "range": [float(Z.min()), float(Z.max())]}})
    write_text(path, fig.to_html(include_plotlyjs=True, full_html=False, div_id=f"{fn.name}-3d"))
    return Path(path)


def descent_figures(plan: Plan, out_dir) -> list[Path]:
    """Article views of Ackley; one trajectory plot per run of `plan` (at the path the plan gives it); one
    plot per function with every run; one interactive 3-D view per function (descent_figure_files)."""
    paths = descent_figure_paths(plan.descent_functions(), out_dir)
    written = ackley_views(paths[None, ACKLEY_VIEWS])
    runs: dict[str, dict[str, pd.DataFrame]] = {}
    jobs = {path: read_table(Path(path)) for path in plan.descent_files("trajectory.csv")}  # a job's runs, each once
    for run in plan.descent_runs:
        job = jobs[run.file("trajectory.csv")]
        traj = job[(job["method"] == run.method) & (job["gradient"] == run.gradient)].reset_index(drop=True)
        fn = functions.get(run.function)
        bounds = (-2, 2, -2, 2) if run.function == "ackley" else None  # the article's [-2, 2]² view
        written += trajectory_plot(fn, {run.label: traj}, {run.label: "tab:red"}, f"{run.function}: {run.label}",
                                   run.figure, bounds)
        runs.setdefault(run.function, {})[run.label] = traj
    for function, trajectories in runs.items():
        fn = functions.get(function)
        written += trajectory_plot(fn, trajectories, palette(trajectories), f"{function}: every run",
                                   paths[function, "all_runs"])
        written.append(interactive_view(fn, trajectories, paths[function, "interactive"]))
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Draw the study's figures.")
    parser.add_argument("stage", choices=["train", "descent", "tune"])
    parser.add_argument("--plan", required=True, help="the study's plan.json")
    parser.add_argument("--tables", help="tables folder (stage train)")
    parser.add_argument("--out", required=True, help="the stage's figures folder (e.g. figures/train)")
    args = parser.parse_args(argv)
    plan = read_plan(args.plan)
    if args.stage in ("train", "tune"):
        if not args.tables:
            parser.error(f"stage {args.stage} needs --tables")
        written = (train_figures if args.stage == "train" else tune_figures)(plan, args.tables, args.out)
    else:
        written = descent_figures(plan, args.out)
    print(f"wrote {len(written)} files into {args.out}")


if __name__ == "__main__":
    main()
