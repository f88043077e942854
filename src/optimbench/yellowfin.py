"""YellowFin (Zhang & Mitliagkas, "YellowFin and the Art of Momentum Tuning", SysML 2019), as the
authors' PyTorch implementation runs it with its defaults (JianGoForIt/YellowFin_Pytorch,
`tuner_utils/yellowfin.py` at b87aed1).

No maintained package provides it and the authors' class is not a torch.optim.Optimizer (no
param_groups, a private SGD inside, disk checkpoints), so it is written here once, on top of
torch.optim.SGD's heavy-ball update (`buf ← μ·buf + g; θ ← θ - α·buf`). Every estimate is an
exponential moving average with factor β, zero-debiased by 1 - β^(t+1) at step t = 0, 1, ...;
EPS = 1e-6 is the authors' stabiliser, added where they add it.

- Curvature range (paper Algorithm 2): h_t = ‖g_t‖²; h_min, h_max average, in log space,
  log(min + EPS) and log(max + EPS) of the last `window` values of h, and are exponentiated back.
- Gradient variance (Algorithm 3): C = avg(‖g‖²) - ‖avg(g)‖², floored at EPS.
- Distance to the optimum (Algorithm 4): D = avg(avg(‖g‖) / (avg(‖g‖²) + EPS)), the inner
  averages not debiased (as in the authors' code).
- SingleStep (Section 3.2, eq. 10): μ* = max(x², ((√κ - 1)/(√κ + 1))²), κ = h_max/h_min, x the real
  root of the cubic for min x²D² + (1-x)⁴C/h_min² (`cubic_root`); α* = (1 - √μ*)²/h_min.
- Applied values: α* and μ* themselves, with a slow start α_t = min(1, (t+1)/(10·window))·α*;
  step t = 0 applies the constructor's lr and momentum untuned.
- Adaptive clipping (the implementation's `adapt_clip`, on by default): from step t = 2 the
  gradients are clipped to norm √(100·h_max) before the statistics; when ‖g‖² ≥ h_max they are
  clipped to √h_max after the statistics, before the step; and α is capped so that α·‖g‖ ≤ 100.
  h_max in these three rules is the previous step's.

Precision, as in the authors' code: the curvature window, the log-space averages of h_min/h_max and
C are float32 (their window is a torch.FloatTensor, C a numpy float32); the other statistics are
float64. With float64 everywhere the trajectories drift from the authors' by up to 3e-6 in 300
steps; as written they agree with the reference trajectories (tests/data/yellowfin_*.json, from the
authors' code) to ≤ 7e-8 in every one of 300 steps.

Differences from the authors' implementation, all in features that are off by default there or that
a torch optimizer cannot have: no `clip_thresh`/`auto_clip_fac` clipping, no sparsity debiasing, no
`force_non_inc_step`, no `delta_mu`; the averaged α and μ that the authors keep but apply only
under force_non_inc_step are not kept; their `lr_factor` is each group's `lr_scale`, which an lr
schedule sets (optim.LrScale) and which multiplies the tuned lr before the α·‖g‖ cap, as theirs does;
on a NaN/inf the authors reload an in-memory or on-disk checkpoint (`use_disk_checkpoint`) and
perturb the weights by 1e-8, this class does not (the trainer records the divergence); the tuner's
scalars cost a few host-device syncs per step (`.item()`), as theirs do. state_dict/load_state_dict
carry the whole tuner, so a resumed run continues bit-identically.
"""

from __future__ import annotations

import math

import torch

EPS = 1e-6  # the authors' stabiliser (tuner_utils/yellowfin.py: eps)
STAT_PROTECT = 100.0  # clip to √(STAT_PROTECT·h_max) before the statistics
CATASTROPHIC_MOVE = 100.0  # cap on α·‖g‖
SLOW_START = 10.0  # α ramps up over SLOW_START·window steps


def cubic_root(D: float, C: float, h_min: float) -> float:
    """x = √μ minimising x²D² + (1-x)⁴·C/h_min²: with y = x - 1, y³ + p·y + p = 0,
    p = (D+EPS)²(h_min+EPS)²/(2(C+EPS)), solved by Vieta's substitution (the authors' get_cubic_root)."""
    p = (D + EPS) ** 2 * (h_min + EPS) ** 2 / 2.0 / (C + EPS)
    w3 = (-math.sqrt(p**2 + 4.0 / 27.0 * p**3) - p) / 2.0
    w = math.copysign(abs(w3) ** (1.0 / 3.0), w3)
    return w - p / 3.0 / (w + EPS) + 1.0


def single_step(h_min: float, h_max: float, C: float, D: float) -> tuple[float, float]:
    """The paper's SingleStep (Section 3.2): (α*, μ*) for the current estimates, before the slow start."""
    kappa = max((h_max + EPS) / (h_min + EPS), 1.0 + EPS)
    mu = max(cubic_root(D, C, h_min) ** 2, ((math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)) ** 2)
    return (1.0 - math.sqrt(mu)) ** 2 / (h_min + EPS), mu


class YellowFin(torch.optim.SGD):
    """Momentum SGD whose learning rate and momentum YellowFin tunes at every step (module docstring).

    lr, momentum: applied at the first step (the authors' defaults 1e-4 and 0); beta: the moving
    averages' factor; window: the curvature window (steps); log_smooth: average h_min/h_max in log
    space; adapt_clip: the implementation's adaptive gradient clipping. weight_decay goes to SGD's
    step only, not into the statistics (as in the authors' code).
    """

    def __init__(self, params, lr: float = 1e-4, momentum: float = 0.0, beta: float = 0.999, window: int = 20,
                 weight_decay: float = 0.0, log_smooth: bool = True, adapt_clip: bool = True):
        if not 0.0 < beta < 1.0 or window < 1:
            raise ValueError(f"YellowFin needs 0 < beta < 1 and window ≥ 1, got beta={beta}, window={window}")
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        for group in self.param_groups:
            group["lr_scale"] = 1.0
        self.tuner = {"beta": beta, "window": window, "log_smooth": log_smooth, "adapt_clip": adapt_clip,
                      "t": 0, "h_window": [], "h_min_avg": 0.0, "h_max_avg": 0.0, "h_min": 0.0, "h_max": 0.0,
                      "h_avg": 0.0, "g_norm_avg": 0.0, "dist_avg": 0.0, "lr": lr, "mu": momentum}

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    def _debias(self) -> float:
        return 1.0 - self.tuner["beta"] ** (self.tuner["t"] + 1)

    def _ema(self, key: str, value: float) -> float:
        """Update the moving average self.tuner[key] with value; return it (not debiased)."""
        beta = self.tuner["beta"]
        self.tuner[key] = beta * self.tuner[key] + (1.0 - beta) * value
        return self.tuner[key]

    def _curvature_range(self, h: float) -> None:
        """Algorithm 2: h_min, h_max over the last `window` values of ‖g‖², averaged (in log space).
        In float32, as in the authors' code (its window is a torch.FloatTensor)."""
        tuner, beta = self.tuner, self.tuner["beta"]
        window = torch.tensor((tuner["h_window"] + [h])[-tuner["window"]:], dtype=torch.float32)
        tuner["h_window"] = window.tolist()
        extremes = torch.stack([window.min(), window.max()])
        if tuner["log_smooth"]:
            extremes = torch.log(extremes + EPS)
        averages = torch.tensor([tuner["h_min_avg"], tuner["h_max_avg"]], dtype=torch.float32)
        averages = averages * beta + (1.0 - beta) * extremes
        values = averages / self._debias()
        if tuner["log_smooth"]:
            values = torch.exp(values)
        (tuner["h_min_avg"], tuner["h_max_avg"]), (tuner["h_min"], tuner["h_max"]) = averages.tolist(), values.tolist()

    @torch.no_grad()
    def _variance(self, params: list[torch.Tensor]) -> float:
        """Algorithm 3: C = avg(‖g‖²) - ‖avg(g)‖², each debiased; avg(g) per parameter in self.state.
        Summed in float32, as in the authors' code (a numpy float32)."""
        beta, total = self.tuner["beta"], torch.zeros((), dtype=torch.float32)
        for p in params:
            avg = self.state[p].setdefault("yf_grad_avg", torch.zeros_like(p))
            avg.mul_(beta).add_(p.grad, alpha=1.0 - beta)
            total += torch.sum(avg * avg, dtype=torch.float64).item()
        total = total / -(self._debias() ** 2) + self.tuner["h_avg"] / self._debias()
        return max(total.item(), EPS)

    def _distance(self, h: float) -> float:
        """Algorithm 4: D = avg(avg(‖g‖) / (avg(‖g‖²) + EPS)), only the outer average debiased."""
        g_norm_avg = self._ema("g_norm_avg", math.sqrt(h))
        return self._ema("dist_avg", g_norm_avg / (self.tuner["h_avg"] + EPS)) / self._debias()

    def _tune(self, h: float, params: list[torch.Tensor]) -> None:
        """Update every estimate with this step's ‖g‖² = h; from t = 1 on, set the applied lr and μ."""
        tuner = self.tuner
        self._ema("h_avg", h)
        self._curvature_range(h)
        C = self._variance(params)
        D = self._distance(h)
        if tuner["t"] > 0:
            lr, tuner["mu"] = single_step(tuner["h_min"], tuner["h_max"], C, D)
            tuner["lr"] = min(lr, lr * (tuner["t"] + 1) / (SLOW_START * tuner["window"]))
        tuner.update(C=C, D=D)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        tuner, params = self.tuner, self._params()
        clip = tuner["adapt_clip"]
        h_max_before = tuner["h_max"]
        if clip and tuner["t"] > 1:  # protect the statistics from an exploding gradient
            torch.nn.utils.clip_grad_norm_(params, math.sqrt(STAT_PROTECT * h_max_before) + EPS)
        h = torch.stack([torch.sum(p.grad * p.grad, dtype=torch.float64) for p in params]).sum().item()
        self._tune(h, params)
        for group in self.param_groups:
            lr = tuner["lr"] * group["lr_scale"]
            if clip and lr * math.sqrt(h) >= CATASTROPHIC_MOVE:
                lr = CATASTROPHIC_MOVE / math.sqrt(h + EPS)
            group["lr"], group["momentum"] = lr, tuner["mu"]
        if clip and tuner["t"] >= 1 and h >= h_max_before:
            torch.nn.utils.clip_grad_norm_(params, math.sqrt(h_max_before) + EPS)
        super().step()
        tuner["t"] += 1
        return loss

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["yellowfin"] = {**self.tuner, "h_window": list(self.tuner["h_window"])}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        tuner = dict(state_dict.pop("yellowfin"))
        super().load_state_dict(state_dict)
        self.tuner = {**tuner, "h_window": list(tuner["h_window"])}
