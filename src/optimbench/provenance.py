"""What to record beside every result: library versions, device, git commit, times."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
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
