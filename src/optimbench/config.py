"""Load, merge and validate the study's configuration (config.yaml + presets) against its schema, and check
what the config alone decides: names that exist, optimizers that build with their settings, pretrained
weights that load. Checks that need the plan's per-problem settings (sizes against the data, models at
their width) are optimbench.plan's; `python -m optimbench.plan --check FILES` runs both."""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import torch
import yaml

from optimbench.demon import demon_class
from optimbench.errors import ConfigError
from optimbench.hardware import choose_channels_last, cpu_flags, visible_device
from optimbench.optim import (
    DESCENT_DEVICE,
    OptimizerClassError,
    is_file_class,
    resolve_class,
    step_kind,
    step_once,
)
from optimbench.problems import PROBLEMS
from optimbench.resnet import PretrainedError, load_pretrained
from optimbench.specs import problem_train

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"


def deep_merge(base: dict, override: dict) -> dict:
    """Return base updated by override, recursing into dicts (lists and scalars are replaced)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml_file(path) -> dict:
    """One config file as a mapping; errors name the file (and the line where the parser knows it).

    An empty file is refused, as Snakemake refuses it as a --configfile.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {where}: not valid YAML ({problem}). Fix the YAML syntax there "
                          "(indentation, a missing ':' or an unclosed bracket or quote).") from None
    if loaded is None:
        raise ConfigError(f"config file {path} is empty: give it at least one key (e.g. `results_dir: ...`) "
                          "or leave it out")
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys (e.g. `train:`), "
                          f"not a {type(loaded).__name__}")
    return loaded


def load_yaml_files(paths) -> dict:
    """Merge YAML files left to right (later files override earlier ones); an optimizer's
    `class: path/file.py:Class` counts from the folder of the file that names it (absolute_class_files)."""
    config: dict = {}
    for path in paths:
        folder = Path(path).resolve().parent
        config = deep_merge(config, _absolute_classes(read_yaml_file(path), lambda name, value: folder))
    return config


def absolute_class_files(config: dict, files) -> dict:
    """`config` with every relative `optimizers.<name>.class: path/file.py:Class` made absolute, relative to
    the folder of the last of `files` that sets that value (the one that won the merge), else to the working
    directory (a value from Snakemake's --config). Snakemake merges its --configfile files itself, before
    the workflow's code runs: the workflow passes them here (workflow.configfiles)."""
    owners = {}
    for path in files:
        if Path(path).is_file():
            optimizers = read_yaml_file(path).get("optimizers")
            for name, entry in (optimizers.items() if isinstance(optimizers, dict) else ()):
                if isinstance(entry, dict) and isinstance(entry.get("class"), str):
                    owners[name, entry["class"]] = Path(path).resolve().parent
    return _absolute_classes(config, lambda name, value: owners.get((name, value), Path.cwd()))


def _absolute_classes(config: dict, folder) -> dict:
    """config with each relative file class made absolute against folder(name, value)."""
    config = copy.deepcopy(config)
    optimizers = config.get("optimizers")
    for name, entry in (optimizers.items() if isinstance(optimizers, dict) else ()):
        value = entry.get("class") if isinstance(entry, dict) else None
        if isinstance(value, str) and is_file_class(value) and not Path(value.rpartition(":")[0]).is_absolute():
            file, _, attr = value.rpartition(":")
            entry["class"] = f"{(folder(name, value) / file).resolve()}:{attr}"
    return config


def _with_defaults(validator_class):
    """A jsonschema validator that also fills in each property's `default` (as snakemake.utils.validate)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _describe(error: jsonschema.ValidationError) -> str:
    """One line naming the key, the bad value and the fix."""
    where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    hint = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        close = {k: difflib.get_close_matches(k, allowed, n=1) for k in extra}
        tips = "; ".join(f"did you mean {c[0]!r}?" for c in close.values() if c)
        return (f"unknown key(s) {extra} at {where}; allowed keys: {allowed}"
                + (f" ({tips})" if tips else ""))
    if error.validator == "type":
        quote = (f"; quote it, '{error.instance}': YAML reads an unquoted 0.1, 007, True or null as a number, a "
                 "boolean or nothing" if "string" in error.validator_value and not isinstance(error.instance,
                                                                                             (dict, list)) else "")
        return (f"{where} = {error.instance!r} has the wrong type: expected {error.validator_value}{quote}"
                + (f" ({hint.strip()})" if hint else ""))
    if error.validator == "enum":
        return f"{where} = {error.instance!r} is not one of {error.validator_value}"
    return f"{where} = {error.instance!r}: {error.message}" + (f" ({hint.strip()})" if hint else "")


def validate(config: dict, schema_path: Path = SCHEMA_PATH, build: bool = True) -> dict:
    """Fill defaults, check the schema and the cross-references; return the completed config.

    build: also build and step every optimizer and load the pretrained weights (build_checks): the checks
    whose cost grows with the optimizers table. False leaves them to the caller (optimbench.plan.cached_plan
    runs them only when its cached plan is missing or out of date; a job's re-parse not at all)."""
    config = copy.deepcopy(config)
    if isinstance(config.get("train"), dict) and "target_accuracy" in config["train"]:
        raise ConfigError(f"train.target_accuracy = {config['train']['target_accuracy']!r}: each test problem has its "
                          "own target now (accuracy, negative ELBO, perplexity). Remove the key and set "
                          "problem_settings.<problem>.target, e.g. "
                          "`problem_settings: {cifar10-resnet18: {target: 0.8}}`.")
    check_key_types(config)
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise ConfigError(f"invalid configuration:\n  {lines}\nFix these keys in config.yaml or your preset.")
    check_references(config)
    if build:
        build_checks(config)
    return config


def build_checks(config: dict) -> None:
    """The checks that build things: every optimizer the study runs, stepped once (check_optimizers), and the
    pretrained weights loaded (check_pretrained). Raises ConfigError as those."""
    check_optimizers(config)
    check_pretrained(config["train"])


NAMED_TABLES = ("optimizers", "problem_settings", "descent.methods", "tune.space")  # their keys are names


def check_key_types(config: dict) -> None:
    """Every key of a table of names (NAMED_TABLES) is a string: YAML reads an unquoted 0.1, 007 (as 7), True
    or null as a number, a boolean or None, which would lose the name ("007") or break the tables.

    Raises:
        ConfigError: naming the table, the key as YAML read it and the quoted form to write.
    """
    for where in NAMED_TABLES:
        table = config
        for part in where.split("."):
            table = table.get(part) if isinstance(table, dict) else None
        bad = [key for key in table or {} if not isinstance(key, str)] if isinstance(table, dict) else []
        if bad:
            read = ", ".join(f"{key!r} ({type(key).__name__})" for key in bad)
            raise ConfigError(f"{where}: YAML read key(s) {read}, not names; quote them (e.g. '{bad[0]}': ...; "
                              "YAML reads an unquoted 007 as 7 and True as a boolean)")


def _unknown(kind: str, name: str, where: str, known) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=1)
    tip = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r} in {where}; known: {sorted(known)}.{tip} "
                       f"Add it to the `optimizers` table or fix the name.")


def check_focus(config: dict) -> None:
    """report.focus (a name or a list) and report.baselines, when set, name optimizers the study trains
    (train.optimizers); no optimizer is both a focus one and a baseline."""
    report, trained = config["report"], config["train"]["optimizers"]
    focus = report.get("focus")
    for key, names in (("focus", [focus] if isinstance(focus, str) else focus or []),
                       ("baselines", report.get("baselines") or [])):
        for name in names:
            if name not in trained:
                close = difflib.get_close_matches(name, trained, n=1)
                shown = repr(name) if key == "baselines" or not isinstance(focus, str) else repr(focus)
                raise ConfigError(f"report.{key} = {shown} is not an optimizer of this study; train.optimizers = "
                                  f"{trained}." + (f" Did you mean {close[0]!r}?" if close else "")
                                  + f" Set report.{key} to one of them, add it to train.optimizers, or set it to null.")
    both = sorted(set([focus] if isinstance(focus, str) else focus or []) & set(report.get("baselines") or []))
    if both:
        raise ConfigError(f"report.baselines names {both}, also in report.focus: a focus optimizer (or variant) is "
                          "not a baseline. Remove it from report.baselines.")


def check_references(config: dict) -> None:
    """Names used in train/descent must exist, every optimizer class must import, and report.focus must name
    a trained optimizer (building and stepping them: build_checks)."""
    check_problems(config)
    check_focus(config)
    registry = config["optimizers"]
    for name in config["train"]["optimizers"]:
        if name not in registry:
            raise _unknown("optimizer", name, "train.optimizers", registry)
    for name, entry in registry.items():
        try:
            resolve_class(entry["class"])
        except OptimizerClassError as exc:
            raise ConfigError(f"optimizers.{name}.class = {entry['class']!r}: {exc}") from None
    methods = config["descent"]["methods"]
    for method_name, method in methods.items():
        if method["update"] == "momentum" and "momentum" not in method:
            raise ConfigError(f"descent.methods.{method_name} uses update: momentum but sets no `momentum`")
        if method["update"] == "vanilla" and "momentum" in method:
            raise ConfigError(f"descent.methods.{method_name}.momentum = {method['momentum']!r} with update: vanilla: "
                              "the vanilla update has no momentum. Use update: momentum, or drop `momentum`")
    names = [g["name"] for g in config["descent"]["groups"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"descent.groups names must be unique, got {names}")
    for group in config["descent"]["groups"]:
        for method in group["methods"]:
            if method not in methods and method not in registry:
                raise _unknown("descent method", method, f"descent.groups[{group['name']}].methods",
                               list(methods) + list(registry))
    check_ignored_settings(config)


def check_ignored_settings(config: dict) -> None:
    """Settings that would be accepted and never read are refused, each naming its key:
    - tune.space.<name> for a name not in the optimizers table (a typo, e.g. Adamm: its space never used);
    - a descent group's `tune` or `kwargs` where a method cannot take it: the article's hand-written methods
      (descent.methods) build no optimizer, so neither applies to them;
    - a descent group's `tune` with kwargs.lr: the search chooses the lr, so the given one would be dropped.
      Refused, not warned: no reading uses both (a search starting from that lr would be another setting).
    (descent.methods.<m>.momentum with update: vanilla is check_references'.)

    Raises:
        ConfigError: naming the key, the value and the fix.
    """
    registry = config["optimizers"]
    for name in config["tune"]["space"]:
        if name != "default" and name not in registry:
            close = ([n for n in registry if n.lower() == name.lower()]
                     or difflib.get_close_matches(name, list(registry), n=1))
            raise ConfigError(f"tune.space.{name}: {name!r} is not in the optimizers table, so this space would never "
                              f"be used. Name an optimizer ({sorted(registry)}) or `default`."
                              + (f" Did you mean {close[0]!r}?" if close else ""))
    hand_written = config["descent"]["methods"]
    for i, group in enumerate(config["descent"]["groups"]):
        where = f"descent.groups[{i}] ({group['name']})"
        article = [m for m in group["methods"] if m in hand_written]
        for key in ("tune", "kwargs"):
            if group.get(key) and article:
                raise ConfigError(f"{where}.{key} = {group[key]!r}: the article's hand-written methods {article} "
                                  f"(descent.methods) build no optimizer and would ignore it. Move them to a group "
                                  f"without `{key}`, or drop `{key}`")
        if group.get("tune") and "lr" in group.get("kwargs", {}):
            raise ConfigError(f"{where}.kwargs.lr = {group['kwargs']['lr']!r} with `tune`: the search chooses the lr "
                              f"among {group['tune']['trials']} values in [{group['tune']['low']}, "
                              f"{group['tune']['high']}], so this lr would never be used. Drop kwargs.lr, or drop "
                              "`tune` to run at that lr")


def check_problems(config: dict) -> None:
    """Every name in `problems` and every problem_settings key is a registered problem (settings of a known
    problem the study does not run are kept for other presets and ignored), and every target lies in its
    primary metric's range (accuracy in [0, 1], perplexity >= 1, negative ELBO >= 0)."""
    for i, name in enumerate(config["problems"]):
        if name not in PROBLEMS:
            close = difflib.get_close_matches(name, list(PROBLEMS), n=1)
            tip = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"problems[{i}] = {name!r} is not a known test problem; known: {list(PROBLEMS)}.{tip}")
    for name in config["problem_settings"]:
        if name not in PROBLEMS:
            close = difflib.get_close_matches(name, list(PROBLEMS), n=1)
            tip = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"problem_settings.{name}: {name!r} is not a known test problem; known: "
                              f"{list(PROBLEMS)}.{tip}")
        target = config["problem_settings"][name].get("target")
        metric = PROBLEMS[name].primary_metric
        if target is not None and not metric.low <= target <= metric.high:
            raise ConfigError(f"problem_settings.{name}.target = {target!r} is outside {metric.name}'s range "
                              f"[{metric.low}, {metric.high}]: it could never be reached. Give a value in that range"
                              + (" (accuracy is a fraction: 0.8, not 80)." if metric.name.endswith("_acc") else "."))


def _used_optimizers(config: dict):
    """(config key, registry name, kwargs overrides, job kind "train" or "descent") of every optimizer a job
    will build, once each."""
    seen = set()
    for name in config["train"]["optimizers"]:
        seen.add((name, "{}", "train"))
        yield f"optimizers.{name}.kwargs", name, {}, "train"
    for group in config["descent"]["groups"]:
        for name in group["methods"]:
            overrides = group.get("kwargs", {})
            key = (name, repr(sorted(overrides.items())), "descent")
            if name in config["optimizers"] and key not in seen:
                seen.add(key)
                where = f"descent.groups[{group['name']}].kwargs" if overrides else f"optimizers.{name}.kwargs"
                yield where, name, overrides, "descent"


def _unknown_kwargs(cls: type, kwargs: dict) -> dict[str, list[str]]:
    """Keyword arguments cls.__init__ does not name, each with the names it does. A catch-all **kwargs
    does not count: pytorch-optimizer's classes take one and silently ignore what lands there."""
    parameters = inspect.signature(cls.__init__).parameters
    valid = [name for name, p in parameters.items() if name not in ("self", "params")
             and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
    return {key: valid for key in kwargs if key not in valid}


@dataclass(frozen=True)
class Layout:
    """How a train job lays out its model's parameters, as the trainer resolves it (train.build_training):
    `memory_format` of its 4-D convolution weights ("contiguous", "channels_last"; None: no convolution), the
    study's problems trained so, and why (hardware.choose_channels_last's reason)."""

    memory_format: str | None
    problems: tuple[str, ...]
    reason: str = ""


@functools.cache
def _convolutional(problem: str) -> bool:
    """Whether the problem's model convolves images (train.is_convolutional), from the model at its test width
    (milliseconds; the layers do not depend on the width), the global random state left as it was."""
    with torch.random.fork_rng(devices=[]):
        model = PROBLEMS[problem].build_model(PROBLEMS[problem].test_width)
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def train_layouts(config: dict, device: torch.device | None) -> list[Layout]:
    """The layouts the study's train jobs on `device` will step in, each once, with the problems that use it:
    a convolutional model in channels-last where hardware.choose_channels_last says so for the job's device,
    width (None: the paper's size, counted as 64, as the trainer does) and this CPU's flags
    (train.layout_and_precision), else contiguous; other models have no 4-D weight. [None-layout] for a
    device this machine lacks (build only)."""
    if device is None:
        return [Layout(None, tuple(config["problems"]))]
    flags = cpu_flags() if device.type == "cpu" else frozenset()
    found: dict[tuple, list[str]] = {}
    for problem in config["problems"]:
        if not _convolutional(problem):
            found.setdefault((None, ""), []).append(problem)
            continue
        width = problem_train(config, problem)["width"] or 64
        choice = choose_channels_last(config["train"]["channels_last"], device.type, width, flags)
        fmt = "channels_last" if choice.on else "contiguous"
        found.setdefault((fmt, choice.reason), []).append(problem)
    return [Layout(fmt, tuple(problems), reason) for (fmt, reason), problems in found.items()]


def check_step(entry: dict, name: str, settings: dict, kind: str, device, where: dict,
               lr_schedule: str | None = None, note: str = "", layouts=(None,)) -> None:
    """step_once in each of `layouts` (train_layouts; descent: (None,)), or a ConfigError naming the key and
    value at fault and the optimizer's own message.

    where: {kwarg: the config key it comes from} for the keys of `settings`, and "" for the entry itself
    (e.g. "optimizers.Adam"). The culprit is the first keyword that fails on its own, else all of them.
    note: where the settings come from, added to the message (a tuning trial).
    An optimizer that steps contiguous convolution weights but not channels-last ones (one that flattens a
    parameter or its gradient with `.view()`, as pytorch_optimizer's AdamP, clovaai/AdamP#17) is refused with
    train.channels_last as the key: the study's layout is one setting for every optimizer, so that their
    seconds per epoch compare, and the user chooses it (off), not this check.

    Raises:
        ConfigError: naming key, value, class, the device and the job's kind, and the optimizer's message.
    """
    for layout in layouts:
        fmt = layout.memory_format if layout else None
        try:
            step_once(entry, settings, kind, device, lr_schedule, fmt)
        except Exception as exc:  # an optimizer's own checks raise ValueError, TypeError, RuntimeError, its own...
            if fmt == "channels_last" and not _fails(lambda s: step_once(entry, s, kind, device, lr_schedule,
                                                                         "contiguous"), settings):
                raise _layout_error(entry, name, layout, exc) from None
            raise _step_error(entry, name, settings, kind, device, where, lr_schedule, note, fmt, exc) from None


def _layout_error(entry: dict, name: str, layout: Layout, exc: Exception) -> ConfigError:
    """The ConfigError of an optimizer that steps contiguous convolution weights but not channels-last ones."""
    cls = resolve_class(entry["class"]).__name__
    return ConfigError(
        f"train.channels_last: the train jobs of {', '.join(layout.problems)} use channels-last ({layout.reason}), "
        f"and optimizer {name!r} ({cls}, class {entry['class']}) cannot step a convolution weight in channels-last: "
        f"{type(exc).__name__}: {str(exc).rstrip('.')}. It steps the same weight in the contiguous format, so it "
        "needs contiguous memory (typically a `.view()` of a parameter or gradient). Set train.channels_last: off "
        f"(every optimizer of the study then trains contiguous), or use an implementation of {cls} that calls "
        "`.reshape()`.")


def _step_error(entry, name, settings, kind, device, where, lr_schedule, note, fmt, exc) -> ConfigError:
    """The ConfigError of a step that fails whatever the layout: the culprit key, or the entry itself."""
    def attempt(s):
        step_once(entry, s, kind, device, lr_schedule, fmt)

    if _fails(attempt, {}):  # the class, `demon` or the schedule
        what = f"{where['']} = {entry!r}" + (f" with lr_schedule {lr_schedule!r}" if lr_schedule else "")
    else:
        culprit = next((key for key in settings if _fails(attempt, {key: settings[key]})), None)
        what = (f"{where[culprit]}.{culprit} = {settings[culprit]!r}" if culprit else
                f"{', '.join(sorted(set(where[k] for k in settings)))} = {settings!r}")
    on = DESCENT_DEVICE if kind == "descent" else device
    how = (f"built and stepped once on {on.type}" if on is not None else "built") + (f", {note}" if note else "")
    return ConfigError(f"{what} is refused by {resolve_class(entry['class']).__name__} ({entry['class']}) for "
                       f"optimizer {name!r} ({how}, as its {kind} jobs will): {type(exc).__name__}: {exc}")


def check_optimizers(config: dict) -> None:
    """Build every optimizer the study runs (train.optimizers; descent groups with their kwargs), with its
    schedules (train.lr_schedule, Demon), on a dummy problem and take one step the way its jobs will
    (step_once), on the device they will use (hardware.resolve_device of train.device; descent: the CPU;
    a device this machine lacks: built only), in the layouts their models will have (train_layouts) and this
    process's default dtype: a misspelt or invalid keyword, or one that builds and fails at the first step
    (Adam's capturable on the CPU, AdamP's `.view()` of a channels-last weight), stops here, before any job."""
    device = visible_device(config["train"]["device"])
    layouts = train_layouts(config, device)
    for where, name, overrides, kind in _used_optimizers(config):
        entry = config["optimizers"][name]
        cls = resolve_class(entry["class"])
        cls = demon_class(cls) if entry.get("demon") else cls  # the class build_optimizer builds
        compiled = config["train"]["compile"] not in ("auto", "off") and kind == "train"
        if compiled and isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and step_kind(cls)[1]:
            raise ConfigError(f"train.compile = {config['train']['compile']!r} cannot train optimizer {name!r} "
                              f"({entry['class']}): it needs the gradients' graph (double backward), which "
                              "torch.compile's graphs do not support. Use train.compile: auto or off.")
        kwargs = {**entry.get("kwargs", {}), **overrides}
        for key, valid in _unknown_kwargs(cls, kwargs).items():
            close = difflib.get_close_matches(key, valid, n=1)
            tip = f" Did you mean {close[0]!r}?" if close else ""
            owner = where if key in overrides else f"optimizers.{name}.kwargs"
            raise ConfigError(f"{owner}.{key}: {cls.__name__} ({entry['class']}) takes no argument {key!r}; "
                              f"its arguments: {valid}.{tip}")
        keys = {key: where if key in overrides else f"optimizers.{name}.kwargs" for key in kwargs}
        check_step(entry, name, kwargs, kind, device, {"": f"optimizers.{name}", **keys},
                   config["train"]["lr_schedule"] if kind == "train" else None,
                   layouts=layouts if kind == "train" else (None,))


def _fails(attempt, settings: dict) -> bool:
    try:
        attempt(settings)
    except Exception:
        return True
    return False


def check_pretrained(train: dict) -> None:
    """train.pretrained: only for the article model at width 64, and a file that loads as its backbone."""
    if not train["pretrained"]:
        return
    if train["model"] != "resnet18_article" or train["width"] != 64:
        raise ConfigError("train.pretrained needs train.model: resnet18_article and train.width: 64 "
                          f"(got {train['model']}, width {train['width']})")
    try:
        load_pretrained(train["pretrained"])
    except PretrainedError as exc:
        raise ConfigError(str(exc)) from None


def load(paths) -> dict:
    """Read, merge and validate config files (e.g. config.yaml then a preset)."""
    return validate(load_yaml_files(paths))
