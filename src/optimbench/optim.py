"""The optimizer registry: a config entry (class name or dotted path + kwargs) → a torch optimizer."""

from __future__ import annotations

import importlib
import math

import torch


def resolve_class(name: str) -> type:
    """`SGD` → torch.optim.SGD; `package.module.Class` → that class."""
    if "." not in name:
        if hasattr(torch.optim, name):
            return getattr(torch.optim, name)
        raise AttributeError(f"torch.optim has no optimizer {name!r}")
    module_name, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def build_optimizer(entry: dict, params, overrides: dict | None = None) -> torch.optim.Optimizer:
    """An optimizer over params from a registry entry {class, kwargs}, kwargs updated by overrides."""
    kwargs = {**entry.get("kwargs", {}), **(overrides or {})}
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
