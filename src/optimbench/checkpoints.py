"""A run's checkpoint: written after every epoch, read back to resume a killed run (SPEC §3).

The checkpoint holds what the trainer steps (model, optimizer, schedules) and every random generator it
draws from, so a resumed run ends bit-identical to an uninterrupted one on the CPU. It resumes only the run
that wrote it: `spec_hash`, the run's fingerprint, must match. A damaged file stops the run with a way out,
never a silent restart.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from optimbench.io import atomic_path, describe_load_error

CHECKPOINT = "checkpoint.pt"  # the checkpoint's file name in a run's folder


class Resumable(Protocol):
    """What a checkpoint restores (optimbench.train.Training)."""

    def load(self, ckpt: dict) -> None: ...


def spec_hash(spec: dict) -> str:
    """Fingerprint of what determines a run's results (a checkpoint resumes only the same run): 16 hex
    digits of the SHA-256 of the spec as sorted JSON, leaving out how it executes (threads, compile)."""
    relevant = {k: v for k, v in spec.items() if k not in ("threads", "compile")}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save `state` to path atomically: a kill mid-write leaves the previous checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def rng_states(gen: torch.Generator) -> dict:
    """The states of every generator a run draws from: gen (the augmentation's), torch's global CPU one,
    NumPy's, random's and, where CUDA is available, every CUDA device's."""
    states = {"gen": gen.get_state(), "torch": torch.get_rng_state(),
              "numpy": np.random.get_state(), "random": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict, gen: torch.Generator) -> None:
    """Set gen and the global generators to `states` (rng_states); the CUDA ones only where CUDA is
    available."""
    gen.set_state(states["gen"])
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["random"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class CheckpointError(RuntimeError):
    """A run's checkpoint cannot be read; the message names the file and how to start over."""


def read_checkpoint(ckpt_path: Path, device) -> dict:
    """The checkpoint's contents; a damaged file (truncated, not a checkpoint) raises CheckpointError.
    Never a silent restart: deleting the file is the user's decision (it discards the epochs done)."""
    way_out = (f"Delete it to restart this run from epoch 1 (rm {str(ckpt_path)!r}), or delete the run's "
               f"folder {str(ckpt_path.parent)!r}, then run again.")
    try:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
    except Exception as exc:  # torch.load's errors vary with the damage (zip reader, unpickling, EOF...)
        raise CheckpointError(f"checkpoint {ckpt_path} cannot be read ({describe_load_error(exc)}): the file "
                              f"is damaged, e.g. truncated by a full disk. {way_out}") from None
    missing = [k for k in ("spec_hash", "epoch") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {ckpt_path} is not one of this trainer's checkpoints "
                              f"(no {missing}). {way_out}")
    return ckpt


def resume(ckpt_path: Path, fingerprint: str, training: Resumable, device) -> tuple[list, int]:
    """Load the checkpoint of this same run (spec_hash `fingerprint`) into `training`, if any: (metric rows
    so far, epochs done); ([], 0) when there is none or it belongs to another configuration."""
    if not ckpt_path.exists():
        return [], 0
    ckpt = read_checkpoint(ckpt_path, device)
    if ckpt["spec_hash"] != fingerprint:
        print(f"ignoring {ckpt_path}: it belongs to another configuration", file=sys.stderr)
        return [], 0
    training.load(ckpt)
    print(f"resuming from {ckpt_path} after epoch {ckpt['epoch']}", file=sys.stderr)
    return ckpt["rows"], ckpt["epoch"]
