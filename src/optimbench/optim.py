"""The optimizer registry: a config entry (class name, dotted path or `file.py:Class`, + kwargs) → a torch
optimizer, the fingerprint of the code behind it (code_fingerprint), plus the per-step schedules that go with
it (learning rate, Demon's momentum decay)."""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import math
import os
import re
import sys
import warnings
from pathlib import Path

import torch

from optimbench import provenance
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


FILE_CLASS = re.compile(r"^(?P<path>.+\.py):(?P<attr>[A-Za-z_][A-Za-z0-9_]*)$")  # `path/to/file.py:ClassName`
PLUGIN_PREFIX = "optimbench_plugin_"  # the module name a plug-in file is loaded under (+ its stem and path hash)
CLASS_HELP = ("use a torch.optim class name (e.g. SGD), one of optimbench's short names, a dotted path "
              "`module.Class` importable from the study's working directory or installed, or "
              "`path/to/file.py:Class` (relative to the config file that names it)")


class OptimizerClassError(ValueError):
    """An optimizer `class` value that cannot give an optimizer class; the message names the value and the fix
    (the config check adds the key)."""


def is_file_class(name: str) -> bool:
    """Whether a `class` value names a class in a Python file (`path/to/file.py:ClassName`)."""
    return bool(FILE_CLASS.match(name))


def resolve_class(name: str) -> type:
    """The optimizer class a config's `class` value names: `SGD` → torch.optim.SGD; `QHM` →
    pytorch_optimizer.QHM (SHORT_NAMES); `package.module.Class` → that class, the module imported as
    installed or, failing that, from the current working directory (the study's: every job runs there);
    `path/to/file.py:Class` → that class of that file (a relative path counts from the working directory;
    config.load makes it absolute, relative to the config file that names it).

    Raises:
        OptimizerClassError: a missing file or module, a syntax error in it (file:line), no such class, or
        a class that is not a torch.optim.Optimizer subclass; the message names the value and the fix.
    """
    if "." not in name:
        if hasattr(torch.optim, name):
            return getattr(torch.optim, name)
        if name not in SHORT_NAMES:
            raise OptimizerClassError(f"{name!r} is neither a torch.optim optimizer nor one of "
                                      f"{sorted(SHORT_NAMES)}; {CLASS_HELP}")
        name = SHORT_NAMES[name]
    match = FILE_CLASS.match(name)
    if match:
        module, attr = _file_module(Path(match["path"])), match["attr"]
    else:
        module_name, _, attr = name.rpartition(".")
        module = _import_module(module_name)
    cls = getattr(module, attr, None)
    if cls is None:
        found = sorted(k for k, v in vars(module).items() if isinstance(v, type)
                       and issubclass(v, torch.optim.Optimizer) and v.__module__ == module.__name__)
        raise OptimizerClassError(f"{_where(module)} has no class {attr!r} (its optimizer classes: {found or 'none'}); "
                                  "fix the name after the last '.' or ':'")
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise OptimizerClassError(f"{attr} in {_where(module)} is not a torch.optim.Optimizer subclass "
                                  f"(it is {cls!r}); an optimizer plug-in subclasses torch.optim.Optimizer and "
                                  "implements step()")
    return cls


def _where(module) -> str:
    """A plug-in file by its path, a module by its name."""
    return module.__file__ if module.__name__.startswith(PLUGIN_PREFIX) else f"module {module.__name__}"


def _syntax_error(exc: SyntaxError) -> OptimizerClassError:
    return OptimizerClassError(f"{exc.filename}:{exc.lineno}: syntax error ({exc.msg}); fix the file")


def _import_module(module_name: str):
    """The module, imported as installed, else from the working directory (put on sys.path for it)."""
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        raise _syntax_error(exc) from None
    except ModuleNotFoundError as exc:
        top = module_name.split(".")[0]
        cwd = os.getcwd()
        local = Path(cwd, f"{top}.py").is_file() or Path(cwd, top, "__init__.py").is_file()
        if exc.name is None or not module_name.startswith(exc.name) or not local or cwd in sys.path:
            raise OptimizerClassError(f"no module named {exc.name!r} (not installed, and no {top}.py or {top}/ in "
                                      f"the working directory {cwd}); {CLASS_HELP}") from None
    except Exception as exc:  # the module's own code failed
        raise OptimizerClassError(f"module {module_name} fails on import: {type(exc).__name__}: {exc}; "
                                  "fix the module") from None
    sys.path.insert(0, cwd)  # as `python -m` does: the study's own modules import each other too
    return _import_module(module_name)


def _file_module(path: Path):
    """The module of a Python file, loaded once per file under a name derived from its absolute path."""
    path = path.resolve()
    if not path.is_file():
        raise OptimizerClassError(f"the file {path} does not exist; give the path of a .py file relative to the "
                                  "config file that names it (or absolute)")
    module_name = f"{PLUGIN_PREFIX}{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    source = path.read_bytes()  # read once: what runs is what is hashed (an edit meanwhile changes neither)
    module.__optimbench_sha256__ = hashlib.sha256(source).hexdigest()[:16]
    sys.modules[module_name] = module  # before exec: dataclasses and pickling look the module up
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise _syntax_error(exc) from None
    except Exception as exc:
        del sys.modules[module_name]
        raise OptimizerClassError(f"{path} fails on import: {type(exc).__name__}: {exc}; fix the file") from None
    return module


# ---------------------------------------------------------------- the code behind a class
def code_fingerprint(name: str, demon: bool = False) -> dict:
    """What identifies the code that decides an optimizer's numbers (a run's result spec carries it):
    torch.optim classes → {"torch": version}; this project's (YellowFin, Demon) → {"module", "sha256"} of
    their module's source; an installed package's → {"package", "version"} (importlib.metadata), plus "sha256"
    of its sources when installed from a folder (`pip install -e`: provenance.package_code); a class
    from a file or a local module → {"file": its file name, "sha256": the source it was loaded from}. Only the file
    that defines the class is hashed, not the modules it imports. demon: true adds optimbench.demon's hash.

    Raises:
        OptimizerClassError: as resolve_class.
    """
    module = sys.modules[resolve_class(name).__module__]
    code = _module_fingerprint(module)
    if demon:
        code["demon"] = provenance.source_hash(sys.modules[demon_class.__module__].__file__)
    return code


def _module_fingerprint(module) -> dict:
    top = module.__name__.split(".")[0]
    if top == "torch":
        return {"torch": torch.__version__}
    if top == "optimbench":
        return {"module": module.__name__, "sha256": provenance.source_hash(module.__file__)}
    dists = _distributions().get(top)
    if dists and not module.__name__.startswith(PLUGIN_PREFIX):
        return provenance.package_code(dists[0], top)
    return {"file": Path(module.__file__).name, "sha256": provenance.source_hash(module.__file__)}


class CodeChanged(RuntimeError):
    """The code a job imports is not the code its spec's fingerprint names; the message names both."""


def verify_code(entry: dict) -> None:
    """Check that the optimizer code this process imported has the fingerprint the run's spec carries
    (entry["code"], taken when the study was planned): an edit between planning and running would publish
    the edited code's numbers under the original's key. Nothing to check for an entry without `code`.

    Raises:
        CodeChanged: naming the class, its file or package, and both fingerprints.
    """
    planned = entry.get("code")
    if not planned:
        return
    running = code_fingerprint(entry["class"], bool(entry.get("demon")))
    module = sys.modules[resolve_class(entry["class"]).__module__]
    if hasattr(module, "__optimbench_sha256__"):  # a plug-in file: the bytes this process executed
        running["sha256"] = module.__optimbench_sha256__
    if running != planned:
        where = module.__file__ if module.__name__.startswith(PLUGIN_PREFIX) else f"module {module.__name__}"
        raise CodeChanged(f"the optimizer code changed since the study was planned: {where} ({entry['class']}) "
                          f"has fingerprint {json.dumps(running, sort_keys=True)} now, the run's spec "
                          f"{json.dumps(planned, sort_keys=True)}; run the study again to plan its runs anew")


@functools.cache
def _distributions() -> dict:
    """{top-level module: [distribution names]} of the installed packages (read once per process)."""
    return importlib.metadata.packages_distributions()




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
