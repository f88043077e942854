"""Descent: the article's updates against their formulas, the stopping rule, torch optimizers."""

import numpy as np
import pytest

from optimbench import descent, functions
from optimbench.functions import TestFunction as Function

# f = ½(x² + y²): the gradient is the point itself, and central differences are exact for it.
QUAD = Function("quad", lambda p: 0.5 * (p[..., 0] ** 2 + p[..., 1] ** 2), ((0.0, 0.0),), (1.0, 1.0), (-1, 1, -1, 1))
ACKLEY = functions.get("ackley")


def test_vanilla_steps_follow_x_minus_lr_g():
    traj, _ = descent.article_descent(ACKLEY, (-2.0, -2.0), 0.01, None, "central", 1e-3, 0.0, 3)
    point = np.array([-2.0, -2.0])
    for epoch in range(1, 4):
        grad = functions.numerical_gradient(ACKLEY.f, point, 1e-3, "central")
        point = point - 0.01 * grad
        row = traj.iloc[epoch]
        np.testing.assert_allclose([row.x, row.y], point, rtol=1e-14)
        np.testing.assert_allclose([row.grad_x, row.grad_y], grad, rtol=1e-14)


def test_momentum_steps_follow_v_equals_m_v_plus_lr_g():
    traj, _ = descent.article_descent(ACKLEY, (-2.0, -1.5), 0.01, 0.9, "central", 1e-3, 0.0, 4)
    point, velocity = np.array([-2.0, -1.5]), np.zeros(2)
    for epoch in range(1, 5):
        velocity = 0.9 * velocity + 0.01 * functions.numerical_gradient(ACKLEY.f, point, 1e-3, "central")
        point = point - velocity
        np.testing.assert_allclose(traj.loc[epoch, ["x", "y"]].to_numpy(float), point, rtol=1e-14)
        assert traj.loc[epoch, "step"] == pytest.approx(np.abs(velocity).sum(), rel=1e-12)


def test_stopping_rule_and_epoch_count_by_hand():
    """lr ½ on ½|X|² halves X each epoch from (1, 1): the step Σ|ΔX| is 2·½ᵏ = 1, ½, ¼, ⅛, 1/16.
    The first below tol 0.1 is epoch 5's (0.0625), which is counted: 5 epochs, X = (1/32, 1/32)."""
    traj, converged = descent.article_descent(QUAD, (1.0, 1.0), 0.5, None, "central", 1e-3, 0.1, 100)
    assert converged and traj["epoch"].iloc[-1] == 5 and len(traj) == 6
    np.testing.assert_allclose(traj["step"].iloc[1:], [1, 0.5, 0.25, 0.125, 0.0625], rtol=1e-12)
    np.testing.assert_allclose([traj["x"].iloc[-1], traj["y"].iloc[-1]], [1 / 32, 1 / 32], rtol=1e-12)


def test_cap_stops_a_run_that_never_meets_the_rule():
    traj, converged = descent.article_descent(QUAD, (1.0, 1.0), 0.5, None, "central", 1e-3, 0.0, 7)
    assert not converged and traj["epoch"].iloc[-1] == 7


def test_article_run_as_printed_reaches_the_minimum_and_the_correct_one_stops_at_once():
    """With lr 1e-5 the correct gradient moves the point 2.7e-5 per epoch < h: it stops after 1 epoch.
    The as-printed 'gradient' (≈ -499·f) walks to the origin: the article's epoch counts measure that."""
    common = dict(fn=ACKLEY, start=(-2.0, -2.0), lr=1e-5, momentum=None, h=1e-3, tol=1e-3, max_epochs=20000)
    printed, printed_converged = descent.article_descent(scheme="as-printed", **common)
    central, central_converged = descent.article_descent(scheme="central", **common)
    assert central_converged and central["epoch"].iloc[-1] == 1
    assert printed_converged and 50 < printed["epoch"].iloc[-1] < 1000
    assert ACKLEY.distance_to_minimum(printed[["x", "y"]].iloc[-1]) < descent.REACHED_DISTANCE


def test_torch_sgd_equals_the_article_updates():
    """torch SGD(momentum m): buf = m·buf + g, X -= lr·buf ≡ v = m·v + lr·g, X -= v (v = lr·buf)."""
    for momentum in (0.0, 0.9):
        ours, _ = descent.article_descent(ACKLEY, (-1.0, 0.5), 0.01, momentum or None, "autograd", 1e-3, 0.0, 20)
        theirs, _ = descent.optimizer_descent(ACKLEY, (-1.0, 0.5), {"class": "SGD"},
                                              {"lr": 0.01, "momentum": momentum}, "autograd", 1e-3, 0.0, 20)
        np.testing.assert_allclose(ours[["x", "y", "f"]], theirs[["x", "y", "f"]], rtol=1e-12)


def test_adam_first_step_is_lr_along_the_gradient_sign():
    traj, _ = descent.optimizer_descent(QUAD, (1.0, -2.0), {"class": "Adam"}, {"lr": 0.1}, "central", 1e-3, 0.0, 1)
    np.testing.assert_allclose(traj.loc[1, ["x", "y"]].to_numpy(float), [0.9, -1.9], rtol=1e-6)


def test_run_and_summary_from_a_spec():
    spec = {"group": "g", "function": "ackley", "method": "article-vanilla", "gradient": "as-printed",
            "kind": "article", "update": "vanilla", "lr": 1e-5, "h": 1e-3, "tol": 1e-3, "max_epochs": 20000,
            "start": [-2.0, -2.0]}
    traj, summary = descent.run(spec)
    row = summary.iloc[0]
    assert list(traj.columns) == descent.TRAJECTORY_COLUMNS
    assert row.epochs == len(traj) - 1 and row.converged and row.reached_minimum and not row.diverged
    assert row.final_f == pytest.approx(ACKLEY.f(np.array([row.final_x, row.final_y])))


def test_a_diverging_optimizer_is_recorded():
    spec = {"group": "g", "function": "rosenbrock", "method": "SGD", "gradient": "autograd", "kind": "optimizer",
            "optimizer": {"class": "SGD"}, "kwargs": {"lr": 0.01}, "h": 1e-3, "tol": 0.0, "max_epochs": 200,
            "start": [-1.5, 2.0]}
    traj, summary = descent.run(spec)
    assert summary.iloc[0].diverged and not summary.iloc[0].reached_minimum
    assert len(traj) < 201  # stopped at the first non-finite point


def test_demon_decays_momentum_over_the_epoch_cap():
    """Demon SGDM on QUAD: step k uses β of step k-1, β_t = β0(1 - t/T)/((1 - β0) + β0(1 - t/T)), T = max_epochs."""
    beta0, lr, cap = 0.9, 0.1, 8
    traj, _ = descent.optimizer_descent(QUAD, (1.0, -2.0), {"class": "SGD", "demon": True},
                                        {"lr": lr, "momentum": beta0}, "autograd", 1e-3, 0.0, cap)
    point, buf = np.array([1.0, -2.0]), None
    for epoch in range(1, cap + 1):
        remaining = 1 - (epoch - 1) / cap
        beta = beta0 * remaining / ((1 - beta0) + beta0 * remaining)
        buf = point.copy() if buf is None else beta * buf + point  # QUAD's gradient is the point
        point = point - lr * buf
        np.testing.assert_allclose(traj.loc[epoch, ["x", "y"]].to_numpy(float), point, rtol=1e-12)
