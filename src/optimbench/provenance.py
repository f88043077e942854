"""What to record beside every result: library versions, device, git commit, times; and the fingerprint of
installed code (`package_code`, `source_hash`: optimbench.optim.code_fingerprint's, and a running study's
check that a plug-in's code is still what its runs recorded, `code_now`). No torch here."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import importlib.util
import json
import platform
import subprocess
from pathlib import Path

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "optimbench", "pytorch-optimizer", "snakemake")


def versions() -> dict[str, str | None]:
    """Installed versions (importlib.metadata: pytorch-optimizer's __version__ is None)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def source_hash(path) -> str:
    """sha256 of a source file's bytes (16 hex digits)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def sources_hash(top: Path) -> str:
    """sha256 over a package's Python sources (every .py below its folder, by relative path and bytes; a
    single-module package: its file), 16 hex digits."""
    top = Path(top)
    files = sorted(top.rglob("*.py")) if top.is_dir() else [top]
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(top.parent)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_local(distribution: str) -> bool:
    """Whether a distribution was installed from a folder (`pip install -e .` or `pip install ./pkg`): its
    version then says nothing of its code (PEP 610's direct_url.json has `dir_info`)."""
    try:
        text = importlib.metadata.distribution(distribution).read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return False
    try:
        return "dir_info" in json.loads(text or "{}")
    except ValueError:
        return False


def package_code(distribution: str, top: str) -> dict:
    """The fingerprint of an installed package's code: {"package", "version"}, plus "sha256" of its sources
    (sources_hash of the top-level module `top` as Python finds it) when it was installed from a folder,
    editable or not (is_local): an edit of an editable install changes no version.

    Raises:
        importlib.metadata.PackageNotFoundError: the distribution is not installed.
    """
    code = {"package": distribution, "version": importlib.metadata.version(distribution)}
    if is_local(distribution):
        found = importlib.util.find_spec(top)
        origin = Path(found.origin) if found and found.origin else None
        if origin is not None:
            code["sha256"] = sources_hash(origin.parent if origin.name == "__init__.py" else origin)
    return code


def code_now(code: dict, class_name: str) -> dict:
    """A recorded code fingerprint as this machine's files give it now, without importing the code: a plug-in
    file's hash (class `path/file.py:Class`), an installed package's version (and sources); other kinds
    (torch.optim's, optimbench's own modules) as recorded. For a running study: whether a plan's fingerprint is
    still the code's (optimbench.status)."""
    try:
        if "file" in code and ":" in class_name and class_name.rpartition(":")[0].endswith(".py"):
            return {**code, "sha256": source_hash(class_name.rpartition(":")[0])}
        if "package" in code:  # a short name (QHM) finds no module by its name: its sources stay as recorded
            return {**{k: v for k, v in code.items() if k in ("demon", "sha256")},
                    **package_code(code["package"], class_name.split(".")[0])}
    except (OSError, importlib.metadata.PackageNotFoundError, ValueError, ImportError):
        return {**code, "missing": True}
    return code


def git_commit() -> str | None:
    """The checkout's commit (with '-dirty' when it has uncommitted changes), or None outside git."""
    code = Path(__file__).resolve().parent  # the commit of the code that ran, wherever the study runs
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=code).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, cwd=code).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def device_name(device) -> str:
    """A human-readable name of the device that ran the job."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
