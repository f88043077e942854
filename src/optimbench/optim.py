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
    """An optimizer over params from a registry entry {class, kwargs}, kwargs updated by overrides."""
    kwargs = {**entry.get("kwargs", {}), **(overrides or {})}
    # YAML and JSON have lists where optimizers expect tuples (betas, nus): some check the type.
    kwargs = {key: tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}
    return resolve_class(entry["class"])(params, **kwargs)


def lr_lambda(schedule: str | None, total_steps: int):
    """Multiplier of the base lr at step t (None → constant)."""
    if schedule is None:
        return lambda t: 1.0
    if schedule == "linear":
        return lambda t: max(0.0, 1.0 - t / total_steps)
    if schedule == "cosine":
        return lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total_steps) / total_steps))
    raise ValueError(f"unknown lr_schedule {schedule!r}; use null, linear or cosine")


def schedules(entry: dict, optimizer: torch.optim.Optimizer, lr_schedule: str | None, total_steps: int) -> list:
    """What steps after each optimizer step: the learning-rate schedule, and Demon when the entry asks."""
    from optimbench.demon import DemonSchedule

    steps = [torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(lr_schedule, total_steps))]
    if entry.get("demon"):
        steps.append(DemonSchedule(optimizer, total_steps))
    return steps
