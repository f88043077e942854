"""YellowFin (Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning", 2017/2019).

No maintained PyTorch package provides it. This is the paper's tuner on top of torch.optim.SGD's
momentum update (`buf ← μ·buf + g; θ ← θ - α·buf`), re-tuning α and μ at every step from running
estimates, all exponential moving averages with factor β (zero-debiased):

- Curvature range (Algorithm 2): h_t = ‖g_t‖²; h_max and h_min average the largest and smallest
  h over the last `window` steps.
- Gradient variance (Algorithm 3): C = Σ (avg(g²) - avg(g)²), over every coordinate.
- Distance to the optimum (Algorithm 4): D = avg(‖g‖) / avg(h).
- SingleStep (Section 3.2, eq. 10): μ*, α* minimise μ·D² + α²·C subject to the robustness condition
  √μ ≥ (√(h_max/h_min) - 1)/(√(h_max/h_min) + 1), with α = (1 - √μ)²/h_min. With x = √μ the
  objective is x²D² + (1-x)⁴·C/h_min², whose stationary point is the real root of a cubic (solved in
  closed form with Vieta's substitution, `cubic_root`).
- The applied α and μ are moving averages of α* and μ* (Algorithm 1).
Gradient clipping and the adaptive-clipping extension of the authors' code are left out.
"""

from __future__ import annotations

import math
from collections import deque

import torch

EPS = 1e-12


def cubic_root(D: float, C: float, h_min: float) -> float:
    """x = √μ in [0, 1] minimising x²D² + (1-x)⁴C/h_min²: with y = x - 1, y³ + p·y + p = 0, p = D²h_min²/(2C)."""
    p = D**2 * h_min**2 / (2.0 * max(C, EPS))
    w3 = (-math.sqrt(p**2 + 4.0 / 27.0 * p**3) - p) / 2.0
    w = math.copysign(abs(w3) ** (1.0 / 3.0), w3)
    y = w - p / (3.0 * w) if w != 0 else 0.0
    return min(max(y + 1.0, 0.0), 1.0)


def single_step(h_min: float, h_max: float, C: float, D: float) -> tuple[float, float]:
    """The paper's SingleStep: (α*, μ*) for the current estimates."""
    x = cubic_root(D, C, h_min)
    ratio = math.sqrt(max(h_max, EPS) / max(h_min, EPS))
    mu = max(x**2, ((ratio - 1.0) / (ratio + 1.0)) ** 2)
    lr = (1.0 - math.sqrt(mu)) ** 2 / max(h_min, EPS)
    return lr, mu


class YellowFin(torch.optim.SGD):
    """Momentum SGD whose learning rate and momentum are tuned every step by YellowFin."""

    def __init__(self, params, lr: float = 1e-4, momentum: float = 0.0, beta: float = 0.999, window: int = 20):
        super().__init__(params, lr=lr, momentum=momentum)
        self.tuner = {"beta": beta, "window": window, "t": 0, "h": deque(maxlen=window), "h_max": 0.0,
                      "h_min": 0.0, "g_norm": 0.0, "h_avg": 0.0, "D": 0.0, "lr": lr, "mu": momentum}

    def _ema(self, key: str, value: float) -> float:
        """Update a scalar moving average; return its zero-debiased value."""
        tuner, beta = self.tuner, self.tuner["beta"]
        tuner[key] = beta * tuner[key] + (1 - beta) * value
        return tuner[key] / (1 - beta ** tuner["t"])

    @torch.no_grad()
    def _variance(self) -> float:
        """Σ over coordinates of avg(g²) - avg(g)² (Algorithm 3), per-parameter moving averages in state."""
        beta, debias, total = self.tuner["beta"], 1 - self.tuner["beta"] ** self.tuner["t"], 0.0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "yf_g" not in state:
                    state["yf_g"], state["yf_g2"] = torch.zeros_like(p), torch.zeros_like(p)
                state["yf_g"].mul_(beta).add_(p.grad, alpha=1 - beta)
                state["yf_g2"].mul_(beta).addcmul_(p.grad, p.grad, value=1 - beta)
                total += (state["yf_g2"] / debias - (state["yf_g"] / debias) ** 2).sum().item()
        return max(total, EPS)

    @torch.no_grad()
    def tune(self) -> tuple[float, float]:
        """Update the estimates from the current gradients and return the (α, μ) to apply."""
        tuner = self.tuner
        tuner["t"] += 1
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        h = sum((g.float() ** 2).sum().item() for g in grads)  # ‖g‖², the curvature proxy
        tuner["h"].append(h)
        h_max = self._ema("h_max", max(tuner["h"]))
        h_min = self._ema("h_min", min(tuner["h"]))
        tuner["C_value"] = C = self._variance()
        g_norm = self._ema("g_norm", math.sqrt(h))
        h_avg = self._ema("h_avg", h)
        D = self._ema("D", g_norm / max(h_avg, EPS))
        lr_star, mu_star = single_step(h_min, h_max, C, D)
        tuner.update(h_min_value=h_min, h_max_value=h_max, D_value=D, lr_star=lr_star, mu_star=mu_star)
        beta = tuner["beta"]
        tuner["lr"] = beta * tuner["lr"] + (1 - beta) * lr_star
        tuner["mu"] = beta * tuner["mu"] + (1 - beta) * mu_star
        return tuner["lr"], tuner["mu"]

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        lr, mu = self.tune()
        for group in self.param_groups:
            group["lr"], group["momentum"] = lr, mu
        super().step()
        return loss

    def state_dict(self):
        state = super().state_dict()
        state["yellowfin"] = {**self.tuner, "h": list(self.tuner["h"])}
        return state

    def load_state_dict(self, state_dict):
        tuner = dict(state_dict.pop("yellowfin"))
        super().load_state_dict(state_dict)
        tuner["h"] = deque(tuner["h"], maxlen=tuner["window"])
        self.tuner = tuner
