"""A job's peak memory, as its run.json records it (issue 29.2): what a scheduler's `mem_mb` must cover.

Units are MB as SLURM's `--mem` and Snakemake's `mem_mb` count them (2**20 bytes).
"""

from __future__ import annotations

import resource
import sys

import torch

MB = 2**20


def peak_host_mb() -> float:
    """This process's peak resident set size since it started (getrusage ru_maxrss: KiB on Linux, bytes on
    macOS), in MB. Children (e.g. torch.compile's worker processes) are not included."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak * 1024 / MB


def peak_gpu_mb(device: torch.device | str | None) -> float | None:
    """The most GPU memory this process's tensors held on `device` (torch.cuda.max_memory_allocated, since
    the process started), in MB; None on any other device. The caching allocator reserves a little more
    (torch.cuda.max_memory_reserved)."""
    device = torch.device(device) if device is not None else None
    if device is None or device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / MB


def peaks(device: torch.device | str | None) -> dict:
    """{"peak_host_mb": float, "peak_gpu_mb": float or None}: the keys run.json records."""
    return {"peak_host_mb": peak_host_mb(), "peak_gpu_mb": peak_gpu_mb(device)}
