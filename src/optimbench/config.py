"""Load, merge and validate the study's configuration (config.yaml + presets) against its schema, and check
what the config alone decides: names that exist, optimizers that build with their settings, pretrained
weights that load. Checks that need the plan's per-problem settings (sizes against the data, models at
their width) are optimbench.plan's; `python -m optimbench.plan --check FILES` runs both."""

from __future__ import annotations

import copy
import difflib
import inspect
from pathlib import Path

import jsonschema
import torch
import yaml

from optimbench.demon import demon_class
from optimbench.errors import ConfigError
from optimbench.optim import build_optimizer, resolve_class, schedules, step_kind
from optimbench.problems import PROBLEMS
from optimbench.resnet import PretrainedError, load_pretrained

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
    """Merge YAML files left to right (later files override earlier ones)."""
    config: dict = {}
    for path in paths:
        config = deep_merge(config, read_yaml_file(path))
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
        return (f"{where} = {error.instance!r} has the wrong type: expected {error.validator_value}"
                + (f" ({hint.strip()})" if hint else ""))
    if error.validator == "enum":
        return f"{where} = {error.instance!r} is not one of {error.validator_value}"
    return f"{where} = {error.instance!r}: {error.message}" + (f" ({hint.strip()})" if hint else "")


def validate(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Fill defaults, check the schema and the cross-references; return the completed config."""
    config = copy.deepcopy(config)
    if isinstance(config.get("train"), dict) and "target_accuracy" in config["train"]:
        raise ConfigError(f"train.target_accuracy = {config['train']['target_accuracy']!r}: each test problem has its "
                          "own target now (accuracy, negative ELBO, perplexity). Remove the key and set "
                          "problem_settings.<problem>.target, e.g. "
                          "`problem_settings: {cifar10-resnet18: {target: 0.8}}`.")
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise ConfigError(f"invalid configuration:\n  {lines}\nFix these keys in config.yaml or your preset.")
    check_references(config)
    return config


def _unknown(kind: str, name: str, where: str, known) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=1)
    tip = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r} in {where}; known: {sorted(known)}.{tip} "
                       f"Add it to the `optimizers` table or fix the name.")


def check_references(config: dict) -> None:
    """Names used in train/descent must exist, every optimizer must build with its settings and the
    pretrained weights must load."""
    check_problems(config)
    registry = config["optimizers"]
    for name in config["train"]["optimizers"]:
        if name not in registry:
            raise _unknown("optimizer", name, "train.optimizers", registry)
    for name, entry in registry.items():
        try:
            resolve_class(entry["class"])
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"optimizers.{name}.class = {entry['class']!r} cannot be imported ({exc}). "
                              "Use a torch.optim class name (e.g. SGD) or a dotted path module.Class.") from exc
    methods = config["descent"]["methods"]
    for method_name, method in methods.items():
        if method["update"] == "momentum" and "momentum" not in method:
            raise ConfigError(f"descent.methods.{method_name} uses update: momentum but sets no `momentum`")
    names = [g["name"] for g in config["descent"]["groups"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"descent.groups names must be unique, got {names}")
    for group in config["descent"]["groups"]:
        for method in group["methods"]:
            if method not in methods and method not in registry:
                raise _unknown("descent method", method, f"descent.groups[{group['name']}].methods",
                               list(methods) + list(registry))
    check_optimizers(config)
    check_pretrained(config["train"])


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
    """(config key, registry name, kwargs overrides) of every optimizer a job will build, once each."""
    seen = set()
    for name in config["train"]["optimizers"]:
        seen.add((name, "{}"))
        yield f"optimizers.{name}.kwargs", name, {}
    for group in config["descent"]["groups"]:
        for name in group["methods"]:
            overrides = group.get("kwargs", {})
            key = (name, repr(sorted(overrides.items())))
            if name in config["optimizers"] and key not in seen:
                seen.add(key)
                where = f"descent.groups[{group['name']}].kwargs" if overrides else f"optimizers.{name}.kwargs"
                yield where, name, overrides


def _unknown_kwargs(cls: type, kwargs: dict) -> dict[str, list[str]]:
    """Keyword arguments cls.__init__ does not name, each with the names it does. A catch-all **kwargs
    does not count: pytorch-optimizer's classes take one and silently ignore what lands there."""
    parameters = inspect.signature(cls.__init__).parameters
    valid = [name for name, p in parameters.items() if name not in ("self", "params")
             and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)]
    return {key: valid for key in kwargs if key not in valid}


def check_optimizers(config: dict) -> None:
    """Build every optimizer the study runs (train.optimizers; descent groups with their kwargs), with its
    schedules (Demon), on a dummy parameter: a misspelt or invalid keyword stops here, before any job."""
    for where, name, overrides in _used_optimizers(config):
        entry = config["optimizers"][name]
        cls = resolve_class(entry["class"])
        cls = demon_class(cls) if entry.get("demon") else cls  # the class build_optimizer builds
        compiled = config["train"]["compile"] not in ("auto", "off") and name in config["train"]["optimizers"]
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

        def build(settings: dict) -> None:
            optimizer = build_optimizer({**entry, "kwargs": {}}, [torch.zeros(2, requires_grad=True)], settings)
            schedules(entry, optimizer, None, 1)

        try:
            build(kwargs)
        except Exception as exc:  # an optimizer's own checks raise ValueError, TypeError, its own errors...
            if _fails(build, {}):  # not the keywords: the class itself, or `demon` on it
                what = f"optimizers.{name} = {entry!r}"
            else:  # name the first keyword that fails on its own, else all of them
                culprit = next((key for key in kwargs if _fails(build, {key: kwargs[key]})), None)
                owner = where if culprit in overrides else f"optimizers.{name}.kwargs"
                what = f"{owner}.{culprit} = {kwargs[culprit]!r}" if culprit else f"{where} = {kwargs!r}"
            raise ConfigError(f"{what} is refused by {cls.__name__} ({entry['class']}) for optimizer {name!r}: "
                              f"{type(exc).__name__}: {exc}") from None


def _fails(build, settings: dict) -> bool:
    try:
        build(settings)
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
