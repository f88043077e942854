"""2-D test functions with their known minima, vectorised over NumPy arrays and torch tensors.

Each function takes points of shape (..., 2) and returns values of shape (...). The same code runs
on NumPy (numerical gradients, plotting grids) and on torch tensors (autograd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _xp(values):
    """The array namespace of `values`: torch for tensors, else NumPy (torch is not imported for NumPy)."""
    if type(values).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _safe_sqrt(xp, s):
    """sqrt(s) for s ≥ 0 whose autograd gradient at s = 0 is 0, not NaN (d sqrt/ds = 1/(2·sqrt s) is
    infinite there, and autograd multiplies it by ds/dx = 0). Where sqrt feeds Ackley's cone, 0 is in the
    subdifferential at the origin: the minimum then has gradient 0, as the central difference gives."""
    positive = s > 0
    return xp.where(positive, xp.sqrt(xp.where(positive, s, 1.0)), 0.0)


def ackley(p):
    """The article's Ackley: -20·exp(-0.2·sqrt(0.5·(x²+y²))) - exp(0.5·(cos 2πx + cos 2πy)) + e + 20.
    Not differentiable at its minimum (0, 0) (a cone tip): its gradient there is taken as 0."""
    xp, x, y = _xp(p), p[..., 0], p[..., 1]
    return (-20.0 * xp.exp(-0.2 * _safe_sqrt(xp, 0.5 * (x**2 + y**2)))
            - xp.exp(0.5 * (xp.cos(2 * math.pi * x) + xp.cos(2 * math.pi * y))) + math.e + 20.0)


def rosenbrock(p):
    """(1 - x)² + 100·(y - x²)²."""
    x, y = p[..., 0], p[..., 1]
    return (1 - x) ** 2 + 100.0 * (y - x**2) ** 2


def rastrigin(p):
    """20 + x² + y² - 10·(cos 2πx + cos 2πy)."""
    xp, x, y = _xp(p), p[..., 0], p[..., 1]
    return 20.0 + x**2 + y**2 - 10.0 * (xp.cos(2 * math.pi * x) + xp.cos(2 * math.pi * y))


def himmelblau(p):
    """(x² + y - 11)² + (x + y² - 7)²: four global minima of value 0."""
    x, y = p[..., 0], p[..., 1]
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def beale(p):
    """(1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²."""
    x, y = p[..., 0], p[..., 1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


@dataclass(frozen=True)
class TestFunction:
    """A function with its global minima (all of value `minimum_value`), default start and plot bounds."""

    name: str
    f: callable
    minima: tuple[tuple[float, float], ...]
    start: tuple[float, float]
    bounds: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max
    minimum_value: float = 0.0

    def distance_to_minimum(self, point) -> float:
        """Euclidean distance from point to the nearest global minimum."""
        x, y = np.asarray(point, dtype=float)
        return float(min(np.hypot(x - mx, y - my) for mx, my in self.minima))


FUNCTIONS = {
    "ackley": TestFunction("ackley", ackley, ((0.0, 0.0),), (-2.0, -2.0), (-2, 2, -2, 2)),
    "rosenbrock": TestFunction("rosenbrock", rosenbrock, ((1.0, 1.0),), (-1.5, 2.0), (-2, 2, -1, 3)),
    "rastrigin": TestFunction("rastrigin", rastrigin, ((0.0, 0.0),), (-2.2, 2.2), (-3, 3, -3, 3)),
    "himmelblau": TestFunction("himmelblau", himmelblau, (
        (3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
        (0.0, 0.0), (-5, 5, -5, 5)),
    "beale": TestFunction("beale", beale, ((3.0, 0.5),), (1.0, 1.0), (-4.5, 4.5, -4.5, 4.5)),
}


def get(name: str) -> TestFunction:
    try:
        return FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown test function {name!r}; known: {sorted(FUNCTIONS)}") from None


# ---------------------------------------------------------------- gradients
GRADIENTS = ("central", "forward", "as-printed", "autograd")


def numerical_gradient(f, points, h: float, scheme: str = "central"):
    """Finite-difference gradient at points (..., 2), all coordinates and points at once.

    central:    (f(X + h·eᵢ) - f(X - h·eᵢ)) / (2h)      error O(h²)
    forward:    (f(X + h·eᵢ) - f(X)) / h                 error O(h)
    as-printed: f(X + h·eᵢ) - f(X - h·eᵢ) / (2h)         the article's printed code (precedence slip)
    """
    xp = _xp(points)
    eye = h * (xp.eye(2, dtype=points.dtype) if xp is np else xp.eye(2, dtype=points.dtype, device=points.device))
    shifted = points[..., None, :]  # (..., 1, 2) + (2, 2): one shifted copy per coordinate
    if scheme == "central":
        return (f(shifted + eye) - f(shifted - eye)) / (2 * h)
    if scheme == "forward":
        return (f(shifted + eye) - f(points)[..., None]) / h
    if scheme == "as-printed":
        return f(shifted + eye) - f(shifted - eye) / (2 * h)
    raise ValueError(f"unknown finite-difference scheme {scheme!r}; use central, forward or as-printed")


def autograd_gradient(f, points, create_graph: bool = False):
    """Exact gradient by torch autograd at points (..., 2) (NumPy in, NumPy out; tensors in, tensors out).

    create_graph: `points` is a tensor that requires grad, and the gradient keeps its graph to it
    (for Hessian-vector products); otherwise the gradient is a constant.
    """
    import torch

    as_numpy = not isinstance(points, torch.Tensor)
    if create_graph:
        (grad,) = torch.autograd.grad(f(points).sum(), points, create_graph=True)
        return grad
    x = torch.as_tensor(points, dtype=torch.float64).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x).sum(), x)
    return grad.numpy() if as_numpy else grad


def gradient(f, points, scheme: str, h: float, create_graph: bool = False):
    """The gradient of f at points by the named scheme (one of GRADIENTS). create_graph (tensors that
    require grad only): the result keeps its graph to `points`; finite differences are differentiable
    in the point too, so Hessian-based optimizers work with every scheme."""
    if scheme == "autograd":
        return autograd_gradient(f, points, create_graph)
    return numerical_gradient(f, points, h, scheme)
