"""Descent: the article's updates against their formulas, the stopping rule, torch optimizers."""

import json
import resource

import numpy as np
import pandas as pd
import pytest

from optimbench import descent, functions
from optimbench.functions import TestFunction as Function

# f = ½(x² + y²): the gradient is the point itself, and central differences are exact for it.
QUAD = Function("quad", lambda p: 0.5 * (p[..., 0] ** 2 + p[..., 1] ** 2), ((0.0, 0.0),), (1.0, 1.0), (-1, 1, -1, 1))
ACKLEY = functions.get("ackley")


def frame(rows: list[dict]) -> pd.DataFrame:
    """A trajectory's rows (descent's dicts) as a table, to index them by epoch and column."""
    return pd.DataFrame(rows, columns=list(descent.TRAJECTORY_COLUMNS))


def article_descent(*args, **kwargs):
    rows, converged = descent.article_descent(*args, **kwargs)
    return frame(rows), converged


def optimizer_descent(*args, **kwargs):
    rows, converged = descent.optimizer_descent(*args, **kwargs)
    return frame(rows), converged


def run(spec: dict):
    """descent.run's trajectory and its summary row, as tables."""
    rows, summary = descent.run(spec)
    return frame(rows), pd.DataFrame([summary])


def test_vanilla_steps_follow_x_minus_lr_g():
    traj, _ = article_descent(ACKLEY, (-2.0, -2.0), 0.01, None, "central", 1e-3, 0.0, 3)
    point = np.array([-2.0, -2.0])
    for epoch in range(1, 4):
        grad = functions.numerical_gradient(ACKLEY.f, point, 1e-3, "central")
        point = point - 0.01 * grad
        row = traj.iloc[epoch]
        np.testing.assert_allclose([row.x, row.y], point, rtol=1e-14)
        np.testing.assert_allclose([row.grad_x, row.grad_y], grad, rtol=1e-14)


def test_momentum_steps_follow_v_equals_m_v_plus_lr_g():
    traj, _ = article_descent(ACKLEY, (-2.0, -1.5), 0.01, 0.9, "central", 1e-3, 0.0, 4)
    point, velocity = np.array([-2.0, -1.5]), np.zeros(2)
    for epoch in range(1, 5):
        velocity = 0.9 * velocity + 0.01 * functions.numerical_gradient(ACKLEY.f, point, 1e-3, "central")
        point = point - velocity
        np.testing.assert_allclose(traj.loc[epoch, ["x", "y"]].to_numpy(float), point, rtol=1e-14)
        assert traj.loc[epoch, "step"] == pytest.approx(np.abs(velocity).sum(), rel=1e-12)


def test_stopping_rule_and_epoch_count_by_hand():
    """lr ½ on ½|X|² halves X each epoch from (1, 1): the step Σ|ΔX| is 2·½ᵏ = 1, ½, ¼, ⅛, 1/16.
    The first below tol 0.1 is epoch 5's (0.0625), which is counted: 5 epochs, X = (1/32, 1/32)."""
    traj, converged = article_descent(QUAD, (1.0, 1.0), 0.5, None, "central", 1e-3, 0.1, 100)
    assert converged and traj["epoch"].iloc[-1] == 5 and len(traj) == 6
    np.testing.assert_allclose(traj["step"].iloc[1:], [1, 0.5, 0.25, 0.125, 0.0625], rtol=1e-12)
    np.testing.assert_allclose([traj["x"].iloc[-1], traj["y"].iloc[-1]], [1 / 32, 1 / 32], rtol=1e-12)


def test_cap_stops_a_run_that_never_meets_the_rule():
    traj, converged = article_descent(QUAD, (1.0, 1.0), 0.5, None, "central", 1e-3, 0.0, 7)
    assert not converged and traj["epoch"].iloc[-1] == 7


def test_article_run_as_printed_reaches_the_minimum_and_the_correct_one_stops_at_once():
    """With lr 1e-5 the correct gradient moves the point 2.7e-5 per epoch < h: it stops after 1 epoch.
    The as-printed 'gradient' (≈ -499·f) walks to the origin: the article's epoch counts measure that."""
    common = dict(fn=ACKLEY, start=(-2.0, -2.0), lr=1e-5, momentum=None, h=1e-3, tol=1e-3, max_epochs=20000)
    printed, printed_converged = article_descent(scheme="as-printed", **common)
    central, central_converged = article_descent(scheme="central", **common)
    assert central_converged and central["epoch"].iloc[-1] == 1
    assert printed_converged and 50 < printed["epoch"].iloc[-1] < 1000
    assert ACKLEY.distance_to_minimum(printed[["x", "y"]].iloc[-1]) < descent.REACHED_DISTANCE


def test_torch_sgd_equals_the_article_updates():
    """torch SGD(momentum m): buf = m·buf + g, X -= lr·buf ≡ v = m·v + lr·g, X -= v (v = lr·buf)."""
    for momentum in (0.0, 0.9):
        ours, _ = article_descent(ACKLEY, (-1.0, 0.5), 0.01, momentum or None, "autograd", 1e-3, 0.0, 20)
        theirs, _ = optimizer_descent(ACKLEY, (-1.0, 0.5), {"class": "SGD"},
                                              {"lr": 0.01, "momentum": momentum}, "autograd", 1e-3, 0.0, 20)
        np.testing.assert_allclose(ours[["x", "y", "f"]], theirs[["x", "y", "f"]], rtol=1e-12)


def test_adam_first_step_is_lr_along_the_gradient_sign():
    traj, _ = optimizer_descent(QUAD, (1.0, -2.0), {"class": "Adam"}, {"lr": 0.1}, "central", 1e-3, 0.0, 1)
    np.testing.assert_allclose(traj.loc[1, ["x", "y"]].to_numpy(float), [0.9, -1.9], rtol=1e-6)


def test_run_and_summary_from_a_spec():
    spec = {"group": "g", "function": "ackley", "method": "article-vanilla", "gradient": "as-printed",
            "kind": "article", "update": "vanilla", "lr": 1e-5, "h": 1e-3, "tol": 1e-3, "max_epochs": 20000,
            "start": [-2.0, -2.0]}
    traj, summary = run(spec)
    row = summary.iloc[0]
    assert list(traj.columns) == list(descent.TRAJECTORY_COLUMNS)
    assert row.epochs == len(traj) - 1 and row.converged and row.reached_minimum and not row.diverged
    assert row.final_f == pytest.approx(ACKLEY.f(np.array([row.final_x, row.final_y])))


def test_a_diverging_optimizer_is_recorded():
    spec = {"group": "g", "function": "rosenbrock", "method": "SGD", "gradient": "autograd", "kind": "optimizer",
            "optimizer": {"class": "SGD"}, "kwargs": {"lr": 0.01}, "h": 1e-3, "tol": 0.0, "max_epochs": 200,
            "start": [-1.5, 2.0]}
    traj, summary = run(spec)
    assert summary.iloc[0].diverged and not summary.iloc[0].reached_minimum
    assert len(traj) < 201  # stopped at the first non-finite point


# ---------------------------------------------------------------- at the minimum (issue 14.10)
@pytest.mark.parametrize("gradient", ["autograd", "central"])
def test_a_run_started_at_ackleys_minimum_stays_there(gradient):
    spec = {"group": "g", "function": "ackley", "method": "SGD", "gradient": gradient, "kind": "optimizer",
            "optimizer": {"class": "SGD"}, "kwargs": {"lr": 0.01}, "h": 1e-3, "tol": 0.0, "max_epochs": 5,
            "start": [0.0, 0.0]}
    traj, summary = run(spec)
    row = summary.iloc[0]
    assert not row.diverged and row.reached_minimum and row.epochs == 5
    assert (traj[["x", "y", "f"]].to_numpy() == 0).all()
    assert (traj[["grad_x", "grad_y"]].iloc[1:].to_numpy() == 0).all()


# ---------------------------------------------------------------- optimizers beyond step() (issue 14.4)
def test_lbfgs_steps_by_hand_on_a_quadratic():
    """torch's LBFGS without line search: first iteration X - min(1, 1/|g|₁)·lr·g; then, its curvature pair
    (s, y = s on ½|X|²) gives the inverse Hessian I exactly, so X - lr·g. From (1, -2), lr 0.3, max_iter 1:
    g = (1, -2), |g|₁ = 3, t = 0.1 → (0.9, -1.8); then 0.7·(0.9, -1.8) = (0.63, -1.26)."""
    for gradient in ("autograd", "central"):
        traj, _ = optimizer_descent(QUAD, (1.0, -2.0), {"class": "LBFGS"}, {"lr": 0.3, "max_iter": 1},
                                            gradient, 1e-3, 0.0, 2)
        np.testing.assert_allclose(traj.loc[1:, ["x", "y"]].to_numpy(float), [[0.9, -1.8], [0.63, -1.26]], rtol=1e-12)
        np.testing.assert_allclose(traj.loc[1, ["grad_x", "grad_y"]].to_numpy(float), [1.0, -2.0], rtol=1e-9)


def test_lbfgs_with_line_search_solves_rosenbrock():
    traj, _ = optimizer_descent(functions.get("rosenbrock"), (-1.5, 2.0), {"class": "LBFGS"},
                                        {"lr": 1, "max_iter": 50, "line_search_fn": "strong_wolfe",
                                         "tolerance_grad": 1e-14, "tolerance_change": 1e-16},
                                        "autograd", 1e-3, 0.0, 10)
    np.testing.assert_allclose(traj[["x", "y"]].iloc[-1], [1.0, 1.0], atol=1e-8)


@pytest.mark.parametrize("gradient", ["autograd", "central"])
def test_sophiah_first_step_by_hand(gradient):
    """SophiaH (Liu et al. 2023, Alg. 1 with Hutchinson's estimator): on ½|X|² the Hessian is I, so a
    Rademacher probe z gives z⊙(Hz) = 1 exactly. Step 1: m = (1-β₁)·g = 0.04·g, h = (1-β₂)·1 = 0.01,
    X ← X - lr·clip(m/h, p) = X - 0.1·4·g = 0.6·X (p = 10 clips nothing). The finite differences of a
    quadratic are exact and differentiable in X, so the central scheme gives the same step."""
    kwargs = {"lr": 0.1, "p": 10.0, "hessian_distribution": "rademacher"}
    traj, _ = optimizer_descent(QUAD, (1.0, -2.0), {"class": "pytorch_optimizer.SophiaH"}, kwargs,
                                        gradient, 1e-3, 0.0, 1)
    np.testing.assert_allclose(traj.loc[1, ["x", "y"]].to_numpy(float), [0.6, -1.2], rtol=1e-9)


def test_adahessian_runs_every_scheme_on_ackley():
    for gradient in functions.GRADIENTS:
        traj, _ = optimizer_descent(ACKLEY, (-1.0, 0.5), {"class": "pytorch_optimizer.AdaHessian"},
                                            {"lr": 0.05}, gradient, 1e-3, 0.0, 20)
        assert np.isfinite(traj[["x", "y"]].to_numpy()).all() and traj["step"].iloc[1] > 0


# ---------------------------------------------------------------- run alone (issue 14.8)
def test_descent_spec_missing_keys_and_help(tmp_path, capsys):
    spec = {"function": "ackley", "method": "SGD", "gradient": "autograd", "kind": "optimizer", "h": 1e-3,
            "tol": 0.0, "start": [0, 0]}
    args = ["--trajectory", str(tmp_path / "t.csv"), "--summary", str(tmp_path / "s.csv")]
    with pytest.raises(SystemExit, match=r"missing 1 required key\(s\):\n  max_epochs: cap on updates\n"):
        descent.main(["--spec", json.dumps(spec), *args])
    with pytest.raises(SystemExit, match=r"missing 1 required key\(s\):\n  optimizer: registry entry"):
        descent.main(["--spec", json.dumps({**spec, "max_epochs": 3}), *args])
    with pytest.raises(SystemExit):
        descent.main(["--help"])
    out = capsys.readouterr().out
    for key in [*descent.SPEC_REQUIRED, *descent.SPEC_OPTIONAL]:
        assert f"\n  {key}" in out


def test_a_tuned_descent_keeps_the_learning_rate_that_ends_lowest():
    fn = functions.get("rosenbrock")
    entry = {"class": "SGD", "kwargs": {"momentum": 0.9}}
    common = dict(scheme="autograd", h=1e-3, tol=0.0, max_epochs=60)
    search = {"trials": 4, "low": 1e-4, "high": 1e-1}
    rows, _, tried = descent.tuned_descent(fn, (-1.2, 1.0), entry, {}, search, **common)
    trajectory, tried = frame(rows), pd.DataFrame(tried)
    finals = []
    for lr in (1e-4, 1e-3, 1e-2, 1e-1):  # each run on its own, independently of the search
        alone, _ = optimizer_descent(fn, (-1.2, 1.0), entry, {"lr": lr}, **common)
        final, f0 = alone["f"].iloc[-1], alone["f"].iloc[0]
        finals.append(final if np.isfinite(final) and abs(final) <= 1e6 * f0 else np.inf)
    np.testing.assert_allclose(tried["lr"], [1e-4, 1e-3, 1e-2, 1e-1])
    best = int(np.argmin(finals))
    assert tried["selected"].tolist() == [i == best for i in range(4)]
    assert trajectory["f"].iloc[-1] == finals[best]
    assert not np.isfinite(finals[3])  # lr 0.1 diverges on Rosenbrock from (-1.2, 1): it loses
    assert best != 3
    spec = {"function": "rosenbrock", "method": "SGD", "gradient": "autograd", "kind": "optimizer", "h": 1e-3,
            "tol": 0.0, "max_epochs": 60, "start": [-1.2, 1.0], "optimizer": entry, "tune": search}
    _, summary = run(spec)
    assert bool(summary["tuned"].item()) and summary["lr"].item() == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1][best])


def test_a_trajectory_file_carries_its_runs_identity(tmp_path):
    peak_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    spec = {"function": "beale", "method": "Adam.v2", "gradient": "central", "kind": "optimizer", "h": 1e-3,
            "tol": 0.0, "start": [1.0, 1.0], "max_epochs": 3, "optimizer": {"class": "Adam"}, "group": "g-1"}
    descent.main(["--spec", json.dumps(spec), "--trajectory", str(tmp_path / "t.csv"),
                  "--summary", str(tmp_path / "s.csv")])
    trajectory = pd.read_csv(tmp_path / "t.csv")
    assert list(trajectory.columns[:4]) == ["group", "function", "method", "gradient"] and len(trajectory) == 4
    assert trajectory[["group", "function", "method", "gradient"]].drop_duplicates().values.tolist() == [
        ["g-1", "beale", "Adam.v2", "central"]]
    # the job's peak host memory (issue 29.2), at least what this process held when the test began
    assert pd.read_csv(tmp_path / "s.csv")["peak_host_mb"].item() >= peak_before_mb


def test_demon_decays_momentum_over_the_epoch_cap():
    """Demon SGDM on QUAD: step k uses β of step k-1, β_t = β0(1 - t/T)/((1 - β0) + β0(1 - t/T)),
    T = max_epochs (the whole run's steps, not 1)."""
    beta0, lr, cap = 0.9, 0.1, 8
    traj, _ = optimizer_descent(QUAD, (1.0, -2.0), {"class": "SGD", "demon": True},
                                        {"lr": lr, "momentum": beta0}, "autograd", 1e-3, 0.0, cap)
    point, buf = np.array([1.0, -2.0]), None
    for epoch in range(1, cap + 1):
        remaining = 1 - (epoch - 1) / cap
        beta = beta0 * remaining / ((1 - beta0) + beta0 * remaining)
        buf = point.copy() if buf is None else beta * buf + point  # QUAD's gradient is the point
        point = point - lr * buf
        np.testing.assert_allclose(traj.loc[epoch, ["x", "y"]].to_numpy(float), point, rtol=1e-12)


# ---------------------------------------------------------------- a blow-up is never convergence (issue 27.2)
ROSENBROCK = functions.get("rosenbrock")


@pytest.mark.parametrize("gradient", ["central", "forward", "as-printed", "autograd"])
def test_a_blow_up_is_diverged_never_converged_for_every_gradient(gradient):
    """vanilla-lr0.01 on Rosenbrock from (-1.5, 2): the point grows ~ x³ per epoch (x = -1.5 → 1e28 in 7
    epochs); far out X ± h rounds to X, the finite differences vanish and the step looks converged."""
    spec = {"group": "corrected", "function": "rosenbrock", "method": "vanilla-lr0.01", "gradient": gradient,
            "kind": "article", "update": "vanilla", "lr": 1e-2, "h": 1e-3, "tol": 1e-3, "max_epochs": 20000,
            "start": [-1.5, 2.0]}
    traj, summary = run(spec)
    row = summary.iloc[0]
    assert row.diverged and not row.converged and not row.reached_minimum
    # stopped at the first epoch beyond the bound: f(start) = 0.25·... = 12.5, so above 1.25e7 (or non-finite)
    f0 = ROSENBROCK.f(np.array([-1.5, 2.0]))
    beyond = ~np.isfinite(traj["f"]) | (traj["f"].abs() > 1e6 * f0) | (traj[["x", "y"]].abs().max(axis=1) > 2e6)
    assert beyond.iloc[-1] and not beyond.iloc[:-1].any()


@pytest.mark.parametrize("gradient", ["central", "forward", "autograd"])
def test_an_optimizer_blow_up_stops_as_diverged(gradient):
    """SGD lr 0.01 on Rosenbrock: finite differences used to sit at f ≈ 1e110 for the whole budget."""
    spec = {"group": "g", "function": "rosenbrock", "method": "SGD", "gradient": gradient, "kind": "optimizer",
            "optimizer": {"class": "SGD"}, "kwargs": {"lr": 0.01}, "h": 1e-3, "tol": 1e-3, "max_epochs": 200,
            "start": [-1.5, 2.0]}
    traj, summary = run(spec)
    assert summary.iloc[0].diverged and not summary.iloc[0].converged
    assert len(traj) < 20 and np.isnan(summary.iloc[0].distance_to_minimum)


def test_a_point_running_away_on_a_bounded_function_diverges():
    """Ackley stays below 22.4 however far the point goes: the rule also bounds the point (2·10⁶ from a start
    whose largest coordinate is 2)."""
    traj, converged = article_descent(ACKLEY, (-2.0, -2.0), -1e7, None, "autograd", 1e-3, 1e-3, 50)
    assert descent.trajectory_diverged(traj.to_dict("records")) and not converged
    assert np.isfinite(traj["f"]).all() and traj[["x", "y"]].abs().max(axis=1).iloc[-1] > 2e6


def test_a_converging_run_with_a_transient_rise_is_not_diverged():
    """Momentum 0.9 on ½|X|² overshoots (f rises and falls) but never by 10⁶: converged, not diverged."""
    spec = {"group": "g", "function": "ackley", "method": "m", "gradient": "central", "kind": "article",
            "update": "momentum", "momentum": 0.9, "lr": 0.01, "h": 1e-3, "tol": 1e-3, "max_epochs": 20000,
            "start": [-2.0, -2.0]}
    traj, summary = run(spec)
    assert summary.iloc[0].converged and not summary.iloc[0].diverged


def test_a_diverged_trajectory_does_not_stretch_the_3d_view(tmp_path):
    """The 3-D view keeps the function's bounds and the surface's range (x, y in [-2, 2] × [-1, 3] for
    Rosenbrock; f from its grid minimum to f(-2, -1) = 9 + 100·25 = 2509), whatever a diverged run reached."""
    from optimbench import plots

    blown = pd.DataFrame({"x": [-1.5, 1e28], "y": [2.0, 1e27], "f": [12.5, 2.4e114]})
    text = plots.interactive_view(ROSENBROCK, {"blown": blown}, tmp_path / "r.html").read_text()
    assert '"xaxis":{"title":{"text":"x"},"range":[-2,2]}' in text
    assert '"yaxis":{"title":{"text":"y"},"range":[-1,3]}' in text
    assert ',"range":[' in text.split('"zaxis":{"title":{"text":"f"}')[1][:40] and "2509.0]" in text


def test_a_job_spec_is_one_run_or_a_list_of_runs_inline_or_in_a_file(tmp_path):
    """The workflow passes a job's runs (every run of a group on a function) as one JSON list; a run's own
    spec, inline or in a JSON/YAML file, is a job of one run. Each run is checked for its kind's keys."""
    run = {"group": "g", "function": "ackley", "method": "m", "gradient": "central", "kind": "article", "lr": 0.01,
           "h": 1e-3, "tol": 0.0, "max_epochs": 2, "start": [-1.0, 1.0]}
    (tmp_path / "job.yaml").write_text(json.dumps([run, {**run, "method": "n"}]))
    assert [s["method"] for s in descent.read_job_specs(str(tmp_path / "job.yaml"))] == ["m", "n"]
    assert descent.read_job_specs(json.dumps(run)) == [run]
    with pytest.raises(SystemExit, match="at least one run spec"):
        descent.read_job_specs("[]")
    with pytest.raises(SystemExit, match=r"missing 1 required key\(s\):\n  lr"):
        descent.read_job_specs(json.dumps([run, {k: v for k, v in run.items() if k != "lr"}]))
    with pytest.raises(SystemExit, match="not valid JSON"):
        descent.read_job_specs("[{")
