"""A store of finished runs shared between studies: never train the same run twice.

An entry holds one finished run's files (run.json, metrics.csv, model.pt if it saved one; run.json records
the job's wall time and peak memory) and its result spec, under the key of that spec
(optimbench.specs.store_key: the complete result spec, with the fingerprint of the optimizer's code):
`<store>/<key[:2]>/<key>/`. Studies, or a lab's users, share runs by pointing at one folder (config key
`store`, else the environment variable OPTIMBENCH_STORE). A run is given as its key and its files, entry
name → path in the study (`{"metrics.csv": "results/train/.../metrics.csv", "run.json": ...}`).

- publish: a finished run's files go in as one atomic rename of a filled temp folder; an entry is never
  replaced (the first study to publish a key wins: the runs are the same by their key).
- fetch: an entry's files are hard-linked (copied across file systems) into the study, each one
  atomically, metrics.csv last (its presence marks a finished run). Studies only read entries: nothing of
  another study is ever overwritten.
- sync: what the workflow does when it starts and when it ends (optimbench's rules, common.smk): publish
  the runs this study finished (those whose run.json recorded the spec), fetch the ones it lacks (marked
  with MARKER, naming the key), and clear a fetched run whose key no longer matches its spec (a changed
  setting), which then trains or is fetched anew.

Snakemake's between-workflow cache (`cache:`, --cache) does not fit (README, "The run store"): its key
hashes the shell command and params, which hold the study's run folder, the interpreter and the
checkout's paths, so no two studies or users would ever share an entry; and it knows nothing of the code
behind an optimizer's class name.
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
MARKER = "stored.json"  # beside a fetched run's metrics.csv: {"key", "store"}
SPEC_FILE = "spec.json"  # in an entry: the run's result spec, for people browsing the store
FINISHED = "metrics.csv"  # written last, fetched last: its presence marks a finished run


def location(configured: str | None) -> Path | None:
    """The store's folder: the config's `store`, else $OPTIMBENCH_STORE, else None (no store). `~` is
    expanded; a relative path counts from the working directory."""
    value = configured or os.environ.get(STORE_ENV) or None
    return Path(value).expanduser().absolute() if value else None


def entry(store, key: str) -> Path:
    return Path(store) / key[:2] / key


def holds(store, key: str, names=(FINISHED,)) -> bool:
    """Whether the store has a finished run under key with each of `names`."""
    return store is not None and all((entry(store, key) / name).is_file() for name in names)


def _link(source: Path, target: Path) -> None:
    """source at target, atomically: a hard link where the file system allows, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
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


def _last(files: dict) -> list:
    """The (name, path) pairs with FINISHED last."""
    return sorted(files.items(), key=lambda item: item[0] == FINISHED)


def fetch(store, key: str, files: dict, marker: bool = False) -> bool:
    """Put the stored run `key` at `files` (entry name → path, FINISHED last). False, with nothing written,
    when the store lacks the key or one of the names. With marker, MARKER goes beside FINISHED first."""
    if not holds(store, key, [*files, FINISHED]):
        return False
    source = entry(store, key)
    for name, path in _last(files):
        if name == FINISHED and marker:
            write_json(Path(path).parent / MARKER, {"key": key, "store": str(store)})
        _link(source / name, Path(path))
    os.utime(files[FINISHED])  # newer than anything upstream: a hard link keeps the entry's time
    return True


def publish(store, key: str, files: dict, spec: dict) -> bool:
    """Put the finished run at `files` (each present) into the store under key. False when the store holds
    the key already (kept: never replaced) or a file is missing (an unfinished run)."""
    if holds(store, key) or not all(Path(path).is_file() for path in files.values()):
        return False
    target = entry(store, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(store) / f".publish-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        for name, path in files.items():
            _link(Path(path), tmp / name)
        (tmp / SPEC_FILE).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")
        os.rename(tmp, target)  # atomic; refused if another study published the key meanwhile
    except OSError:
        if holds(store, key):
            return False
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return True


def sync(store, runs) -> set[str]:
    """Per run (key, files, spec): a fetched run whose key changed is cleared; a run finished here (all its
    files, no MARKER) is published; a missing one the store holds is fetched, marked. Returns the folders
    (of FINISHED) that hold the store's copy of their run: no job needs to run for them."""
    fetched = set()
    if store is None:
        return fetched
    for key, files, spec in runs:
        folder = Path(files[FINISHED]).parent
        marked = _marked_key(folder)
        if marked is not None and marked != key:
            for path in (*files.values(), folder / MARKER):
                Path(path).unlink(missing_ok=True)
            marked = None
        if marked == key and Path(files[FINISHED]).is_file():
            fetched.add(str(folder))
        elif marked is None and Path(files[FINISHED]).is_file():
            if _recorded(files, spec):
                publish(store, key, files, spec)
        elif fetch(store, key, files, marker=True):
            fetched.add(str(folder))
    return fetched


def _recorded(files: dict, spec: dict) -> bool:
    """Whether the run's run.json recorded this spec (it may add execution settings): a run of an older
    spec, which Snakemake will rerun, never goes into the store under the new key."""
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        recorded = json.loads(Path(files["run.json"]).read_text())["spec"]
        plain = json.loads(json.dumps(spec))
        return all(recorded.get(k) == v for k, v in plain.items())
    return False


def _marked_key(folder: Path) -> str | None:
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        return json.loads((folder / MARKER).read_text())["key"]
    return None
