"""Figures are really rendered: files decode as images, trajectories hold every point of the run."""

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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


def test_train_figures_from_tables(tmp_path):
    stats = pd.DataFrame([{"dataset": "d", "model": "m", "optimizer": o, "epoch": e, "metric": m,
                           "n": 2, "mean": 0.5 + 0.1 * e, "std": 0.1, "ci_low": 0.4, "ci_high": 0.9}
                          for o in ("A", "B") for e in (1, 2) for m in ("train_acc", "train_loss", "test_acc",
                                                                         "test_loss", "lr")])
    seeds = pd.DataFrame({"optimizer": ["A", "A", "B", "B"], "seed": [0, 1, 0, 1],
                          "final_test_acc": [0.7, 0.8, 0.5, 0.6]})
    summary = pd.DataFrame({"optimizer": ["A", "B"], "seconds_to_target": [12.0, np.nan]})
    for name, frame in (("epoch_stats", stats), ("seed_summary", seeds), ("optimizer_summary", summary)):
        frame.to_parquet(tmp_path / f"{name}.parquet")
    written = plots.train_figures(tmp_path, tmp_path / "fig", target=0.75)
    assert sorted(p.name for p in written) == sorted(f"{n}.{e}" for n in
                                                     ("curves", "final_accuracy", "generalisation_gap",
                                                      "time_to_target") for e in ("png", "svg"))
    for path in written:
        assert path.stat().st_size > 5000
    assert "<svg" in (tmp_path / "fig" / "curves.svg").read_text()[:500]
    assert plt.get_fignums() == []  # every figure closed
