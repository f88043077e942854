"""A store of finished runs shared between studies and a lab's users: never train the same run twice.

The key (`key`): a hash of the run's result spec (a file plug-in's folder left out: `comparable`) and of the
execution its job resolved on the machine that ran it (`execution`: device type, CPU vector ISA or GPU model,
precision, memory layout, compile mode, torch/CUDA/cuDNN versions, deterministic algorithms, threads;
optimbench.hardware.numerics + optimbench.train). Two machines whose choices differ never share an entry;
two that resolve alike do. An entry is `<store>/<key[:2]>/<key>/`: the run's files (run.json, metrics.csv,
model.pt when saved, its TensorBoard event files) and ENTRY_FILE (the spec, the execution, each file's
sha256), written last.

Where it is touched: only inside a training job (optimbench.train.run), for its own run folder, while the job
holds that folder's writer lock: nothing at Snakemake's parse time, in dry runs, --unlock or --list. The job
resolves its execution, fetches the entry of its key if the store holds one (no training), else trains and
publishes. So only the job's machine decides the key, and no fetch ever writes where a live trainer writes.

- publish: the files are copied (never linked) into a temp folder beside the entry, read-only, then renamed
  into place in one step; an entry is never replaced (the first study to publish a key wins).
- fetch: each file is copied out, its checksum verified, and renamed into the run folder; MARKER before
  metrics.csv, which comes last (its presence marks a finished run). A study's later write to its copy never
  reaches the entry; a damaged entry is refused (the job trains instead).
- a lab's folder: new folders take the store folder's own mode (its group write and setgid bit), whatever
  the writer's umask; entry files are read-only, readable by whom the store folder lets read.

Every job's store action goes to a log (`record`); Snakemake's onsuccess/onerror print one line per
invocation from it (`summary`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import hashlib
import json
import os
import shutil
import stat
import sys
import uuid
from pathlib import Path

from optimbench.io import sha256

STORE_ENV = "OPTIMBENCH_STORE"
MARKER = "stored.json"  # beside a fetched run's metrics.csv: {"key", "store", "fetched"}
ENTRY_FILE = "entry.json"  # in an entry, written last: {"key", "spec", "execution", "files": {name: sha256}}
FINISHED = "metrics.csv"  # copied last: its presence marks a finished run
EVENTS_PREFIX = "events.out.tfevents."  # a run's TensorBoard event files (optimbench.events)
RUN_FILES = ("run.json", FINISHED, "model.pt")  # the run's files an entry holds, besides its event files


# ---------------------------------------------------------------- the key
def comparable(spec: dict) -> dict:
    """The spec as the key sees it: plain JSON, a file plug-in's folder left out of its class (its file name
    and source hash stay in the optimizer's `code`), so one file in two studies' folders gives one key."""
    spec = json.loads(json.dumps(spec, sort_keys=True))
    optimizer = spec.get("optimizer")
    if isinstance(optimizer, dict) and "file" in (optimizer.get("code") or {}):
        path, colon, attr = str(optimizer.get("class", "")).rpartition(":")
        if colon:
            optimizer["class"] = f"{Path(path).name}:{attr}"
    return spec


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:32]


def spec_key(spec: dict) -> str:
    """What the plan can know of a run on any machine: the hash of its comparable spec (stale checks)."""
    return _digest(comparable(spec))


def key(spec: dict, execution: dict) -> str:
    """A finished run's key in the store: its comparable result spec and its resolved execution (32 hex)."""
    return _digest({"spec": comparable(spec), "execution": execution})


# ---------------------------------------------------------------- where, and with which permissions
def location(configured: str | None) -> Path | None:
    """The store's folder: the config's `store`, else $OPTIMBENCH_STORE, else None (no store). `~` is
    expanded; a relative path counts from the working directory."""
    value = configured or os.environ.get(STORE_ENV) or None
    return Path(value).expanduser().absolute() if value else None


def entry(store, run_key: str) -> Path:
    return Path(store) / run_key[:2] / run_key


def _modes(store: Path) -> tuple[int, int]:
    """(folder mode, file mode) of new store content: folders as the store folder (group write, setgid),
    files read-only for whom the store folder lets read."""
    root = stat.S_IMODE(Path(store).stat().st_mode)
    return root, 0o444 & (root | 0o400)


def _folder(path: Path, mode: int) -> None:
    """path as a folder of `mode` (chmod: the writer's umask does not decide a lab folder's permissions)."""
    try:
        path.mkdir()
    except FileExistsError:
        return
    os.chmod(path, mode)


def holds(store, run_key: str) -> bool:
    """Whether the store has a complete entry under the key (its ENTRY_FILE, written last)."""
    return store is not None and (entry(store, run_key) / ENTRY_FILE).is_file()


def run_files(folder) -> list[str]:
    """The names of a finished run's files in `folder` that an entry holds: RUN_FILES present, event files."""
    folder = Path(folder)
    names = [n for n in RUN_FILES if (folder / n).is_file()]
    return names + sorted(p.name for p in folder.glob(f"{EVENTS_PREFIX}*") if p.is_file())


def _copy(source: Path, target: Path, mode: int | None = None) -> str:
    """Copy source to target (its bytes, never a link, no times kept); the copy's sha256."""
    shutil.copyfile(source, target)
    if mode is not None:
        os.chmod(target, mode)
    return sha256(target)


# ---------------------------------------------------------------- publish and fetch
def publish(store, run_key: str, folder, spec: dict, execution: dict) -> str | None:
    """Put the finished run in `folder` (run.json and metrics.csv at least) into the store under run_key.
    None when published, else why not ("the store holds it already", "unfinished"). Never replaces an entry.

    Raises:
        OSError: the store cannot be written (permissions, a full disk); nothing half-made stays.
    """
    folder, store = Path(folder), Path(store)
    names = run_files(folder)
    if not {"run.json", FINISHED} <= set(names):
        return "the run is unfinished"
    if holds(store, run_key):
        return "the store holds it already"
    store.mkdir(parents=True, exist_ok=True)
    folder_mode, file_mode = _modes(store)
    prefix = store / run_key[:2]
    _folder(prefix, folder_mode)
    tmp = prefix / f".publish-{uuid.uuid4().hex}"  # beside the entry: the rename never moves a folder's `..`
    _folder(tmp, folder_mode | stat.S_IWUSR | stat.S_IXUSR)
    try:
        files = {name: _copy(folder / name, tmp / name, file_mode) for name in names}
        record = {"key": run_key, "spec": spec, "execution": execution, "files": files,
                  "published": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "by": getpass.getuser()}
        (tmp / ENTRY_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        os.chmod(tmp / ENTRY_FILE, file_mode)
        os.chmod(tmp, folder_mode & ~0o222)  # an entry's files cannot be removed or added either
        os.rename(tmp, entry(store, run_key))  # atomic; refused when another study published the key meanwhile
    except OSError:
        if holds(store, run_key):
            return "the store holds it already"
        raise
    finally:
        if tmp.exists():
            os.chmod(tmp, stat.S_IRWXU)
            shutil.rmtree(tmp)
    return None


class DamagedEntry(RuntimeError):
    """A store entry whose file does not match its recorded checksum (or is missing)."""


def fetch(store, run_key: str, folder, need=()) -> bool:
    """Copy the stored run run_key into `folder`, each file checked against the entry's checksum and renamed
    into place, MARKER before FINISHED, FINISHED last. False, with nothing written, when the store lacks it
    or its entry lacks a file named in `need` (model.pt for a job that saves its model).

    Raises:
        DamagedEntry: a file of the entry does not match its checksum (the folder keeps no file of it).
    """
    if not holds(store, run_key):
        return False
    source, folder = entry(store, run_key), Path(folder)
    files = json.loads((source / ENTRY_FILE).read_text())["files"]
    if not set(need) <= set(files):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    staged = {}
    try:
        for name, checksum in files.items():
            staged[name] = folder / f".{name}.{uuid.uuid4().hex}.fetch"
            if not (source / name).is_file() or _copy(source / name, staged[name]) != checksum:
                raise DamagedEntry(f"store entry {source}: {name} does not match its recorded sha256 {checksum} "
                                   "(damaged or changed); it is not used")
        for old in folder.glob(f"{EVENTS_PREFIX}*"):  # an earlier attempt's curves: the entry's replace them
            if old.name not in files:
                old.unlink()
        for name in sorted(staged, key=lambda n: n == FINISHED):
            if name == FINISHED:
                marker = {"key": run_key, "store": str(store), "fetched": dt.datetime.now().isoformat("T", "seconds")}
                (folder / MARKER).write_text(json.dumps(marker) + "\n")
            os.replace(staged.pop(name), folder / name)
    finally:
        for path in staged.values():
            path.unlink(missing_ok=True)
    return True


def marked_key(folder) -> str | None:
    """The key a fetched run's MARKER names, None for a run trained here."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError):
        return json.loads((Path(folder) / MARKER).read_text())["key"]
    return None


# ---------------------------------------------------------------- a training job's two steps
def fetch_for_job(store, run_key: str, folder, log=None, need=(), invocation: str | None = None) -> bool:
    """fetch, recorded in the store log; a damaged or unreadable entry is skipped (recorded, with a warning
    on stderr): the job trains instead."""
    try:
        fetched = fetch(store, run_key, folder, need)
    except (DamagedEntry, OSError) as exc:
        print(f"warning: run store: {exc}; training instead", file=sys.stderr)
        _record(log, folder, "skipped", f"entry not usable ({type(exc).__name__})", invocation)
        return False
    if fetched:
        _record(log, folder, "fetched", "", invocation)
    return fetched


def publish_for_job(store, run_key: str, folder, spec: dict, execution: dict, log=None,
                    invocation: str | None = None) -> bool:
    """publish, recorded in the store log; a store that cannot be written is skipped with a warning (the
    run itself is finished: it never fails for the store)."""
    try:
        why = publish(store, run_key, folder, spec, execution)
    except OSError as exc:
        print(f"warning: run store {store}: cannot publish {folder} ({exc})", file=sys.stderr)
        why = f"the store cannot be written ({exc.strerror or type(exc).__name__})"
    _record(log, folder, "skipped" if why else "published", why or "", invocation)
    return why is None


def _record(log, folder, action: str, why: str, invocation: str | None) -> None:
    if log is not None:
        record(log, folder, action, why, invocation)


# ---------------------------------------------------------------- what the jobs did
def record(log, run: str, action: str, why: str = "", invocation: str | None = None) -> None:
    """Append one job's store action (fetched, published, skipped) to the study's store log (JSON lines;
    one short write with O_APPEND: jobs running side by side never interleave within a line), with the
    Snakemake invocation that ran the job (its id, not a time: a cluster node's clock may differ)."""
    line = json.dumps({"time": dt.datetime.now(dt.timezone.utc).timestamp(), "invocation": invocation,
                       "run": str(run), "action": action, "why": why}) + "\n"
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def summary(log, invocation: str) -> str | None:
    """One line of what the jobs of one Snakemake invocation did with the store: "Run store: fetched N,
    published M, skipped K (why: count, ...)"; None when none of its jobs touched it."""
    try:
        lines = Path(log).read_text().splitlines()
    except OSError:
        return None
    done = [r for r in (json.loads(line) for line in lines if line.strip()) if r.get("invocation") == invocation]
    if not done:
        return None
    count = {action: sum(r["action"] == action for r in done) for action in ("fetched", "published", "skipped")}
    whys: dict[str, int] = {}
    for r in done:
        if r["action"] == "skipped":
            whys[r["why"]] = whys.get(r["why"], 0) + 1
    text = f"Run store: fetched {count['fetched']}, published {count['published']}, skipped {count['skipped']}"
    return text + (f" ({'; '.join(f'{why}: {n}' for why, n in whys.items())})" if whys else "")
