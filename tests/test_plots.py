"""Figures are really rendered: files decode as images, trajectories hold every point of the run."""

from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from optimbench import descent, files, functions, plots
from optimbench.plan import Plan
from optimbench.runs import DescentRun
from optimbench.search import criterion_label


def test_palette_is_stable_across_figures():
    a = plots.palette(["SGD", "Adam", "Adagrad"])
    b = plots.palette(["Adagrad", "SGD", "Adam"])
    assert a == b and len(set(a.values())) == 3


def test_trajectory_plot_holds_every_point(tmp_path, monkeypatch):
    fn = functions.get("ackley")
    rows, _ = descent.article_descent(fn, (-2.0, -2.0), 1e-5, None, "as-printed", 1e-3, 1e-3, 20000)
    traj = pd.DataFrame(rows)
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


INF = float("inf")


def metrics_of(names, higher, high=INF, low=0.0):
    return [{"name": f"{split}_{name}", "higher_is_better": higher, "low": low, "high": high}
            for split in ("train", "val", "test") for name in names]


def plan_of(problems=("cls", "vae")):
    """A plan with a classification problem (accuracy) and a VAE (negative ELBO, lower is better), no runs."""
    known = {
        "cls": {"primary": "test_acc", "higher_is_better": True, "target": 0.75, "title": "digits / ResNet18",
                "metrics": metrics_of(["loss"], False) + metrics_of(["acc"], True, 1.0)},
        "vae": {"primary": "test_neg_elbo", "higher_is_better": False, "target": 120.0, "title": "digits / VAE",
                "metrics": metrics_of(["neg_elbo", "recon", "kl"], False)}}
    settings = {"confidence": 0.95, "problems": {p: known[p] for p in problems}, "train": {"optimizers": ["A", "B"]}}
    return Plan("results", {}, {}, [], [], settings)


def figure_tables(tmp_path):
    """Hand-made tables of two optimizers over two epochs on two problems, as aggregate writes them."""
    columns = {"cls": ("train_acc", "train_loss", "test_acc", "test_loss", "val_acc", "lr"),
               "vae": ("train_neg_elbo", "train_recon", "train_kl", "test_neg_elbo", "test_recon", "test_kl")}
    stats = pd.DataFrame([{"problem": p, "optimizer": o, "epoch": e, "metric": m, "n": 2,
                           "mean": (0.5 if m == "test_acc" else 0.7 if p == "cls" else 100 + (m == "test_neg_elbo"))
                           + 0.1 * e + (0.05 if o == "B" else 0),
                           "std": 0.1, "ci_low": 0.3 + 0.1 * e, "ci_high": 0.8 + 0.05 * e}
                          for p in columns for o in ("A", "B") for e in (1, 2) for m in columns[p]])
    seeds = pd.DataFrame({"problem": ["cls"] * 4 + ["vae"] * 4, "optimizer": ["A", "A", "B", "B"] * 2,
                          "seed": [0, 1] * 4, "final": [0.7, 0.8, 0.5, 0.0, 130.0, 266_699_372.0, 110.0, 114.0],
                          "diverged": [False, False, False, True, False, False, False, False],
                          # vae A seed 1: the reported blow-up (issue 36), failed without diverging
                          "failed": [False, False, False, True, False, True, False, False]})
    summary = pd.DataFrame({"problem": ["cls", "cls", "vae", "vae"], "optimizer": ["A", "B", "B", "A"],
                            "rank": [1, 2, 1, 2], "final": [0.75, 0.5, 112.0, 130.0],
                            "final_ci_low": [0.115, np.nan, 86.6, np.nan],
                            "final_ci_high": [1.0, np.nan, 137.4, np.nan],
                            "seconds_to_target": [12.0, np.nan, 30.0, 50.0],
                            "seconds_to_target_ci_low": [10.0, np.nan, np.nan, np.nan],
                            "seconds_to_target_ci_high": [14.0, np.nan, np.nan, np.nan],
                            "runs_reaching_target": [2, 0, 2, 1], "seeds": [2, 2, 2, 2]})
    # ρ(τ) by hand: time ratios A (1, 1), B (2, ∞); metric ratios A (1, 1.25·… ), B (1.25, 1)
    profile = pd.DataFrame({"measure": ["time"] * 6 + ["metric"] * 6, "optimizer": (["A"] * 3 + ["B"] * 3) * 2,
                            "tau": [1, 2, 4] * 2 + [1, 1.25, 4] * 2,
                            "fraction": [1, 1, 1, 0, 0.5, 0.5, 0.5, 1, 1, 0.5, 1, 1]})
    scores = pd.DataFrame({"measure": ["time", "time", "metric", "metric"], "optimizer": ["A", "B", "A", "B"],
                           "score": [1.0, 2 / 3 / 2, 11 / 12, 11 / 12]})
    ranks = pd.DataFrame({"problem": ["cls", "cls", "vae", "vae"], "optimizer": ["A", "B", "B", "A"],
                          "rank": [1, 2, 1, 2], "rank_low": [1, 1, 1, 1], "rank_high": [2, 2, 1, 2]})
    for name, frame in (("epoch_stats", stats), ("seed_summary", seeds), ("optimizer_summary", summary),
                        ("performance_profile", profile), ("profile_score", scores), ("problem_ranks", ranks)):
        frame.to_parquet(tmp_path / f"{name}.parquet")
    return plan_of(), stats, summary, profile


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """The training figures of figure_tables, kept open by their stem (problem/name) before they are saved
    (drawn once for the module's tests: rendering them takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("train_figures")
    plan, stats, summary, profile = figure_tables(tmp_path)
    figures = {}
    real_save = plots.save

    def keep(fig, stem, formats=("png", "svg")):
        figures[str(Path(stem).relative_to(tmp_path / "fig"))] = fig
        return real_save(fig, stem, formats)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save", keep)
        written = plots.train_figures(plan, tmp_path, tmp_path / "fig")
    return tmp_path, written, figures, stats, profile


def test_train_figures_writes_exactly_the_declared_files(drawn):
    tmp_path, written = drawn[:2]
    declared = plots.train_figure_files(plan_of(), tmp_path / "fig")
    assert plots.train_figure_files is files.train_figure_files  # one definition, light to import
    assert written == declared == plots.train_figure_files(["cls", "vae"], tmp_path / "fig")
    assert sorted(str(p.relative_to(tmp_path / "fig")) for p in declared) == sorted(
        [f"{p}/{n}.{e}" for p in ("cls", "vae") for n in ("curves", "final_metric", "generalisation_gap",
                                                           "time_to_target") for e in ("png", "svg")]
        + [f"{n}.{e}" for n in ("headline_profile", "performance_profile", "ranks") for e in ("png", "svg")])
    for path in written:
        assert path.stat().st_size > 5000
    assert "<svg" in (tmp_path / "fig" / "cls" / "curves.svg").read_text()[:500]
    assert plt.get_fignums() == []  # every figure closed
    assert plots.train_figure_files(["vae"], tmp_path, ("png",))[0] == tmp_path / "vae" / "curves.png"
    assert plots.tune_figure_files(plan_of(["vae"]), tmp_path) == [
        tmp_path / "vae" / f"{n}.png" for n in ("sensitivity", "budget_curves", "tuned_final_metric")]


def test_classification_figures_draw_the_tables_values(drawn):
    _, _, figures, stats, _ = drawn
    by = stats.set_index(["problem", "optimizer", "metric", "epoch"])["mean"]
    # curves: the article's four panels (no validation panel); each line is the mean, the band the interval
    panels = figures["cls/curves"].axes  # the article's four plots, in the plan's metric order
    assert [ax.get_title() for ax in panels] == ["training loss", "training accuracy", "test loss", "test accuracy"]
    test_acc = next(ax for ax in panels if ax.get_title() == "test accuracy")
    assert test_acc.get_ylabel() == "test accuracy (higher is better)"
    line = next(ln for ln in test_acc.get_lines() if ln.get_label() == "B")
    np.testing.assert_allclose(line.get_ydata(), [by["cls", "B", "test_acc", 1], by["cls", "B", "test_acc", 2]])
    band = test_acc.collections[1].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(0.4) and band.max() == pytest.approx(0.9)
    gap = next(ln for ln in figures["cls/generalisation_gap"].axes[0].get_lines() if ln.get_label() == "A")
    np.testing.assert_allclose(gap.get_ydata(), [0.2, 0.2])  # train − test accuracy: 0.8 − 0.6, 0.9 − 0.7
    ax = figures["cls/final_metric"].axes[0]
    [bars] = [c for c in ax.collections if len(c.get_segments()) == 1 and c.get_segments()[0][0][0] == 0]
    np.testing.assert_allclose(bars.get_segments()[0], [[0, 0.115], [0, 1.0]])  # the table's, not matplotlib's
    assert ax.get_title().startswith("Final test accuracy (higher is better; diamond: mean of completed seeds, bar: "
                                     "95% t-interval")
    assert "red crosses at the edge: failed seeds, not drawn to scale" in ax.get_title()
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert [(list(c.get_xdata()), list(c.get_ydata())) for c in crosses] == [([1.15], [0.0])]  # the bottom edge
    assert ax.get_ylim() == pytest.approx((-0.02, 1.02))  # accuracy's whole range
    heights = [p.get_height() for p in figures["cls/time_to_target"].axes[0].patches]
    assert heights == [12.0, 0.0]
    texts = [t.get_text() for t in figures["cls/time_to_target"].axes[0].texts]
    assert texts == [" 2/2 reached", " never reached"]
    assert figures["cls/time_to_target"].axes[0].get_title().startswith("Training seconds to test accuracy ≥ 0.75")


def test_a_lower_is_better_problem_draws_its_own_metric_and_direction(drawn):
    _, _, figures, stats, _ = drawn
    ax = figures["vae/final_metric"].axes[0]
    assert ax.get_ylabel() == "test negative ELBO (lower is better)"
    assert ax.get_title().startswith("Final test negative ELBO (lower is better;")
    assert "red crosses at the edge: failed seeds" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["B", "A"]  # rank 1 first: the lower mean
    [bars] = [c for c in ax.collections if len(c.get_segments()) == 1]  # A has one completed seed: no interval
    np.testing.assert_allclose(bars.get_segments()[0], [[0, 86.6], [0, 137.4]])
    dots = {(round(x, 2), y) for ln in ax.get_lines() if ln.get_marker() in ("o", "x")
            for x, y in zip(ln.get_xdata(), ln.get_ydata())}
    assert dots == {(0.15, 110.0), (0.15, 114.0), (1.15, 130.0), (1.15, 1.0)}  # the failed seed at the top edge
    # the axis is the completed seeds' and intervals' (86.6 to 137.4, 5 % margin), not the failed 2.7e8
    assert ax.get_ylim() == pytest.approx((86.6 - 0.05 * 50.8, 137.4 + 0.05 * 50.8))
    diamonds = [y for ln in ax.get_lines() if ln.get_marker() == "D" for y in ln.get_ydata()]
    assert diamonds == [112.0, 130.0]
    assert not any("accuracy" in text for fig in (figures["vae/final_metric"], figures["vae/curves"],
                                                 figures["vae/generalisation_gap"], figures["vae/time_to_target"])
                   for a in fig.axes for text in (a.get_title(), a.get_ylabel()))
    panels = [a.get_title() for a in figures["vae/curves"].axes]  # row by row: training, then test
    assert panels == [f"{s} {m}" for s in ("training", "test") for m in ("negative ELBO", "reconstruction loss",
                                                                      "KL divergence")]
    # gap for a lower-is-better metric: test − train (above 0: better on the training set)
    gap_ax = figures["vae/generalisation_gap"].axes[0]
    gap = next(ln for ln in gap_ax.get_lines() if ln.get_label() == "A")
    np.testing.assert_allclose(gap.get_ydata(), [1.0, 1.0])
    assert gap_ax.get_title().startswith("Generalisation gap: test negative ELBO − training negative ELBO")
    assert figures["vae/time_to_target"].axes[0].get_title().startswith(
        "Training seconds to test negative ELBO ≤ 120")


def test_profile_steps_are_the_profile_table(drawn):
    _, _, figures, _, profile = drawn
    axes = figures["performance_profile"].axes
    assert [ax.get_title() for ax in axes] == ["final primary metric (ratio to the best)",
                                               "seconds to target (ratio to the fastest)"]
    for ax, measure in zip(axes, ("metric", "time")):
        assert ax.get_xscale() == "log"
        ax.figure.canvas.draw()
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "1.25", "1.5", "2", "3", "4"]  # not a lone 1
        for line in ax.get_lines():
            optimizer = line.get_label().split(" ")[0]
            rows = profile[(profile["measure"] == measure) & (profile["optimizer"] == optimizer)]
            assert line.get_drawstyle() == "steps-post"
            np.testing.assert_allclose(line.get_xdata(), rows["tau"])
            np.testing.assert_allclose(line.get_ydata(), rows["fraction"])
    assert sorted(ln.get_label() for ln in axes[1].get_lines()) == ["A (score 1.00)", "B (score 0.33)"]
    # the headline: the final primary metric alone
    [headline] = figures["headline_profile"].axes
    assert headline.get_title() == "final primary metric (ratio to the best)" and len(headline.get_lines()) == 2


def test_the_focus_optimizer_is_drawn_first_and_thick(tmp_path):
    profile = pd.DataFrame({"measure": "metric", "optimizer": ["A", "A", "B", "B"], "tau": [1, 4] * 2,
                            "fraction": [1, 1, 0.5, 1]})
    scores = pd.DataFrame({"measure": "metric", "optimizer": ["A", "B"], "score": [1.0, 0.8]})
    kept = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save", lambda fig, stem, formats=("png", "svg"): kept.setdefault("fig", fig) and [])
        plots.headline_profile(profile, scores, {"A": "red", "B": "blue"}, tmp_path / "h", 2, focus="B")
    ax = kept["fig"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["B (score 0.80)", "A (score 1.00)"]
    widths = {ln.get_label().split()[0]: ln.get_linewidth() for ln in ax.get_lines()}
    assert widths["B"] > widths["A"]


def test_rank_figure_draws_each_rank_and_its_range(drawn):
    figures = drawn[2]
    ax = figures["ranks"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cls", "vae"]  # the problems' names
    by = {c.get_label(): c for c in ax.containers}
    assert list(by["B"].lines[0].get_ydata()) == [2, 1]
    bars = {o: [tuple(s[:, 1]) for s in by[o].lines[2][0].get_segments()] for o in ("A", "B")}
    assert bars == {"A": [(1, 2), (1, 2)], "B": [(1, 2), (1, 1)]}  # rank_low to rank_high per problem
    assert ax.get_ylim() == (2.5, 0.5)  # rank 1 at the top


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
    plots.sensitivity(trials, {"SGD": "red"}, "final validation accuracy", tmp_path / "s", "momentum", False)
    ax = figures["f"].axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "SGD")
    np.testing.assert_allclose(line.get_xdata(), [0.45, 0.9])  # sorted by momentum; the diverged trial is a cross
    np.testing.assert_allclose(line.get_ydata(), [0.7, 0.5])
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "momentum"


def test_sensitivity_of_a_lower_is_better_criterion_draws_diverged_trials_at_the_top(tmp_path, monkeypatch):
    trials = pd.DataFrame({"optimizer": "SGD", "trial": [0, 1, 2], "lr": [0.01, 0.1, 1.0],
                           "score": [130.0, 110.0, np.nan], "selected": [False, True, False]})
    figures = {}
    real_save = plots.save
    monkeypatch.setattr(plots, "save", lambda fig, stem, formats: (figures.setdefault("f", fig),
                                                                    real_save(fig, stem, formats))[1])
    vae = plan_of(["vae"]).problems["vae"]
    label, higher = criterion_label("final_val", vae.primary.name, vae.higher_is_better)
    assert (label, higher) == ("final validation negative ELBO", False)
    plots.sensitivity(trials, {"SGD": "red"}, label, tmp_path / "s", higher_is_better=higher)
    ax = figures["f"].axes[0]
    [cross] = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert list(cross.get_xdata()) == [1.0] and list(cross.get_ydata()) == [130.0]  # the worst finished score
    assert ax.get_ylabel() == "final validation negative ELBO (lower is better)"


def test_descent_figures_writes_exactly_the_declared_files(tmp_path, monkeypatch):
    fn = functions.get("beale")
    job_dir, runs, rows = tmp_path / "descent" / "g" / "beale", [], []  # one job: both runs in one table
    job_dir.mkdir(parents=True)
    for epochs, method in ((50, "SGD"), (20, "Adam")):
        trajectory, _ = descent.article_descent(fn, (1.0, 1.0), 1e-3, None, "central", 1e-3, 0.0, epochs)
        rows += [{"group": "g", "function": "beale", "method": method, "gradient": "central", **r} for r in trajectory]
        runs.append(DescentRun("g", "beale", method, "central", str(job_dir),
                               str(tmp_path / "fig" / "runs" / f"{method}.png"), spec={}))
    pd.DataFrame(rows).to_csv(job_dir / "trajectory.csv", index=False)
    plan = Plan("results", {}, {}, [], runs, {})
    figures = {}
    with monkeypatch.context() as patch:
        patch.setattr(plt, "close", lambda fig=None: figures.setdefault(len(figures), fig))
        written = plots.descent_figures(plan, tmp_path / "fig")
    # each run's own figure draws its own rows of the job's table (51 and 21 points)
    drawn = [sorted(len(line.get_xdata()) for line in fig.axes[0].get_lines() if line.get_marker() == ".")
             for fig in figures.values() if fig is not None and fig.axes]
    assert [51] in drawn and [21] in drawn and [21, 51] in drawn  # SGD's and Adam's figures, and every run's
    out = tmp_path / "fig"
    declared = files.descent_figure_files(plan.descent_functions(), out)
    assert declared == [out / "ackley_views.png", out / "beale_all_runs.png", out / "beale_3d.html"]
    assert files.descent_figure_files(["ackley", "beale"], out, ("all_runs",)) == [
        out / "ackley_all_runs.png", out / "beale_all_runs.png"]
    assert sorted(written) == sorted(declared + [Path(run.figure) for run in runs])
    assert all(path.exists() for path in written)
    assert '<div id="beale-3d"' in (out / "beale_3d.html").read_text()
