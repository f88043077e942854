"""Load, merge and validate the study's configuration (config.yaml + presets) against its schema."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "config" / "schema.yaml"
FUNCTION_NAMES = ("ackley", "rosenbrock", "rastrigin", "himmelblau", "beale")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key, the value and the fix."""


def deep_merge(base: dict, override: dict) -> dict:
    """Return base updated by override, recursing into dicts (lists and scalars are replaced)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml_files(paths) -> dict:
    """Merge YAML files left to right (later files override earlier ones)."""
    config: dict = {}
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping, not {type(loaded).__name__}")
        config = deep_merge(config, loaded)
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
    """Names used in train/descent must exist, and every optimizer class must import."""
    from optimbench.optim import resolve_class  # imports torch: only when a config is checked

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
    train = config["train"]
    if train["pretrained"] and (train["model"] != "resnet18_article" or train["width"] != 64):
        raise ConfigError("train.pretrained needs train.model: resnet18_article and train.width: 64 "
                          f"(got {train['model']}, width {train['width']})")


def load(paths) -> dict:
    """Read, merge and validate config files (e.g. config.yaml then a preset)."""
    return validate(load_yaml_files(paths))
