"""Helpers shared by the command-line entry points."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def read_spec(value: str) -> dict:
    """A job spec given as inline JSON, or as the path of a JSON or YAML file."""
    text = value.strip()
    if text.startswith("{"):
        return json.loads(text)
    path = Path(value)
    if not path.exists():
        raise SystemExit(f"--spec {value!r} is neither inline JSON nor an existing file")
    return yaml.safe_load(path.read_text())
