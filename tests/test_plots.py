"""Figures are really rendered: files decode as images, trajectories hold every point of the run."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from pathlib import Path

from optimbench import descent, functions, plots


def test_palette_is_stable_across_figures():
    a = plots.palette(["SGD", "Adam", "Adagrad"])
    b = plots.palette(["Adagrad", "SGD", "Adam"])
    assert a == b and len(set(a.values())) == 3


def test_trajectory_plot_holds_every_point(tmp_path, monkeypatch):
    fn = functions.get("ackley")
    traj, _ = descent.article_descent(fn, (-2.0, -2.0), 1e-5, None, "as-printed", 1e-3, 1e-3, 20000)
    captured = {}
    real_save = plots.save

    def keep(fig, path, formats=("png", "svg")):
        captured["lines"] = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("run")]
        return real_save(fig, path, formats)

    monkeypatch.setattr(plots, "save", keep)
    [png] = plots.trajectory_plot(fn, {"run": traj}, {"run": "red"}, "t", tmp_path / "traj", (-2, 2, -2, 2))
    [line] = captured["lines"]
    assert len(line.get_xdata()) == len(traj)
    np.testing.assert_array_equal(line.get_ydata(), traj["y"])
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 300 and image.std() > 0.05


def test_ackley_views_render_the_full_grid(tmp_path):
    X, Y, Z = plots.grid(functions.get("ackley"), (-1, 1, -1, 1), 1000)
    assert Z.shape == (1000, 1000) and abs(Z.min()) < 1e-2  # the grid straddles the minimum at (0, 0)
    assert Z[-1, -1] == functions.ackley(np.array([1.0, 1.0])) and (X[0, 0], Y[0, 0]) == (-1, -1)
    [png] = plots.ackley_views(tmp_path / "views", n=200)
    image = mpimg.imread(png)
    assert image.shape[0] > 800 and image.shape[1] > 800


def figure_tables(tmp_path):
    """Hand-made tables of two optimizers over two epochs, as aggregate writes them."""
    stats = pd.DataFrame([{"dataset": "d", "model": "m", "optimizer": o, "epoch": e, "metric": m, "n": 2,
                           "mean": (0.5 if m == "test_acc" else 0.7) + 0.1 * e + (0.05 if o == "B" else 0),
                           "std": 0.1, "ci_low": 0.3 + 0.1 * e, "ci_high": 0.8 + 0.05 * e}
                          for o in ("A", "B") for e in (1, 2) for m in ("train_acc", "train_loss", "test_acc",
                                                                         "test_loss", "lr")])
    seeds = pd.DataFrame({"optimizer": ["A", "A", "B", "B"], "seed": [0, 1, 0, 1],
                          "final_test_acc": [0.7, 0.8, 0.5, 0.0], "diverged": [False, False, False, True]})
    summary = pd.DataFrame({"optimizer": ["A", "B"], "rank": [1, 2], "final_test_acc": [0.75, 0.25],
                            "final_test_acc_ci_low": [0.115, 0.0], "final_test_acc_ci_high": [1.0, 1.0],
                            "seconds_to_target": [12.0, np.nan], "seconds_to_target_ci_low": [10.0, np.nan],
                            "seconds_to_target_ci_high": [14.0, np.nan], "runs_reaching_target": [2, 0],
                            "seeds": [2, 2]})
    for name, frame in (("epoch_stats", stats), ("seed_summary", seeds), ("optimizer_summary", summary)):
        frame.to_parquet(tmp_path / f"{name}.parquet")
    plan = {"settings": {"confidence": 0.95, "target_accuracy": 0.75, "train": {"optimizers": ["A", "B"]}}}
    return plan, stats, summary


def test_train_figures_draw_the_tables_values(tmp_path, monkeypatch):
    plan, stats, summary = figure_tables(tmp_path)
    figures = {}
    real_save = plots.save

    def keep(fig, stem, formats=("png", "svg")):
        figures[Path(stem).name] = fig
        return real_save(fig, stem, formats)

    monkeypatch.setattr(plots, "save", keep)
    written = plots.train_figures(plan, tmp_path, tmp_path / "fig")
    assert sorted(p.name for p in written) == sorted(f"{n}.{e}" for n in
                                                     ("curves", "final_accuracy", "generalisation_gap",
                                                      "time_to_target") for e in ("png", "svg"))
    for path in written:
        assert path.stat().st_size > 5000
    assert "<svg" in (tmp_path / "fig" / "curves.svg").read_text()[:500]
    assert plt.get_fignums() == []  # every figure closed
    by = stats.set_index(["optimizer", "metric", "epoch"])["mean"]
    # curves: each line is the mean, the band the table's interval
    test_acc = next(ax for ax in figures["curves"].axes if ax.get_title() == "test accuracy")
    line = next(l for l in test_acc.get_lines() if l.get_label() == "B")
    np.testing.assert_allclose(line.get_ydata(), [by["B", "test_acc", 1], by["B", "test_acc", 2]])
    band = test_acc.collections[1].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.4) and band.max() == pytest.approx(0.9)
    # generalisation gap: train minus test
    gap = next(l for l in figures["generalisation_gap"].axes[0].get_lines() if l.get_label() == "A")
    np.testing.assert_allclose(gap.get_ydata(), [0.2, 0.2])
    # final accuracy: the table's interval, not one computed by the plotting library
    ax = figures["final_accuracy"].axes[0]
    [bars] = [c for c in ax.collections if len(c.get_segments()) == 1 and c.get_segments()[0][0][0] == 0]
    np.testing.assert_allclose(bars.get_segments()[0], [[0, 0.115], [0, 1.0]])
    assert ax.get_title().startswith("Final test accuracy (diamond: mean, bar: 95% t-interval")
    # time to target: the bar is the mean seconds; never reached says so
    heights = [p.get_height() for p in figures["time_to_target"].axes[0].patches]
    assert heights == [12.0, 0.0]
    texts = [t.get_text() for t in figures["time_to_target"].axes[0].texts]
    assert texts == [" 2/2 reached", " never reached"]


def test_figure_names_keep_every_dot(tmp_path):
    fig = plt.figure()
    [path] = plots.save(fig, tmp_path / "article-momentum-0.1", formats=("png",))
    assert path.name == "article-momentum-0.1.png"


def test_sensitivity_draws_the_searched_factor_when_the_learning_rate_is_not_searched(tmp_path, monkeypatch):
    spaces = {"SGD": {"momentum": {"low": 0.0, "high": 0.9, "log": False}}}
    assert plots.sensitivity_factor(spaces) == ("momentum", False)
    assert plots.sensitivity_factor({**spaces, "Adam": {"lr": {"low": 1e-4, "high": 1e-1}}}) == ("lr", True)
    trials = pd.DataFrame({"optimizer": "SGD", "trial": [0, 1, 2], "momentum": [0.9, 0.0, 0.45],
                           "score": [0.5, np.nan, 0.7], "selected": [False, False, True]})
    figures = {}
    real_save = plots.save

    def keep(fig, stem, formats=("png", "svg")):
        figures["f"] = fig
        return real_save(fig, stem, formats)

    monkeypatch.setattr(plots, "save", keep)
    plots.sensitivity(trials, {"SGD": "red"}, "final_val_acc", tmp_path / "s", "momentum", False)
    ax = figures["f"].axes[0]
    line = next(l for l in ax.get_lines() if l.get_label() == "SGD")
    np.testing.assert_allclose(line.get_xdata(), [0.45, 0.9])  # sorted by momentum; the diverged trial is a cross
    np.testing.assert_allclose(line.get_ydata(), [0.7, 0.5])
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "momentum"
