"""Test functions at known points, and the finite-difference gradients' orders of error."""

import math

import numpy as np
import pytest
import torch

from optimbench import functions
from optimbench.functions import FUNCTIONS, autograd_gradient, gradient, numerical_gradient


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_value_is_zero_at_every_global_minimum(name):
    fn = FUNCTIONS[name]
    for point in fn.minima:
        assert abs(fn.f(np.array(point))) < 1e-9


@pytest.mark.parametrize("name, point, value", [
    ("ackley", (1.0, 1.0), 20 * (1 - math.exp(-0.2))),   # cos 2π = 1: the second exp is e
    ("ackley", (0.5, 0.0), -20 * math.exp(-0.2 * math.sqrt(0.125)) - 1 + math.e + 20),  # cos π + cos 0 = 0
    ("rosenbrock", (0.0, 0.0), 1.0),
    ("rosenbrock", (-1.0, 2.0), 4 + 100),
    ("rastrigin", (1.0, 1.0), 2.0),
    ("rastrigin", (0.5, 0.5), 20 + 0.5 + 20),
    ("himmelblau", (0.0, 0.0), 121 + 49),
    ("beale", (0.0, 0.0), 1.5**2 + 2.25**2 + 2.625**2),
    ("beale", (1.0, 1.0), 1.5**2 + 2.25**2 + 2.625**2),   # x - xy^k = 0 at (1, 1)
])
def test_values_at_hand_computed_points(name, point, value):
    assert FUNCTIONS[name].f(np.array(point)) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("name, point, grad", [
    ("rosenbrock", (0.0, 0.0), (-2.0, 0.0)),
    ("rosenbrock", (1.0, 2.0), (-400.0, 200.0)),   # 2(x-1) - 400x(y-x²), 200(y-x²)
    ("himmelblau", (0.0, 0.0), (-14.0, -22.0)),     # 4x(x²+y-11) + 2(x+y²-7), 2(x²+y-11) + 4y(x+y²-7)
    ("rastrigin", (0.25, 0.0), (0.5 + 20 * math.pi, 0.0)),  # 2x + 20π sin 2πx
])
def test_autograd_gradient_at_hand_computed_points(name, point, grad):
    np.testing.assert_allclose(autograd_gradient(FUNCTIONS[name].f, np.array(point)), grad, rtol=1e-12, atol=1e-12)


def test_numpy_and_torch_agree_over_many_points():
    points = np.random.default_rng(0).uniform(-2, 2, (50, 2))
    for fn in FUNCTIONS.values():
        np.testing.assert_allclose(fn.f(points), fn.f(torch.from_numpy(points)).numpy(), rtol=1e-12)


def test_numerical_gradient_is_vectorised_over_points():
    fn = FUNCTIONS["ackley"]
    points = np.random.default_rng(1).uniform(-2, 2, (7, 3, 2))
    batched = numerical_gradient(fn.f, points, 1e-4, "central")
    assert batched.shape == (7, 3, 2)
    np.testing.assert_allclose(batched[4, 2], numerical_gradient(fn.f, points[4, 2], 1e-4, "central"))


def test_central_error_shrinks_as_h_squared_and_forward_as_h():
    fn, point = FUNCTIONS["ackley"], np.array([0.3, -0.7])
    exact = autograd_gradient(fn.f, point)
    errors = {scheme: [np.abs(numerical_gradient(fn.f, point, h, scheme) - exact).max() for h in (1e-2, 1e-3)]
              for scheme in ("central", "forward")}
    central_ratio = errors["central"][0] / errors["central"][1]
    forward_ratio = errors["forward"][0] / errors["forward"][1]
    assert 70 < central_ratio < 130  # h ten times smaller → error 100 times smaller: O(h²)
    assert 7 < forward_ratio < 13    # → 10 times smaller: O(h)


def test_as_printed_gradient_is_the_articles_precedence_slip():
    fn, point, h = FUNCTIONS["ackley"], np.array([-2.0, -2.0]), 1e-3
    e = np.eye(2) * h
    expected = [fn.f(point + e[i]) - fn.f(point - e[i]) / (2 * h) for i in range(2)]
    np.testing.assert_allclose(gradient(fn.f, point, "as-printed", h), expected, rtol=1e-12)
    # At (-2, -2) it is about -499·f: a huge descent direction toward the origin, not the gradient.
    assert gradient(fn.f, point, "as-printed", h)[0] == pytest.approx(-3290.891, rel=1e-6)
    assert gradient(fn.f, point, "central", h)[0] == pytest.approx(-1.34064, rel=1e-5)


def test_torch_points_get_torch_gradients():
    point = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert isinstance(gradient(functions.ackley, point, "central", 1e-3), torch.Tensor)
    assert isinstance(gradient(functions.ackley, point, "autograd", 1e-3), torch.Tensor)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown test function 'sphere'"):
        functions.get("sphere")
    with pytest.raises(ValueError, match="unknown finite-difference scheme 'backward'"):
        numerical_gradient(functions.ackley, np.zeros(2), 1e-3, "backward")


def test_distance_to_the_nearest_minimum():
    fn = FUNCTIONS["himmelblau"]
    assert fn.distance_to_minimum((3.0, 2.5)) == pytest.approx(0.5)


# ---------------------------------------------------------------- gradients at the minima (issue 14.10)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_autograd_gradient_is_finite_and_zero_at_every_minimum(name):
    """Every minimum is stationary: the gradient is 0 there (Himmelblau's three irrational minima are given
    to 6 decimals: ≈ 0 to 1e-4). Ackley's cone tip at (0, 0) has no derivative; its gradient is taken as 0."""
    fn = FUNCTIONS[name]
    for point in fn.minima:
        for tensor in (False, True):
            at = torch.tensor(point, dtype=torch.float64) if tensor else np.array(point)
            grad = np.asarray(autograd_gradient(fn.f, at))
            assert np.isfinite(grad).all(), (name, point)
            np.testing.assert_allclose(grad, 0.0, atol=1e-4 if name == "himmelblau" else 0)


def test_ackley_gradient_near_the_origin_is_unchanged():
    """The fix at the origin leaves the formula elsewhere: the radial part's derivative by hand,
    d/dx -20·exp(-0.2·r/√2) = 20·0.2·exp(-0.2·r/√2)·x/(√2·r) with r = |(x, y)|, plus the cosine part's."""
    x, y = 1e-3, -2e-3
    r = math.hypot(x, y)
    radial = 20 * 0.2 * math.exp(-0.2 * r / math.sqrt(2)) / (math.sqrt(2) * r)
    cosine = math.exp(0.5 * (math.cos(2 * math.pi * x) + math.cos(2 * math.pi * y))) * 0.5 * 2 * math.pi
    expected = [radial * x + cosine * math.sin(2 * math.pi * x), radial * y + cosine * math.sin(2 * math.pi * y)]
    np.testing.assert_allclose(autograd_gradient(functions.ackley, np.array([x, y])), expected, rtol=1e-12)


def test_second_derivatives_are_finite_at_the_minima():
    """Hessian-based optimizers differentiate the gradient again (Hessian-vector products)."""
    for fn in FUNCTIONS.values():
        for point in fn.minima:
            hessian = torch.autograd.functional.hessian(fn.f, torch.tensor(point, dtype=torch.float64))
            assert torch.isfinite(hessian).all(), fn.name
