"""A store of finished runs shared between studies: never train the same run twice.

An entry holds one finished run's files (run.json, metrics.csv, model.pt if it saved one) and its result
spec, under the key of that spec (optimbench.specs.store_key: the complete result spec, with the
fingerprint of the optimizer's code): `<store>/<key[:2]>/<key>/`. Two studies, or a lab's users, share
runs by pointing at one folder (config key `store`, else the environment variable OPTIMBENCH_STORE).

- publish: a finished run's files go in as one atomic rename of a filled temp folder; an existing entry is
  never replaced (the first study to finish a run wins; the runs are the same by their key).
- fetch: an entry's files are hard-linked (copied across file systems) into a study's run folder, each
  one atomically, metrics.csv last (its presence marks a finished run); nothing of another study is
  overwritten, as studies only ever read the store.
- fill: when the workflow starts, the runs of the plan that have no results and whose key the store
  holds are fetched, with a marker (MARKER) naming the key, so Snakemake plans no job for them; a marked
  run whose key no longer matches its spec (a changed setting) is cleared, and trains or is fetched again.

Snakemake's own between-workflow cache does not fit (see README, "The run store"): it refuses rules with
a `benchmark:`, and it hashes the shell command and params, which hold the study's run folder, the
interpreter and the checkout's paths, so two studies or users would never share an entry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

from optimbench.io import write_json

STORE_ENV = "OPTIMBENCH_STORE"
MARKER = "stored.json"  # in a run folder filled from the store: {"key", "store"}
SPEC_FILE = "spec.json"  # in an entry: the run's result spec, for people browsing the store
FINISHED = "metrics.csv"  # written last, fetched last: its presence marks a finished run
RUN_FILES = ("run.json", "model.pt", FINISHED)


def location(configured: str | None) -> Path | None:
    """The store's folder: the config's `store`, else $OPTIMBENCH_STORE, else None (no store). `~` is
    expanded; a relative path counts from the working directory."""
    value = configured or os.environ.get(STORE_ENV) or None
    return Path(value).expanduser().absolute() if value else None


def entry(store, key: str) -> Path:
    return Path(store) / key[:2] / key


def holds(store, key: str, files=(FINISHED,)) -> bool:
    """Whether the store has a finished run under key with every one of `files`."""
    return store is not None and all((entry(store, key) / name).is_file() for name in files)


def _link(source: Path, target: Path) -> None:
    """source at target, atomically: a hard link where the file system allows, else a copy."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copy2(source, tmp)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fetch(store, key: str, folder, files=RUN_FILES, marker: bool = False) -> bool:
    """Put the stored run `key` into `folder` (each of `files` the entry has; FINISHED last). False, and
    nothing written, when the store lacks the key or one of the `required` files. With marker, MARKER is
    written before FINISHED (a run folder the workflow filled at its start, fill)."""
    source = entry(store, key) if store is not None else None
    wanted = [name for name in files if name != FINISHED]
    if source is None or not holds(store, key, [*wanted, FINISHED]):
        return False
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        _link(source / name, folder / name)
    if marker:
        write_json(folder / MARKER, {"key": key, "store": str(store)})
    _link(source / FINISHED, folder / FINISHED)
    os.utime(folder / FINISHED)  # newer than anything upstream: a hard link keeps the entry's time
    return True


def publish(store, key: str, folder, spec: dict) -> bool:
    """Put the finished run in `folder` (its RUN_FILES present there) into the store under key. False when
    the store already holds the key (kept: never replaced) or the run is not finished."""
    folder, target = Path(folder), entry(store, key)
    if holds(store, key) or not (folder / FINISHED).is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(store) / f".publish-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for name in RUN_FILES:
            if (folder / name).is_file():
                _link(folder / name, tmp / name)
        (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
        os.rename(tmp, target)  # atomic; fails if another study published the key meanwhile
    except OSError:
        if holds(store, key):
            return False
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return True


def fill(store, runs) -> set[str]:
    """Before any job: fetch into their folders the runs (key, folder, files) that have no results and that
    the store holds, marked (MARKER); clear a marked folder whose key is not the run's any more. Returns the
    folders that hold the store's copy of their run (Snakemake needs no input for them: no job runs).
    A run this study trained itself (no marker) is left to Snakemake's rerun triggers."""
    filled = set()
    for key, folder, files in runs:
        folder = Path(folder)
        marked = _marked_key(folder)
        if marked is not None and marked != key:
            for name in (*RUN_FILES, MARKER):
                (folder / name).unlink(missing_ok=True)
            marked = None
        if marked == key and (folder / FINISHED).is_file():
            filled.add(str(folder))
        elif not (folder / FINISHED).exists() and fetch(store, key, folder, files, marker=True):
            filled.add(str(folder))
    return filled


def _marked_key(folder: Path) -> str | None:
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        return json.loads((folder / MARKER).read_text())["key"]
    return None
