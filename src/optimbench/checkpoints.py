"""A run's checkpoint: written after every epoch, read back to resume a killed run (SPEC §3).

The checkpoint holds what the trainer steps (model, optimizer, schedules) and every random generator it
draws from, so a resumed run ends bit-identical to an uninterrupted one on the CPU. It resumes only the run
that wrote it: `spec_hash`, the run's fingerprint, must match. A damaged file stops the run with a way out,
never a silent restart. A run folder has one writer at a time (`writer_lock`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import socket
import sys
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from optimbench import provenance
from optimbench.io import atomic_path, describe_load_error, lock_request
from optimbench.runs import CHECKPOINT, WRITER_LOCK  # noqa: F401 (CHECKPOINT: the trainer names it from here)


class Resumable(Protocol):
    """What a checkpoint restores (optimbench.train.Training)."""

    def load(self, ckpt: dict) -> None: ...


def spec_hash(spec: dict) -> str:
    """Fingerprint of what determines a run's results (a checkpoint resumes only the same run): 16 hex
    digits of the SHA-256 of the spec as sorted JSON, leaving out how it executes (compile). Threads count:
    a CPU run's numbers change with them (issue 27.6)."""
    relevant = {k: v for k, v in spec.items() if k != "compile"}
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


class RunFolderLocked(RuntimeError):
    """Another live process writes this run folder; the message names it and what to do."""


@contextlib.contextmanager
def writer_lock(folder):
    """Hold the run folder's one writer lock while the block runs: an exclusive open-file-description lock
    (fcntl F_OFD_SETLK, Linux 3.15+) on WRITER_LOCK, which records the holder's PID, host and start time and is
    removed when the block ends. The kernel releases the lock when the holder exits, however it dies (kill -9
    too), so a stale file never blocks a resume. An OFD lock, not flock(2): another process can ask whether
    it is held without taking it (F_OFD_GETLK: optimbench.io.lock_held), on any file system (btrfs and overlay give
    stat() other device numbers than /proc/locks shows). Own code because the lock must name its holder for
    the user (filelock's does not).

    NFS: OFD locks are POSIX byte-range locks to the server, so the lock holds across nodes where the
    server's lock manager runs (NFSv4, or v3 with lockd); a holder on a node that dies
    keeps it until the server's lease expires (about 90 s). A filesystem without locks (Lustre mounted
    without `flock`, NFS mounted `nolock`) gets a warning and no lock.

    Raises:
        RunFolderLocked: another process holds the lock (its PID, host and start time in the message).
    """
    path = Path(folder) / WRITER_LOCK
    fd = _locked_fd(path)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": provenance.now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still held: a process that opened it before waits on a dead file
        os.close(fd)  # releases the lock


def _locked_fd(path: Path) -> int:
    """An open descriptor of `path` holding its exclusive lock; retried when the file was removed or replaced
    between open and lock (its last holder finished), so two holders never hold two files."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, lock_request(fcntl.F_WRLCK))
        except (BlockingIOError, PermissionError):  # EAGAIN or EACCES: another holds it
            recorded = os.pread(fd, 4096, 0)
            os.close(fd)
            raise RunFolderLocked(_locked_message(path, recorded)) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            print(f"warning: {path}: this filesystem takes no locks ({exc.strerror}); make sure no other "
                  f"trainer writes {path.parent}", file=sys.stderr)
            return fd
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _locked_message(path: Path, recorded: bytes) -> str:
    try:
        holder = json.loads(recorded)
        pid, who = holder["pid"], f"PID {holder['pid']} on host {holder['host']} (since {holder['since']})"
    except (ValueError, KeyError, TypeError):
        pid, who = "<PID>", "a process that left no name in it"
    return (f"run folder {path.parent} is locked ({path}): another trainer is writing it, {who}. Two writers "
            f"would corrupt its checkpoint. If Snakemake was killed, that trainer may still be running: check "
            f"it (`ps -fp {pid}` on that host, or `squeue --me` on SLURM), then wait for it to finish or kill "
            f"it, and run again: the run resumes from its last checkpoint.")
