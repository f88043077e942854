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


def save(fig, path: Path, formats=("png", "svg")) -> list[Path]:
    """Save a figure atomically in each format; returns the paths."""
    written = []
    for fmt in formats:
        target = Path(path).with_suffix(f".{fmt}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight")
        written.append(target)
    plt.close(fig)
    return written


# ---------------------------------------------------------------- CIFAR study
def curves(stats: pd.DataFrame, colours: dict, path: Path) -> list[Path]:
    """The article's four line plots over epochs, one line per optimizer, with a CI band across seeds."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    for ax, (metric, label) in zip(axes.flat, CURVES):
        upper = 1.0 if metric.endswith("acc") else None  # with few seeds the t interval leaves [0, 1]
        for name, line in stats[stats["metric"] == metric].groupby("optimizer"):
            ax.plot(line["epoch"], line["mean"], label=name, color=colours[name], marker=".")
            ax.fill_between(line["epoch"], line["ci_low"].clip(0, upper), line["ci_high"].clip(0, upper),
                            color=colours[name], alpha=0.2)
        ax.set(title=label, xlabel="epoch", ylabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(title="optimizer", fontsize="small")
    fig.suptitle("Training and test curves (mean across seeds, band: confidence interval)")
    return save(fig, path)


def final_accuracy(seeds: pd.DataFrame, colours: dict, path: Path) -> list[Path]:
    """Final test accuracy per optimizer: the mean with its CI, and each seed as a point."""
    order = seeds.groupby("optimizer")["final_test_acc"].mean().sort_values(ascending=False).index
    fig, ax = plt.subplots(figsize=(8, 4.5))
    sns.pointplot(seeds, x="optimizer", y="final_test_acc", order=order, hue="optimizer", palette=colours,
                  errorbar=("ci", 95), linestyle="none", markers="D", ax=ax, legend=False)
    sns.stripplot(seeds, x="optimizer", y="final_test_acc", order=order, color="black", size=5, alpha=0.6, ax=ax)
    ax.set(title="Final test accuracy (diamonds: mean ± 95% CI; dots: seeds)", ylabel="test accuracy")
    return save(fig, path)


def generalisation_gap(stats: pd.DataFrame, colours: dict, path: Path) -> list[Path]:
    """Training minus test accuracy over epochs."""
    wide = stats.pivot_table(index=["optimizer", "epoch"], columns="metric", values="mean").reset_index()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, line in wide.groupby("optimizer"):
        ax.plot(line["epoch"], line["train_acc"] - line["test_acc"], label=name, color=colours[name], marker=".")
    ax.axhline(0, color="grey", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title="Generalisation gap (train − test accuracy)", xlabel="epoch", ylabel="accuracy gap")
    ax.legend(fontsize="small")
    return save(fig, path)


def time_to_target(summary: pd.DataFrame, colours: dict, target: float, path: Path) -> list[Path]:
    """Seconds of training to reach the target test accuracy (missing bar: never reached)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    data = summary.sort_values("seconds_to_target")
    ax.bar(data["optimizer"], data["seconds_to_target"].fillna(0),
           color=[colours[n] for n in data["optimizer"]])
    for i, (_, row) in enumerate(data.iterrows()):
        ax.text(i, 0, " never" if np.isnan(row["seconds_to_target"]) else "", rotation=90, va="bottom", ha="center")
    ax.set(title=f"Training seconds to {target:.0%} test accuracy (mean over seeds that reached it)",
           ylabel="seconds")
    return save(fig, path)


def train_figures(tables_dir, out_dir, target: float) -> list[Path]:
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    stats = pd.read_parquet(tables_dir / "epoch_stats.parquet")
    seeds = pd.read_parquet(tables_dir / "seed_summary.parquet")
    summary = pd.read_parquet(tables_dir / "optimizer_summary.parquet")
    colours = palette(stats["optimizer"])
    return (curves(stats, colours, out_dir / "curves") + final_accuracy(seeds, colours, out_dir / "final_accuracy")
            + generalisation_gap(stats, colours, out_dir / "generalisation_gap")
            + time_to_target(summary, colours, target, out_dir / "time_to_target"))


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
    """Trajectories drawn as points on the function's contour plot (one colour per run)."""
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
    return save(fig, path, formats=("png",))


def interactive_view(fn, trajectories: dict[str, pd.DataFrame], path: Path) -> Path:
    """An interactive 3-D surface with the trajectories (plotly, self-contained HTML, works offline)."""
    import plotly.graph_objects as go

    X, Y, Z = grid(fn, fn.bounds, 150)
    fig = go.Figure([go.Surface(x=X, y=Y, z=Z, colorscale="Viridis", opacity=0.85, showscale=False)])
    for label, traj in trajectories.items():
        fig.add_trace(go.Scatter3d(x=traj["x"], y=traj["y"], z=traj["f"], mode="markers+lines",
                                   marker={"size": 2}, name=label))
    fig.update_layout(title=f"{fn.name}: surface and trajectories", height=650,
                      scene={"xaxis_title": "x", "yaxis_title": "y", "zaxis_title": "f"})
    write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))
    return Path(path)


def descent_figures(trajectory_paths, out_dir) -> list[Path]:
    """Article views of Ackley, one trajectory plot per run, one per function with every run, 3-D views."""
    out_dir = Path(out_dir)
    written = ackley_views(out_dir / "ackley_views")
    runs: dict[str, dict[str, pd.DataFrame]] = {}
    for path in map(Path, trajectory_paths):  # .../{group}/{function}/{method}/{gradient}/trajectory.csv
        group, function, method, gradient = path.parts[-5:-1]
        traj = pd.read_csv(path)
        label = f"{method} / {gradient}"
        fn = functions.get(function)
        bounds = (-2, 2, -2, 2) if function == "ackley" else None  # the article's [-2, 2]² view
        written += trajectory_plot(fn, {label: traj}, {label: "tab:red"}, f"{function}: {label} ({group})",
                                   out_dir / "runs" / f"{group}-{function}-{method}-{gradient}", bounds)
        runs.setdefault(function, {})[f"{label} ({group})"] = traj
    for function, trajectories in runs.items():
        fn = functions.get(function)
        written += trajectory_plot(fn, trajectories, palette(trajectories), f"{function}: every run",
                                   out_dir / f"{function}_all_runs")
        written.append(interactive_view(fn, trajectories, out_dir / f"{function}_3d.html"))
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Draw the study's figures.")
    sub = parser.add_subparsers(dest="stage", required=True)
    train = sub.add_parser("train", help="CIFAR study figures from the tables")
    train.add_argument("--tables", required=True)
    train.add_argument("--target", type=float, required=True)
    train.add_argument("--out", required=True)
    descent = sub.add_parser("descent", help="descent figures from trajectories")
    descent.add_argument("--trajectories", nargs="+", required=True)
    descent.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.stage == "train":
        written = train_figures(args.tables, args.out, args.target)
    else:
        written = descent_figures(args.trajectories, args.out)
    print(f"wrote {len(written)} files into {args.out}")


if __name__ == "__main__":
    main()
