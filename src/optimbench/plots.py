"""Figures (SPEC §2.5): the article's curves with seed bands, summaries, and the descent views.

Every optimizer keeps one colour across all figures (`palette`). Figures are written as PNG and SVG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from optimbench import functions  # noqa: E402
from optimbench.io import atomic_path, write_text  # noqa: E402

CURVES = [("train_acc", "training accuracy"), ("train_loss", "training loss"),
          ("test_acc", "test accuracy"), ("test_loss", "test loss")]


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
def _interval_label(confidence: float) -> str:
    return f"{confidence:.0%} t-interval across seeds, clipped to the metric's range"


def curves(stats: pd.DataFrame, colours: dict, path: Path, confidence: float = 0.95) -> list[Path]:
    """The article's four line plots over epochs, one line per optimizer: the mean across seeds with the
    tables' interval (aggregate.mean_interval) as a band. Diverged seeds score the worst value (accuracy 0,
    loss +inf, not drawn); the legend counts them."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    for ax, (metric, label) in zip(axes.flat, CURVES):
        for name, line in stats[stats["metric"] == metric].groupby("optimizer"):
            finite = line.replace([np.inf, -np.inf], np.nan)
            ax.plot(finite["epoch"], finite["mean"], label=name, color=colours[name], marker=".")
            ax.fill_between(finite["epoch"], finite["ci_low"], finite["ci_high"], color=colours[name], alpha=0.2)
        ax.set(title=label, xlabel="epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(title="optimizer", fontsize="small")
    fig.suptitle(f"Training and test curves (mean across seeds; band: {_interval_label(confidence)})")
    return save(fig, path)


def final_accuracy(summary: pd.DataFrame, seeds: pd.DataFrame, colours: dict, path: Path,
                   confidence: float = 0.95, formats=("png", "svg")) -> list[Path]:
    """Final test accuracy per optimizer, best first: the mean with the tables' interval, each seed a dot
    (a diverged seed scores 0 and is drawn as a cross)."""
    order = summary.sort_values(["rank", "optimizer"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, row in enumerate(order.itertuples()):
        low, high = row.final_test_acc_ci_low, row.final_test_acc_ci_high
        if np.isfinite(low) and np.isfinite(high):
            ax.errorbar(i, row.final_test_acc, yerr=[[row.final_test_acc - low], [high - row.final_test_acc]],
                        fmt="D", color=colours[row.optimizer], capsize=6, ms=8)
        else:
            ax.plot(i, row.final_test_acc, "D", color=colours[row.optimizer], ms=8)
        mine = seeds[seeds["optimizer"] == row.optimizer]
        for diverged, marker in ((False, "o"), (True, "x")):
            dots = mine[mine["diverged"] == diverged]
            ax.plot(np.full(len(dots), i + 0.15), dots["final_test_acc"], marker, color="black", alpha=0.6, ms=5)
    ax.set_xticks(range(len(order)), order["optimizer"])
    ax.set_ylim(-0.02, 1.02)
    ax.set(title=f"Final test accuracy (diamond: mean, bar: {_interval_label(confidence)};\n"
                 "dots: seeds, crosses: diverged seeds scored 0)", ylabel="test accuracy")
    return save(fig, path, formats)


def generalisation_gap(stats: pd.DataFrame, colours: dict, path: Path) -> list[Path]:
    """Training minus test accuracy over epochs (mean across seeds)."""
    wide = stats.pivot_table(index=["optimizer", "epoch"], columns="metric", values="mean").reset_index()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, line in wide.groupby("optimizer"):
        ax.plot(line["epoch"], line["train_acc"] - line["test_acc"], label=name, color=colours[name], marker=".")
    ax.axhline(0, color="grey", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title="Generalisation gap (train − test accuracy)", xlabel="epoch", ylabel="accuracy gap")
    ax.legend(fontsize="small")
    return save(fig, path)


def time_to_target(summary: pd.DataFrame, colours: dict, target: float, path: Path,
                   confidence: float = 0.95) -> list[Path]:
    """Seconds of training to the target test accuracy: the mean over the seeds that reached it, with the
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
        text = f"{row['runs_reaching_target']}/{row['seeds']} reached" if row["runs_reaching_target"] else "never reached"
        ax.text(i, 0, f" {text}", rotation=90, va="bottom", ha="center", fontsize="small")
    ax.set(title=f"Training seconds to {target:.0%} test accuracy\n(mean over seeds that reached it; "
                 f"bar: {_interval_label(confidence)})", ylabel="seconds")
    return save(fig, path)


def train_figures(plan: dict, tables_dir, out_dir) -> list[Path]:
    """The four training figures from the tables, for the optimizers of `plan` (optimbench.study)."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    settings = plan["settings"]
    confidence, target = settings["confidence"], settings["target_accuracy"]
    stats = pd.read_parquet(tables_dir / "epoch_stats.parquet")
    seeds = pd.read_parquet(tables_dir / "seed_summary.parquet")
    summary = pd.read_parquet(tables_dir / "optimizer_summary.parquet")
    colours = palette(settings["train"]["optimizers"])
    return (curves(stats, colours, out_dir / "curves", confidence)
            + final_accuracy(summary, seeds, colours, out_dir / "final_accuracy", confidence)
            + generalisation_gap(stats, colours, out_dir / "generalisation_gap")
            + time_to_target(summary, colours, target, out_dir / "time_to_target", confidence))


# ---------------------------------------------------------------- tuned comparison
def sensitivity(trials: pd.DataFrame, colours: dict, criterion: str, path: Path, factor: str = "lr",
                log: bool = True) -> list[Path]:
    """Validation score of every trial against a searched factor (the learning rate by default), one line
    per optimizer (DeepOBS-style); the selected trial ringed; a diverged trial drawn as a cross at the bottom."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    floor = np.nanmin(trials["score"]) if trials["score"].notna().any() else 0.0
    for name, group in trials.sort_values(factor).groupby("optimizer", sort=False):
        finished = group[group["score"].notna()]
        ax.plot(finished[factor], finished["score"], "o-", color=colours[name], label=name)
        failed = group[group["score"].isna()]
        ax.plot(failed[factor], np.full(len(failed), floor), "x", color=colours[name], ms=8)
        chosen = group[group["selected"]]
        ax.plot(chosen[factor], chosen["score"], "o", ms=14, mfc="none", mec=colours[name])
    if log:
        ax.set_xscale("log")
    ax.set(title=f"Sensitivity: {criterion} of every trial (ring: selected; cross: diverged)",
           xlabel="learning rate" if factor == "lr" else factor, ylabel=criterion)
    ax.legend(fontsize="small")
    return save(fig, path, formats=("png",))


def sensitivity_factor(spaces: dict) -> tuple[str, bool]:
    """The factor a sensitivity plot draws on its x axis: `lr` where any space searches it, else the first
    searched kwarg; and whether its range is logarithmic."""
    factors = {name: factor for space in spaces.values() for name, factor in space.items() if name != "lr_schedule"}
    name = "lr" if "lr" in factors else sorted(factors)[0]
    return name, factors[name].get("log", True)


def budget_curves(curves: pd.DataFrame, colours: dict, criterion: str, path: Path) -> list[Path]:
    """Expected best validation score after k trials, per optimizer (Dodge et al. 2019)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, group in curves.groupby("optimizer", sort=False):
        ax.plot(group["k"], group["expected_best"], "o-", color=colours[name], label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=f"Budget curves: expected best {criterion} after k trials", xlabel="trials (k)",
           ylabel=f"expected best {criterion}")
    ax.legend(fontsize="small")
    return save(fig, path, formats=("png",))


def tune_figures(plan: dict, tables_dir, out_dir) -> list[Path]:
    """The tuned comparison's figures: sensitivity, budget curves, the selected settings' final accuracy."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    criterion, confidence = plan["tune"]["select_by"], plan["settings"]["confidence"]
    colours = palette(plan["settings"]["train"]["optimizers"] + plan["tune"]["optimizers"])
    trials = pd.read_parquet(tables_dir / "tune_trials.parquet")
    written = sensitivity(trials, colours, criterion, out_dir / "sensitivity",
                          *sensitivity_factor(plan["tune"]["spaces"]))
    written += budget_curves(pd.read_parquet(tables_dir / "budget_curves.parquet"), colours, criterion,
                             out_dir / "budget_curves")
    written += final_accuracy(pd.read_parquet(tables_dir / "tuned_optimizer_summary.parquet"),
                              pd.read_parquet(tables_dir / "tuned_seed_summary.parquet"), colours,
                              out_dir / "tuned_final_accuracy", confidence, formats=("png",))
    return written


# ---------------------------------------------------------------- descent
def grid(fn, bounds, n: int):
    """Values of fn on an n×n grid over bounds, vectorised in one call."""
    xs, ys = np.linspace(bounds[0], bounds[1], n), np.linspace(bounds[2], bounds[3], n)
    X, Y = np.meshgrid(xs, ys)
    return X, Y, fn.f(np.stack([X, Y], axis=-1))


def ackley_views(path: Path, n: int = 1000) -> list[Path]:
    """The article's four views of Ackley over linspace(-1, 1, n)²: scatter, labelled dashed contours over
    filled contours, 3-D contour lines (100 levels), surface."""
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
    return save(fig, path, formats=("png",))


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
    return save(fig, Path(path).with_name(Path(path).name.removesuffix(".png")), formats=("png",))


def interactive_view(fn, trajectories: dict[str, pd.DataFrame], path: Path) -> Path:
    """An interactive 3-D surface with the trajectories: a self-contained HTML fragment (plotly.js inlined,
    works offline) in a div with id `<function>-3d`, which the report embeds as it is."""
    import plotly.graph_objects as go

    X, Y, Z = grid(fn, fn.bounds, 150)
    fig = go.Figure([go.Surface(x=X, y=Y, z=Z, colorscale="Viridis", opacity=0.85, showscale=False)])
    for label, traj in trajectories.items():
        fig.add_trace(go.Scatter3d(x=traj["x"], y=traj["y"], z=traj["f"], mode="markers+lines",
                                   marker={"size": 2}, name=label))
    fig.update_layout(title=f"{fn.name}: surface and trajectories", height=650,
                      margin={"l": 0, "r": 0, "t": 40, "b": 0},
                      scene={"xaxis_title": "x", "yaxis_title": "y", "zaxis_title": "f"})
    write_text(path, fig.to_html(include_plotlyjs=True, full_html=False, div_id=f"{fn.name}-3d"))
    return Path(path)


def descent_figures(plan: dict, out_dir) -> list[Path]:
    """Article views of Ackley; one trajectory plot per run of `plan` (at the path the plan gives it); one
    plot per function with every run; one interactive 3-D view per function."""
    out_dir = Path(out_dir)
    written = ackley_views(out_dir / "ackley_views")
    runs: dict[str, dict[str, pd.DataFrame]] = {}
    for run in plan["descent_runs"]:
        traj = pd.read_csv(Path(run["dir"]) / "trajectory.csv")
        function = run["function"]
        label = f"{run['method']} / {run['gradient']} ({run['group']})"
        fn = functions.get(function)
        bounds = (-2, 2, -2, 2) if function == "ackley" else None  # the article's [-2, 2]² view
        written += trajectory_plot(fn, {label: traj}, {label: "tab:red"}, f"{function}: {label}", run["figure"],
                                   bounds)
        runs.setdefault(function, {})[label] = traj
    for function, trajectories in runs.items():
        fn = functions.get(function)
        written += trajectory_plot(fn, trajectories, palette(trajectories), f"{function}: every run",
                                   out_dir / f"{function}_all_runs.png")
        written.append(interactive_view(fn, trajectories, out_dir / f"{function}_3d.html"))
    return written


def main(argv=None) -> None:
    from optimbench.study import read_plan

    parser = argparse.ArgumentParser(description="Draw the study's figures.")
    parser.add_argument("stage", choices=["train", "descent", "tune"])
    parser.add_argument("--plan", required=True, help="the study's plan.json")
    parser.add_argument("--tables", help="tables folder (stage train)")
    parser.add_argument("--out", required=True)
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
