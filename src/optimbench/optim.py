"""The optimizer registry: a config entry (class name or dotted path + kwargs) → a torch optimizer,
plus the per-step schedules that go with it (learning rate, Demon's momentum decay)."""

from __future__ import annotations

import importlib
import math

import torch


# Short names beyond torch.optim: maintained implementations where they exist (pytorch-optimizer;
# its ASGD is another method than torch.optim.ASGD, the article's, which keeps the name), this
# project's where none does.
SHORT_NAMES = {
    "QHM": "pytorch_optimizer.QHM",
    "QHAdam": "pytorch_optimizer.QHAdam",
    "AggMo": "pytorch_optimizer.AggMo",
    "YellowFin": "optimbench.yellowfin.YellowFin",
    "DemonAdam": "optimbench.demon.DemonAdam",
    "DemonAdamEMA": "optimbench.demon.DemonAdamEMA",
}


def resolve_class(name: str) -> type:
    """`SGD` → torch.optim.SGD; `QHM` → pytorch_optimizer.QHM (SHORT_NAMES); `package.module.Class` → that."""
    if "." not in name:
        if hasattr(torch.optim, name):
            return getattr(torch.optim, name)
        if name not in SHORT_NAMES:
            raise AttributeError(f"{name!r} is neither a torch.optim optimizer nor one of {sorted(SHORT_NAMES)}")
        name = SHORT_NAMES[name]
    module_name, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def build_optimizer(entry: dict, params, overrides: dict | None = None) -> torch.optim.Optimizer:
    """An optimizer over params from a registry entry {class, kwargs, demon}, kwargs updated by overrides.
    With demon: true, class Adam runs the Demon paper's Algorithm 2 (optimbench.demon.DemonAdam)."""
    from optimbench.demon import demon_class

    kwargs = {**entry.get("kwargs", {}), **(overrides or {})}
    # YAML and JSON have lists where optimizers expect tuples (betas, nus): some check the type.
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
    cls = resolve_class(entry["class"])
    if entry.get("demon"):
        cls = demon_class(cls)
        if kwargs.get("amsgrad"):
            raise ValueError(f"class: {entry['class']} with demon: true and amsgrad: true: the Demon paper's "
                             "Adam (Algorithm 2) has no AMSGrad; drop one of them")
    return cls(params, **kwargs)


LR_SCHEDULES = (None, "linear", "cosine", "warmup-cosine")
WARMUP_SHARE = 0.05  # warmup-cosine: linear warm-up over the first 5% of the steps


def warmup_steps(total_steps: int) -> int:
    return max(1, round(WARMUP_SHARE * total_steps))


def lr_lambda(schedule: str | None, total_steps: int):
    """Multiplier of the base lr at step t (None → constant): the formulas the torch schedulers of
    `lr_scheduler` follow, for optimizers that scale their own lr (LrScale) and for tests."""
    if schedule is None:
        return lambda t: 1.0
    if schedule == "linear":
        return lambda t: max(0.0, 1.0 - t / total_steps)
    if schedule == "cosine":
        return lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total_steps) / total_steps))
    if schedule == "warmup-cosine":
        warm = warmup_steps(total_steps)
        return lambda t: ((t + 1) / (warm + 1) if t < warm else
                          0.5 * (1.0 + math.cos(math.pi * min(t - warm, total_steps - warm) / max(1, total_steps - warm))))
    raise ValueError(f"unknown lr_schedule {schedule!r}; use null, linear, cosine or warmup-cosine")


def lr_scheduler(schedule: str | None, optimizer: torch.optim.Optimizer, total_steps: int):
    """The schedule as torch.optim.lr_scheduler classes, stepped once per optimizer step:
    linear = LinearLR to 0; cosine = CosineAnnealingLR to 0; warmup-cosine = LinearLR warm-up over
    WARMUP_SHARE of the steps, then CosineAnnealingLR (SequentialLR); None = ConstantLR at factor 1."""
    sched = torch.optim.lr_scheduler
    if schedule is None:
        return sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if schedule == "linear":
        return sched.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=total_steps)
    if schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=0.0)
    if schedule == "warmup-cosine":
        warm = warmup_steps(total_steps)
        return sched.SequentialLR(optimizer, [
            sched.LinearLR(optimizer, start_factor=1 / (warm + 1), end_factor=1.0, total_iters=warm),
            sched.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warm), eta_min=0.0)], milestones=[warm])
    raise ValueError(f"unknown lr_schedule {schedule!r}; use null, linear, cosine or warmup-cosine")


class LrScale:
    """The lr schedule for optimizers that set their own lr every step (YellowFin): writes the
    multiplier lr_lambda(t) into each group's `lr_scale`, which the optimizer applies to its tuned lr
    (the authors' YellowFin calls it lr_factor). A scheduler's interface: step, state_dict, load_state_dict."""

    def __init__(self, optimizer: torch.optim.Optimizer, multiplier):
        self.optimizer, self.multiplier, self.t = optimizer, multiplier, 0
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr_scale"] = self.multiplier(self.t)

    def step(self) -> None:
        self.t += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.t = state["t"]
        self._apply()


def schedules(entry: dict, optimizer: torch.optim.Optimizer, lr_schedule: str | None, total_steps: int) -> list:
    """What steps after each optimizer step: the learning-rate schedule, and Demon when the entry asks."""
    from optimbench.demon import DemonSchedule

    tunes_own_lr = all("lr_scale" in group for group in optimizer.param_groups)
    steps = [LrScale(optimizer, lr_lambda(lr_schedule, total_steps)) if tunes_own_lr
             else lr_scheduler(lr_schedule, optimizer, total_steps)]
    if entry.get("demon"):
        steps.append(DemonSchedule(optimizer, total_steps))
    return steps
