"""Demon: decaying momentum (Chen et al., "Demon: Improved Neural Network Training with Momentum Decay").

No maintained PyTorch package has it, so it lives here once, as a schedule over any momentum optimizer:
it sets the momentum (`momentum`, SGD-style) or the first moment (`betas[0]`, Adam-style) of every
parameter group before each step t of T:

    β_t = β_init · (1 - t/T) / ((1 - β_init) + β_init · (1 - t/T))

so β_0 = β_init, β_{T/2} = β_init / (2 - β_init) and β_T = 0. Demon SGDM = SGD + this schedule;
Demon Adam = Adam + this schedule.
"""

from __future__ import annotations

import torch


def demon_beta(beta_init: float, t: int, total_steps: int) -> float:
    """The Demon momentum at step t of total_steps."""
    remaining = max(0.0, 1.0 - t / total_steps)
    return beta_init * remaining / ((1.0 - beta_init) + beta_init * remaining)


class DemonSchedule:
    """Decays the momentum of an optimizer's parameter groups step by step; call step() after each
    optimizer.step(). Its state (the step count) goes into checkpoints like a scheduler's."""

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int):
        if total_steps < 1:
            raise ValueError(f"Demon needs the total number of steps (≥ 1), got {total_steps}")
        self.optimizer, self.total_steps, self.t = optimizer, total_steps, 0
        self.beta_init = [self._key_and_beta(group)[1] for group in optimizer.param_groups]
        self._apply()

    @staticmethod
    def _key_and_beta(group: dict) -> tuple[str, float]:
        if "betas" in group:
            return "betas", float(group["betas"][0])
        if "momentum" in group:
            return "momentum", float(group["momentum"])
        raise ValueError("Demon needs an optimizer with `momentum` (SGD-style) or `betas` (Adam-style)")

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
