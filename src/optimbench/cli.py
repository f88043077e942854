"""Helpers shared by the command-line entry points: reading a job's --spec, checking and documenting its keys."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

import yaml


def parse_spec(value: str):
    """--spec as given: inline JSON (a mapping, or a list of mappings), or the path of a JSON or YAML file;
    SystemExit when it is neither or does not parse."""
    text = value.strip()
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"--spec is not valid JSON ({exc})") from None
    path = Path(value)
    if not path.is_file():
        raise SystemExit(f"--spec {value!r} is neither inline JSON nor an existing file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SystemExit(f"--spec file {path} is not valid JSON or YAML ({exc})") from None


def read_spec(value: str, required: dict[str, str] | None = None, optional: dict[str, str] | None = None) -> dict:
    """A job spec given as inline JSON, or as the path of a JSON or YAML file, checked by check_spec."""
    return check_spec(parse_spec(value), required or {}, optional or {})


def check_spec(spec, required: dict[str, str], optional: dict[str, str]) -> dict:
    """The spec itself if it is a mapping holding every required key; else SystemExit listing the missing
    keys with their meaning. Unknown keys are reported on stderr (with the closest known key) and kept."""
    if not isinstance(spec, dict):
        raise SystemExit(f"--spec must be a mapping of keys, not a {type(spec).__name__}")
    missing = [key for key in required if key not in spec]
    if missing:
        unknown = [key for key in spec if key not in required and key not in optional]

        def typo(key: str) -> str:
            close = difflib.get_close_matches(key, unknown, n=1)
            return f" (the spec has {close[0]!r}: a typo?)" if close else ""

        listed = "\n".join(f"  {key}: {required[key]}{typo(key)}" for key in missing)
        raise SystemExit(f"--spec is missing {len(missing)} required key(s):\n{listed}\n"
                         "(--help lists every key; the Snakemake rule passes a complete spec, shown with -p)")
    known = [*required, *optional]
    for key in spec:
        if known and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            print(f"warning: --spec key {key!r} is not used" + (f" (did you mean {close[0]!r}?)" if close else ""),
                  file=sys.stderr)
    return spec


def spec_help(required: dict[str, str], optional: dict[str, str]) -> str:
    """The keys of a stage's --spec, for its --help (argparse epilog, RawDescriptionHelpFormatter)."""
    lines = ["--spec keys (JSON or YAML), required:"]
    lines += [f"  {key:<16} {text}" for key, text in required.items()]
    if optional:
        lines += ["optional:"] + [f"  {key:<16} {text}" for key, text in optional.items()]
    return "\n".join(lines)
