"""The run store shared between studies (optimbench.store): its key, publish and fetch, immutable entries,
a lab folder's permissions (two real Unix users), and the one line per invocation. A training job's use of it
(fetch instead of training, publish after): tests/test_store_job.py."""

import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from optimbench import store

KEY, OTHER = "ab" + "1" * 30, "ab" + "2" * 30  # one prefix folder: two publishers share it
SPEC = {"seed": 0, "optimizer": {"class": "SGD"}}
EXECUTION = {"device": "cpu", "torch": "2.14.1", "cpu_isa": "AVX512", "bf16": False}
SRC = Path(__file__).resolve().parents[1] / "src"


def finished_run(folder: Path, text: str, model: bool = True, epochs: int = 2) -> Path:
    """A run folder as the trainer leaves it: run.json, metrics.csv, model.pt, one event file per epoch."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["run.json", "metrics.csv"] + (["model.pt"] if model else [])
    names += [f"events.out.tfevents.{e:06d}.optimbench" for e in range(1, epochs + 1)]
    for name in names:
        (folder / name).write_text(f"{text} {name}")
    (folder / "checkpoint.pt").write_text("not part of a finished run")
    return folder


def contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.name != store.MARKER}


# ---------------------------------------------------------------- the key
def test_the_key_leaves_out_a_plugins_folder_and_holds_every_execution_choice():
    """Issue 37.4/37.1: one file in two folders gives one key; each resolved choice gives another."""
    def plugin(folder):
        return {**SPEC, "optimizer": {"class": f"{folder}/opt/sign.py:Sign", "code": {"file": "sign.py",
                                                                                    "sha256": "0" * 16}}}

    assert store.key(plugin("/a"), EXECUTION) == store.key(plugin("/b/c"), EXECUTION)
    assert store.spec_key(plugin("/a")) == store.spec_key(plugin("/b"))
    assert store.comparable(plugin("/a"))["optimizer"]["class"] == "sign.py:Sign"
    # A dotted class is no file: kept whole.
    dotted = {**SPEC, "optimizer": {"class": "pkg.mod.Opt", "code": {"package": "pkg", "version": "1"}}}
    assert store.comparable(dotted) == dotted
    keys = {store.key(SPEC, EXECUTION)}
    for name, value in [("device", "cuda"), ("torch", "2.15.0"), ("cpu_isa", "AVX2"), ("bf16", True),
                        ("bf16_kernel", "amx_bf16"), ("channels_last", True), ("compile", "default"),
                        ("deterministic", False), ("threads", 2), ("gpu", "NVIDIA H100"), ("cuda", "12.8"),
                        ("cudnn", 91000)]:
        keys.add(store.key(SPEC, {**EXECUTION, name: value}))
    assert len(keys) == 13  # every component changes the key
    assert store.key(SPEC, dict(reversed(list(EXECUTION.items())))) == store.key(SPEC, EXECUTION)  # order: none


# ---------------------------------------------------------------- publish and fetch
def test_a_published_run_is_fetched_as_it_was_with_its_event_files_and_checksums(tmp_path):
    shared = tmp_path / "store"
    trained = finished_run(tmp_path / "a" / "run", "0.5")
    assert store.publish(shared, KEY, trained, SPEC, EXECUTION) is None
    entry = store.entry(shared, KEY)
    record = json.loads((entry / store.ENTRY_FILE).read_text())
    assert (record["spec"], record["execution"], record["key"]) == (SPEC, EXECUTION, KEY)
    names = ["run.json", "metrics.csv", "model.pt", "events.out.tfevents.000001.optimbench",
             "events.out.tfevents.000002.optimbench"]
    assert sorted(record["files"]) == sorted(names)  # no checkpoint
    for name in names:
        assert record["files"][name] == hashlib.sha256((trained / name).read_bytes()).hexdigest()
    assert not list(entry.parent.glob(".publish-*"))  # the temp folder went in whole

    target = tmp_path / "b" / "run"
    finished_run(target, "an earlier attempt", model=False, epochs=3)  # a third epoch file the entry lacks
    (target / "metrics.csv").unlink()
    assert store.fetch(shared, KEY, target)
    assert contents(target) == {**contents(trained), "checkpoint.pt": "not part of a finished run"}
    assert json.loads((target / store.MARKER).read_text())["key"] == KEY
    assert store.marked_key(target) == KEY and store.marked_key(trained) is None


def test_entries_are_read_only_copies_a_study_cannot_change(tmp_path):
    """Issue 37.6: entries were hard links (a write through any study's copy changed every study's) and a
    fetch's os.utime changed the entry's time: fetched files are copies, entries read-only."""
    shared = tmp_path / "store"
    trained = finished_run(tmp_path / "a" / "run", "x")
    store.publish(shared, KEY, trained, SPEC, EXECUTION)
    entry = store.entry(shared, KEY)
    times = {p.name: p.stat().st_mtime_ns for p in entry.iterdir()}
    target = tmp_path / "b" / "run"
    store.fetch(shared, KEY, target)
    for name in ("metrics.csv", "run.json"):
        assert (target / name).stat().st_ino != (entry / name).stat().st_ino
        assert (target / name).stat().st_ino != (trained / name).stat().st_ino
        with open(target / name, "a") as fh:  # the study's copy is its own
            fh.write("changed")
        assert (entry / name).read_text() == f"x {name}"
        with open(trained / name, "a") as fh:  # so is the publisher's
            fh.write("changed")
        assert (entry / name).read_text() == f"x {name}"
    assert {p.name: p.stat().st_mtime_ns for p in entry.iterdir()} == times
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o222 == 0 for p in entry.iterdir())
    assert stat.S_IMODE(entry.stat().st_mode) & 0o222 == 0  # no file can be added or removed either


def test_an_entry_is_never_replaced_and_an_unfinished_run_never_published(tmp_path):
    shared = tmp_path / "store"
    assert store.publish(shared, KEY, finished_run(tmp_path / "a", "first"), SPEC, EXECUTION) is None
    assert store.publish(shared, KEY, finished_run(tmp_path / "b", "second"), SPEC, EXECUTION) == \
        "the store holds it already"
    assert (store.entry(shared, KEY) / "metrics.csv").read_text() == "first metrics.csv"
    unfinished = finished_run(tmp_path / "c", "c")
    (unfinished / "metrics.csv").unlink()
    assert store.publish(shared, OTHER, unfinished, SPEC, EXECUTION) == "the run is unfinished"
    assert not store.entry(shared, OTHER).exists()


def test_a_damaged_entry_is_refused_and_leaves_nothing(tmp_path):
    shared = tmp_path / "store"
    store.publish(shared, KEY, finished_run(tmp_path / "a", "x"), SPEC, EXECUTION)
    entry = store.entry(shared, KEY)
    os.chmod(entry, 0o755)
    os.chmod(entry / "model.pt", 0o644)
    (entry / "model.pt").write_text("bit rot")
    target = tmp_path / "b"
    with pytest.raises(store.DamagedEntry, match="model.pt does not match its recorded sha256"):
        store.fetch(shared, KEY, target)
    assert list(target.iterdir()) == []
    assert not store.fetch(shared, OTHER, tmp_path / "c") and not (tmp_path / "c").exists()


def test_an_entry_without_a_file_the_job_needs_is_not_fetched(tmp_path):
    shared = tmp_path / "store"
    store.publish(shared, KEY, finished_run(tmp_path / "trial", "t", model=False), SPEC, EXECUTION)
    assert not store.fetch(shared, KEY, tmp_path / "run", need=("model.pt",)) and not (tmp_path / "run").exists()
    assert store.fetch(shared, KEY, tmp_path / "trial2")


def test_a_lab_folder_gives_new_folders_its_group_write_and_setgid_whatever_the_umask(tmp_path):
    shared = tmp_path / "store"
    shared.mkdir()
    os.chmod(shared, 0o2775)
    for umask, key in ((0o027, KEY), (0o022, OTHER)):
        old = os.umask(umask)
        try:
            store.publish(shared, key, finished_run(tmp_path / key, "x"), SPEC, EXECUTION)
        finally:
            os.umask(old)
        assert stat.S_IMODE((shared / key[:2]).stat().st_mode) == 0o2775
        assert stat.S_IMODE(store.entry(shared, key).stat().st_mode) == 0o2555
        assert {stat.S_IMODE(p.stat().st_mode) for p in store.entry(shared, key).iterdir()} == {0o444}


# ---------------------------------------------------------------- two Unix users on one lab folder
USERS = ("obalice", "obbob")
GROUP = "oblab"

# One store action as a user: publish a finished run of their own, or fetch, or write into an entry.
ACT = """
import json, os, sys
from pathlib import Path
from optimbench import store
action, shared, key, folder = sys.argv[1:5]
if action == "publish":
    folder = Path(folder)
    folder.mkdir(parents=True)
    for name in ("run.json", "metrics.csv", "model.pt"):
        (folder / name).write_text(name)
    print(store.publish(shared, key, folder, {"seed": 0}, {"device": "cpu"}))
elif action == "fetch":
    print(store.fetch(shared, key, folder))
else:
    try:
        with open(store.entry(shared, key) / "metrics.csv", "a") as fh:
            fh.write("changed")
        print("written")
    except PermissionError as exc:
        print("refused", exc.errno)
"""


@pytest.fixture(scope="module")
def lab():
    """Two Unix users in one group (added for the test, removed after) and a folder both can reach."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs root, useradd and setpriv (CI runs as root)")
    subprocess.run(["groupadd", "-f", GROUP], check=True)
    for user in USERS:
        if subprocess.run(["id", user], capture_output=True).returncode:
            subprocess.run(["useradd", "-M", "-N", "-g", "users", "-G", GROUP, user], check=True)
    root = Path(tempfile.mkdtemp(prefix="optimbench-lab-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)
    for user in USERS:
        subprocess.run(["userdel", user], check=False)
    subprocess.run(["groupdel", GROUP], check=False)


def as_user(user: str, umask: int, *args: str, python: str | None = None) -> subprocess.CompletedProcess:
    """Run ACT with `args` as `user`: their groups, the umask given."""
    entry = pwd.getpwnam(user)
    command = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--",
               "sh", "-c", f'umask {umask:03o} && exec "$@"', "sh", python or user_python(), "-c", ACT, *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC),
                                                                        "HOME": "/tmp"})


def user_python() -> str:
    """An interpreter the test users may run (this one may sit in root's home; ACT needs only the standard
    library and optimbench.store)."""
    for python in (sys.executable, shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")):
        entry = pwd.getpwnam(USERS[0])
        probe = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--", "sh", "-c",
                 'exec "$@"', "sh", python, "-c", "import sys; assert sys.version_info >= (3, 11)"]
        if python and subprocess.run(probe, capture_output=True).returncode == 0:
            return python
    pytest.skip("no Python 3.11+ the test users may run")


def act(user: str, umask: int, *args: str) -> str:
    """ACT's one line of output, run as `user` with `umask`."""
    done = as_user(user, umask, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.root
@pytest.mark.parametrize("alice_umask, bob_umask", [(0o027, 0o022), (0o022, 0o027)])
def test_two_users_with_their_own_umasks_share_a_setgid_lab_folder(lab, alice_umask, bob_umask):
    """Issue 37.6: Alice published with umask 027 (or 022) into the README's 2775 folder; Bob's use then died
    with a PermissionError (a prefix folder of Alice's he could not write), and hard links kept her mode.
    Now the prefix folder takes the lab folder's mode, entries are readable by the group and read-only to all."""
    shared = lab / f"store-{alice_umask:o}"
    shared.mkdir()
    subprocess.run(["chgrp", GROUP, str(shared)], check=True)
    os.chmod(shared, 0o2775)
    homes = {user: lab / f"{user}-{alice_umask:o}" for user in USERS}
    for user, home in homes.items():
        home.mkdir()
        shutil.chown(home, user)
    assert act("obalice", alice_umask, "publish", str(shared), KEY, str(homes["obalice"] / "run")) == "None"
    prefix = shared / KEY[:2]
    assert (stat.S_IMODE(prefix.stat().st_mode), prefix.group()) == (0o2775, GROUP)
    # Bob publishes beside Alice's entry (her prefix folder), fetches hers, and cannot change it.
    assert act("obbob", bob_umask, "publish", str(shared), OTHER, str(homes["obbob"] / "own")) == "None"
    assert act("obbob", bob_umask, "fetch", str(shared), KEY, str(homes["obbob"] / "run")) == "True"
    assert (homes["obbob"] / "run" / "metrics.csv").read_text() == "metrics.csv"
    assert act("obbob", bob_umask, "write", str(shared), KEY, "-") == "refused 13"
    assert act("obalice", alice_umask, "write", str(shared), KEY, "-") == "refused 13"  # her own, too
    for key in (KEY, OTHER):
        assert store.entry(shared, key).group() == GROUP
        assert {stat.S_IMODE(p.stat().st_mode) for p in store.entry(shared, key).iterdir()} == {0o444}


# ---------------------------------------------------------------- what an invocation did
def test_one_line_sums_up_what_this_invocations_jobs_did(tmp_path):
    log = tmp_path / "logs" / "store.jsonl"
    store.record(log, "results/train/a", "fetched", invocation="earlier")
    assert store.summary(log, "now") is None  # an earlier invocation's
    assert store.summary(tmp_path / "none.jsonl", "now") is None
    for run, action, why in [("b", "fetched", ""), ("c", "published", ""), ("d", "skipped", "the store holds it"),
                             ("e", "skipped", "the store holds it"), ("f", "fetched", "")]:
        store.record(log, run, action, why, "now")
    assert store.summary(log, "now") == "Run store: fetched 2, published 1, skipped 2 (the store holds it: 2)"
    assert store.summary(log, "earlier") == "Run store: fetched 1, published 0, skipped 0"


def test_the_store_comes_from_the_config_else_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(store.STORE_ENV, raising=False)
    assert store.location(None) is None
    monkeypatch.setenv(store.STORE_ENV, "/lab/store")
    assert store.location(None) == Path("/lab/store")
    assert store.location("~/runs") == Path.home() / "runs"
    monkeypatch.chdir(tmp_path)
    assert store.location("shared") == tmp_path / "shared"
