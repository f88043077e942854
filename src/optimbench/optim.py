"""The optimizer registry: a config entry (class name or dotted path + kwargs) → a torch optimizer,
plus the per-step schedules that go with it (learning rate, Demon's momentum decay)."""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import warnings

import torch

from optimbench.demon import DemonSchedule, demon_class

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
                          0.5 * (1.0 + math.cos(math.pi * min(t - warm, total_steps - warm)
                                                / max(1, total_steps - warm))))
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
    tunes_own_lr = all("lr_scale" in group for group in optimizer.param_groups)
    steps = [LrScale(optimizer, lr_lambda(lr_schedule, total_steps)) if tunes_own_lr
             else lr_scheduler(lr_schedule, optimizer, total_steps)]
    if entry.get("demon"):
        steps.append(DemonSchedule(optimizer, total_steps))
    return steps


# ---------------------------------------------------------------- how an optimizer steps
def step_kind(optimizer: torch.optim.Optimizer | type) -> tuple[bool, bool]:
    """(needs_closure, needs_create_graph) of an optimizer or its class, read from its `step` signature.

    needs_closure: `step(closure)` without a default (torch.optim.LBFGS): the optimizer re-evaluates the
    loss and gradient itself, several times per step.
    needs_create_graph: `step(closure, hessian=...)` (pytorch_optimizer's AdaHessian, SophiaH): it
    estimates the Hessian diagonal from Hessian-vector products of the gradients (Hutchinson), so the
    gradients must keep their graph (`backward(create_graph=True)`). Its random probe vectors come from
    the global torch (or CUDA) generator, whose state every checkpoint saves.
    """
    return _step_kind(optimizer if isinstance(optimizer, type) else type(optimizer))


@functools.cache
def _step_kind(cls: type) -> tuple[bool, bool]:
    parameters = inspect.signature(cls.step).parameters
    closure = parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty, "hessian" in parameters


def optimizer_step(optimizer: torch.optim.Optimizer, compute_gradients) -> None:
    """One optimizer step, whatever the optimizer needs (see step_kind).

    compute_gradients(create_graph) sets every parameter's `.grad` (with its graph when create_graph)
    and returns the loss; it runs once per step, or as often as a closure-based optimizer asks.
    """
    needs_closure, create_graph = step_kind(optimizer)

    def closure():
        optimizer.zero_grad(set_to_none=True)  # also breaks the parameter ↔ graph-holding-gradient cycle
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")
            loss = compute_gradients(create_graph)
        if needs_closure:  # LBFGS flattens gradients with .view(-1), which channels-last gradients refuse
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None and not p.grad.is_contiguous():
                        p.grad = p.grad.contiguous()
        return loss

    if needs_closure:
        optimizer.step(closure)
    else:
        closure()
        optimizer.step()
