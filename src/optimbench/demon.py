"""Demon: decaying momentum (Chen et al., "Demon: Improved Neural Network Training with Momentum Decay",
arXiv 1910.04952). No maintained PyTorch package has it, so it lives here once.

The schedule: before step t of T (t = 0, 1, ...),

    β_t = β_init · (1 - t/T) / ((1 - β_init) + β_init · (1 - t/T))

so β_0 = β_init, β_{T/2} = β_init / (2 - β_init) and β_T = 0. `DemonSchedule` writes β_t into an
optimizer's momentum (`momentum`, SGD-style) or first-moment coefficient (`betas[0]`) before every step.

- Demon SGDM (Algorithm 1) = torch.optim.SGD + the schedule: buf ← β_t·buf + g; θ ← θ - η·buf.
- Demon Adam (Algorithm 2) = `DemonAdam` + the schedule: the first moment accumulates the gradients,
  m_t = g_t + β_t·m_{t-1}, instead of Adam's average β·m + (1-β)·g.
- `DemonAdamEMA`: β_t swapped into torch's Adam (m_t = β_t·m_{t-1} + (1-β_t)·g_t, bias correction
  1 - β_t^t): not the paper's algorithm; kept, under its own name, because earlier runs used it.
"""

from __future__ import annotations

import torch

from optimbench.yellowfin import YellowFin


def demon_beta(beta_init: float, t: int, total_steps: int) -> float:
    """The Demon momentum at step t of total_steps."""
    remaining = max(0.0, 1.0 - t / total_steps)
    return beta_init * remaining / ((1.0 - beta_init) + beta_init * remaining)


class DemonAdam(torch.optim.Optimizer):
    """Demon Adam, Algorithm 2 of Chen et al.: per parameter, at step t = 1, 2, ... with β_t = betas[0]
    (which DemonSchedule decays; constant β_init without it),

        m_t = g_t + β_t·m_{t-1},   v_t = β2·v_{t-1} + (1 - β2)·g_t²,
        θ_t = θ_{t-1} - η · m̂_t / (√v̂_t + ε),   m̂_t = m_t / (1 - β_init^t),   v̂_t = v_t / (1 - β2^t).

    Algorithm 2's update reads θ_t = θ_{t-1} - η·m̂_t/(√v̂_t + ε) (as transcribed on Papers with Code;
    the paper's own text could not be consulted here) without spelling out the hats; we take Adam's
    (Kingma & Ba) bias corrections with β1 = β_init, a reading to revisit against the paper. m_t sums
    the gradients, so a steady gradient moves θ by up to η/(1-β_init) per step, 10× Adam's at 0.9.
    weight_decay adds weight_decay·θ to g_t (L2, as torch.optim.Adam; 0 in the paper).
    Written here because no maintained package implements Algorithm 2.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        betas = tuple(betas)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"DemonAdam needs 0 ≤ betas < 1, got {betas}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "beta_init": betas[0]})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            (beta_t, beta2), beta_init = group["betas"], group["beta_init"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if group["weight_decay"] == 0 else p.grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                state["step"] += 1
                t = state["step"]
                state["m"].mul_(beta_t).add_(grad)
                state["v"].mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                denom = (state["v"] / (1.0 - beta2**t)).sqrt_().add_(group["eps"])
                p.addcdiv_(state["m"], denom, value=-group["lr"] / (1.0 - beta_init**t))
        return loss


class DemonAdamEMA(torch.optim.Adam):
    """torch.optim.Adam under its own name, for `demon: true` runs that decay β1 inside Adam's moving
    average (m_t = β_t·m_{t-1} + (1-β_t)·g_t, torch's bias correction 1 - β_t^t): the variant this
    project ran as "Demon Adam" before Algorithm 2 (`DemonAdam`). Not an algorithm of the paper."""


def demon_class(cls: type) -> type:
    """The class that runs the Demon paper's algorithm for a registry class with demon: true:
    torch.optim.Adam → DemonAdam (Algorithm 2); any other class as it is (DemonSchedule checks it)."""
    return DemonAdam if cls is torch.optim.Adam else cls


def check_demon_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """ValueError unless Demon's schedule means something on this optimizer: a `momentum` it applies
    (SGD: Algorithm 1), DemonAdam (Algorithm 2) or DemonAdamEMA; not YellowFin (it tunes its own)."""
    name = type(optimizer).__name__
    if isinstance(optimizer, YellowFin):
        raise ValueError("demon: true on YellowFin: YellowFin tunes its momentum itself; set demon: false")
    groups = optimizer.param_groups
    if any("betas" in group for group in groups) and not isinstance(optimizer, (DemonAdam, DemonAdamEMA)):
        raise ValueError(f"demon: true on {name}: the Demon paper's Adam (Algorithm 2) is class: Adam with "
                         "demon: true; for β1 decayed inside torch's Adam use class: DemonAdamEMA")
    if not all("betas" in group or "momentum" in group for group in groups):
        raise ValueError(f"Demon needs an optimizer with `momentum` (SGD-style) or `betas` (Adam-style); "
                         f"{name} has neither")


class DemonSchedule:
    """Decays the momentum of an optimizer's parameter groups step by step; call step() after each
    optimizer.step(). Its state (the step count) goes into checkpoints like a scheduler's."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int):
        if total_steps < 1:
            raise ValueError(f"Demon needs the total number of steps (≥ 1), got {total_steps}")
        check_demon_optimizer(optimizer)
        self.optimizer, self.total_steps, self.t = optimizer, total_steps, 0
        self.beta_init = [self._key_and_beta(group)[1] for group in optimizer.param_groups]
        self._apply()

    @staticmethod
    def _key_and_beta(group: dict) -> tuple[str, float]:
        if "betas" in group:
            return "betas", float(group["betas"][0])
        return "momentum", float(group["momentum"])

    def _apply(self) -> None:
        for group, beta_init in zip(self.optimizer.param_groups, self.beta_init):
            beta = demon_beta(beta_init, self.t, self.total_steps)
            key, _ = self._key_and_beta(group)
            if key == "betas":
                group["betas"] = (beta, *tuple(group["betas"])[1:])
            else:
                group["momentum"] = beta

    def step(self) -> None:
        self.t += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"t": self.t, "total_steps": self.total_steps, "beta_init": self.beta_init}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.total_steps, self.beta_init = state["t"], state["total_steps"], state["beta_init"]
        self._apply()
