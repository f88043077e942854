"""optimbench.status on hand-made run folders: each state, the counts, stale results, the projected end, the
lock check, and that it writes nothing. A real study killed half-way: tests/workflow/test_status_study.py."""

import csv
import dataclasses
import functools
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optimbench import checkpoints, events, status, store
from optimbench.runs import Plan, TrainRun

from helpers import plan_problem

PROBLEM = "cifar10-resnet18"
COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "momentum",
           "epoch_seconds", "eval_seconds", "samples_per_second", "diverged"]
EPOCHS = 4
NOW = 1_000_000.0


def row(epoch, loss=0.75, acc=0.5, seconds=2.0, eval_seconds=1.0, diverged=False) -> dict:
    return {"epoch": epoch, "train_loss": loss, "train_acc": acc, "val_loss": math.nan, "val_acc": math.nan,
            "test_loss": 1.25, "test_acc": acc, "lr": 0.05, "momentum": 0.9, "epoch_seconds": seconds,
            "eval_seconds": eval_seconds, "samples_per_second": 10.0, "diverged": diverged}


def train_run(name: str) -> TrainRun:
    spec = {"problem": PROBLEM, "epochs": EPOCHS, "seed": 0, "optimizer": {"class": "SGD", "kwargs": {"lr": 0.05}}}
    return TrainRun(PROBLEM, "cifar10", "resnet18_cifar", name, 0, f"results/train/{PROBLEM}/{name}/seed0",
                    spec=spec, execution={})


def finished(folder: Path, rows: list[dict], spec: dict, diverged=False) -> None:
    folder.mkdir(parents=True)
    with open(folder / "metrics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (folder / "run.json").write_text(json.dumps({"spec": {**spec, "threads": 1}, "diverged": diverged}))


def one_run_plan(run: TrainRun) -> Plan:
    return Plan("results", {}, {}, [run], [], {"problems": {PROBLEM: plan_problem(PROBLEM)}})


def log_of(workdir: Path, run: TrainRun) -> Path:
    path = workdir / f"results/logs/train/{PROBLEM}/{run.optimizer}/seed0.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def study(tmp_path):
    """Seven runs of one problem, one per state (and a stale one): (plan, workdir, the held lock's fd)."""
    runs = {name: train_run(name) for name in ("done", "stale", "diverged", "mid", "failed", "stalled", "missing")}
    plan = Plan("results", {}, {}, list(runs.values()), [], {"problems": {PROBLEM: plan_problem(PROBLEM)}})
    folder = {name: tmp_path / run.dir for name, run in runs.items()}
    finished(folder["done"], [row(e) for e in range(1, EPOCHS + 1)], runs["done"].spec)
    changed = {**runs["stale"].spec, "optimizer": {"class": "SGD", "kwargs": {"lr": 0.1}}}
    finished(folder["stale"], [row(e) for e in range(1, EPOCHS + 1)], changed)
    finished(folder["diverged"], [row(1), row(2, loss=math.inf, diverged=True)], runs["diverged"].spec, True)
    for name, epochs, seconds in (("mid", 2, 4.0), ("failed", 1, 5.0), ("stalled", 1, 3.0)):
        for epoch in range(1, epochs + 1):
            events.write_epoch(folder[name], PROBLEM, row(epoch, loss=1.0 / epoch, seconds=seconds), NOW - 60)
        (folder[name] / status.CHECKPOINT).write_bytes(b"")
    log_of(tmp_path, runs["mid"]).write_text("cifar10 SGD seed 0:  50%|#####     | 8/16 [00:08<00:08]\r")
    log_of(tmp_path, runs["failed"]).write_text("Traceback (most recent call last):\n  File ...\n"
                                               "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate\n\n")
    stalled_log = log_of(tmp_path, runs["stalled"])
    stalled_log.write_text("cifar10 SGD seed 0:  25%|##        | 4/16\r")
    for path in (stalled_log, log_of(tmp_path, runs["mid"]), *folder["stalled"].iterdir(), *folder["mid"].iterdir()):
        os.utime(path, (NOW - 7200, NOW - 7200))  # both quiet for 2 h: only the held lock tells mid from stalled
    with checkpoints.writer_lock(folder["mid"]):  # as the trainer holds it
        os.utime(folder["mid"] / status.WRITER_LOCK, (NOW - 7200, NOW - 7200))
        yield plan, tmp_path


def tree(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_each_run_gets_its_state_and_what_its_folder_shows(study):
    plan, workdir = study
    before = tree(workdir)
    found = {s.name.split("/")[2]: s for s in status.study_status(plan, workdir, now=NOW)}
    assert tree(workdir) == before  # status writes nothing
    assert {k: s.state for k, s in found.items()} == {
        "done": "done", "stale": "done", "diverged": "diverged", "mid": "training", "failed": "failed",
        "stalled": "stalled", "missing": "waiting"}
    mid = found["mid"]
    assert (mid.epoch, mid.epochs, mid.values["train_loss"], mid.values["test_acc"]) == (2, EPOCHS, 0.5, 0.5)
    assert mid.seconds_per_epoch == 4.0 + 1.0
    assert found["failed"].last_line == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate"
    assert (found["diverged"].epoch, found["done"].epoch, found["missing"].epoch) == (2, EPOCHS, 0)
    assert found["stalled"].age == 7200
    assert found["stale"].stale == 'optimizer: {"class": "SGD", "kwargs": {"lr": 0.1}} -> ' \
                                   '{"class": "SGD", "kwargs": {"lr": 0.05}}'
    assert [k for k, s in found.items() if s.stale] == ["stale"]  # run.json's extra keys (threads) are no change


def test_counts_per_problem_and_stage(study):
    plan, workdir = study
    table = status.counts(status.study_status(plan, workdir, now=NOW))
    assert list(table) == [(PROBLEM, "train")]
    assert dict(table[(PROBLEM, "train")]) == {"done": 2, "diverged": 1, "training": 1, "failed": 1, "stalled": 1,
                                               "waiting": 1, "stale": 1}


def test_projected_end_from_the_measured_seconds_per_epoch(study):
    """Per problem, the mean seconds per epoch of its measured runs: done 3, stale 3, diverged 3, mid 5,
    failed 6, stalled 4 -> 4 s. Left: mid 2 epochs at its own 5 s, stalled 3 and missing 4 epochs at 4 s =
    38 s, one run training at a time; the failed run is not counted."""
    plan, workdir = study
    p = status.projection(status.study_status(plan, workdir, now=NOW))
    assert (p.epochs_left, p.seconds_left, p.parallel, p.failed, p.unmeasured) == (9, 38.0, 1, 1, [])
    assert p.end(NOW) == NOW + 38
    assert status.projection(status.study_status(plan, workdir, now=NOW), parallel=2).end(NOW) == NOW + 19


def test_the_report_names_each_state(study):
    plan, workdir = study
    text = status.report(plan, status.study_status(plan, workdir, now=NOW), "plan.json", NOW)
    assert "mid/seed0" in text and "training  epoch 2 of 4  train_loss 0.5  test_acc 0.5  5 s/epoch" in text
    assert "failed  epoch 1 of 4  train_loss 1  test_acc 0.5  6 s/epoch  log: torch.OutOfMemoryError" in text
    assert "stalled  epoch 1 of 4" in text and "no write for 2 h 00 min" in text
    assert "1 finished run(s) are stale" in text and "9 epochs left" in text and "(in 38 s)" in text
    brief = status.report(plan, status.study_status(plan, workdir, now=NOW), "plan.json", NOW, brief=True)
    assert "done/seed0" not in brief and "missing/seed0" not in brief and "mid/seed0" in brief


@pytest.mark.parametrize("line", [
    "RuntimeError: CUDA error: an illegal memory access was encountered", "KeyboardInterrupt", "Killed",
    "optimbench.checkpoints.CheckpointError: checkpoint x cannot be read", "SystemExit: 1",
    "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-12-05T01:00:00 DUE TO TIME LIMIT ***",
    "Traceback (most recent call last):"])
def test_a_log_ending_in_an_error_is_a_failure(line):
    assert status.FAILURE.match(line)


@pytest.mark.parametrize("line", [
    "cifar10-resnet18 SGD seed 0:  40%|####      | 40/100 [00:10<00:15, 4.0step/s, epoch=2, loss=1.2]",
    "resuming from results/train/x/checkpoint.pt after epoch 1", "4 epochs: train_loss 0.1, test_acc 0.9"])
def test_a_progress_line_is_no_failure(line):
    assert not status.FAILURE.match(line)


def hold_lock(folder: Path) -> subprocess.Popen:
    """A live trainer's lock on `folder` (checkpoints.writer_lock in another process), until it is killed."""
    code = (f"import sys, time; from optimbench import checkpoints\n"
            f"with checkpoints.writer_lock({str(folder)!r}):\n    print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_lock_is_asked_of_the_file_not_found_by_its_device_numbers(tmp_path, monkeypatch):
    """Issue 37.7: on btrfs (and some overlay mounts) stat() gives a file other device numbers than /proc/locks
    shows its lock under (0:41 against 00:28), so a live trainer's lock was not found: asked of the lock itself
    (F_OFD_GETLK), status finds it whatever stat says, and never takes it."""
    holder = hold_lock(tmp_path)
    path = tmp_path / status.WRITER_LOCK
    real_stat = Path.stat

    def btrfs_stat(self, *args, **kwargs):  # what btrfs reports: an anonymous device of the subvolume
        found = real_stat(self, *args, **kwargs)
        if self == path:
            return os.stat_result((found.st_mode, found.st_ino, os.makedev(0, 41), *found[3:]))
        return found

    monkeypatch.setattr(Path, "stat", btrfs_stat)
    try:
        assert status.lock_held(path)
        with pytest.raises(checkpoints.RunFolderLocked):  # still the holder's: asking took nothing
            with checkpoints.writer_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert not status.lock_held(path) and not status.lock_held(tmp_path / "none.lock")


def test_a_folder_a_trainer_holds_is_never_done(tmp_path):
    """Issue 37.7: after a kill -9 of Snakemake, an orphaned trainer reruns a folder that still holds an earlier
    metrics.csv (or a fetched copy): status said "done, epoch 100 of 100"; while the lock is held it is training."""
    run = train_run("SGD")
    plan = one_run_plan(run)
    folder = tmp_path / run.dir
    finished(folder, [row(e) for e in range(1, EPOCHS + 1)], run.spec)
    holder = hold_lock(folder)
    try:
        assert status.study_status(plan, tmp_path, now=NOW)[0].state == "training"
    finally:
        holder.kill()
        holder.wait()
    assert status.study_status(plan, tmp_path, now=NOW)[0].state == "done"


def test_the_trainers_file_names_are_the_checkpoints_modules():
    assert (status.CHECKPOINT, status.WRITER_LOCK) == (checkpoints.CHECKPOINT, checkpoints.WRITER_LOCK)


def test_a_tuned_run_is_stale_when_its_selection_changed(tmp_path):
    expected = {"epochs": 2, "optimizer": {"class": "Adam", "kwargs": {"lr": 0.001}}, "lr_schedule": None}
    recorded = {"epochs": 2, "optimizer": {"class": "Adam", "kwargs": {"lr": 0.03}}, "lr_schedule": "cosine",
                "selected_trial": 3}
    selection = tmp_path / "selected.json"
    selection.write_text(json.dumps({"trial": 3, "setting": {"lr": 0.03, "lr_schedule": "cosine"}}))
    assert status.tuned_changes(recorded, expected, selection) == []
    selection.write_text(json.dumps({"trial": 5, "setting": {"lr": 0.02}}))
    assert status.tuned_changes(recorded, expected, selection) == ["selected_trial: 3 -> 5"]
    assert status.tuned_changes(recorded, {**expected, "epochs": 3}, selection)[0] == "epochs: 2 -> 3"


def test_the_plan_comes_from_plan_json_when_it_is_newer_than_the_config(tmp_path, study):
    plan, _ = study
    config = tmp_path / "c.yaml"
    config.write_text("results_dir: out/x\n")
    (tmp_path / "out/x").mkdir(parents=True)
    (tmp_path / "out/x/plan.json").write_text(plan.to_json())
    os.utime(config, (time.time() - 60, time.time() - 60))
    loaded, source = status.load_plan([config], tmp_path)
    assert source == str(tmp_path / "out/x/plan.json") and loaded.train_runs == plan.train_runs
    assert status.results_dir([config, tmp_path / "c.yaml"]) == "out/x"


def test_duration():
    assert [status.duration(s) for s in (40, 420, 7500, 3 * 86400 + 4 * 3600)] == ["40 s", "7 min", "2 h 05 min",
                                                                                   "3 d 4 h"]


@pytest.mark.parametrize("lock_file, age, state", [(False, 300, "training"), (False, 700, "stalled"),
                                                   (True, 60, "training"), (True, 300, "stalled")])
def test_a_quiet_run_is_stalled_sooner_when_the_trainer_takes_locks(tmp_path, lock_file, age, state):
    """No lock file (a trainer without locks): stalled after 10 min without a write. A free lock file: the
    trainer takes its lock seconds after its job starts, so 2 min of quiet without it means no trainer."""
    run = train_run("quiet")
    plan = Plan("results", {}, {}, [run], [], {"problems": {PROBLEM: plan_problem(PROBLEM)}})
    log = log_of(tmp_path, run)
    log.write_text("starting\n")
    (tmp_path / run.dir).mkdir(parents=True)
    if lock_file:
        (tmp_path / run.dir / status.WRITER_LOCK).write_text(json.dumps({"host": os.uname().nodename}))
    os.utime(log, (NOW - age, NOW - age))
    assert status.study_status(plan, tmp_path, now=NOW)[0].state == state


def test_the_plan_comes_from_the_config_when_a_config_file_is_newer(tmp_path, study, monkeypatch):
    """A config edited after plan.json (or no plan.json yet): the plan the config gives now, printed by
    `python -m optimbench.plan` in a subprocess (it loads torch; status does not), run in the workdir."""
    plan, _ = study
    config = tmp_path / "c.yaml"
    config.write_text("results_dir: out/x\n")
    (tmp_path / "out/x").mkdir(parents=True)
    (tmp_path / "out/x/plan.json").write_text("{}")
    os.utime(tmp_path / "out/x/plan.json", (time.time() - 60, time.time() - 60))
    calls = []

    def fake_run(cmd, cwd, **kwargs):
        calls.append((cmd, cwd))
        return subprocess.CompletedProcess(cmd, 0, plan.to_json(), "")

    monkeypatch.setattr(status.subprocess, "run", fake_run)
    loaded, source = status.load_plan([config], tmp_path)
    assert calls == [([sys.executable, "-m", "optimbench.plan", str(config)], tmp_path)]
    assert loaded.train_runs == plan.train_runs and source.startswith("the config files (plan.json is missing")
    monkeypatch.setattr(status.subprocess, "run", lambda cmd, cwd, **kw: subprocess.CompletedProcess(
        cmd, 1, "", "train.epochs = 0: must be at least 1"))
    with pytest.raises(SystemExit, match="train.epochs = 0"):
        status.load_plan([config], tmp_path)


def file_hash(path: Path) -> str:
    """A plug-in file's fingerprint, by hand (optimbench.optim.code_fingerprint's sha256, 16 hex digits)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def plugin_run(study: Path, source: str) -> TrainRun:
    """A run of a plug-in file `study/opt/sign.py` (its spec as the plan gives it: the absolute path, the file's
    name and hash)."""
    (study / "opt").mkdir(parents=True, exist_ok=True)
    (study / "opt" / "sign.py").write_text(source)
    code = {"file": "sign.py", "sha256": file_hash(study / "opt" / "sign.py")}
    run = train_run("Sign")
    return dataclasses.replace(run, spec={**run.spec, "optimizer": {"class": f"{study / 'opt' / 'sign.py'}:Sign",
                                                                   "code": code}})


def test_a_plugin_in_another_folder_with_the_same_code_is_not_stale_and_a_fetched_run_is_marked(tmp_path):
    """Issue 37.4/37.5: study 2 (same file, another folder) fetched study 1's run: it is neither stale (the
    folder is no part of the key) nor unmarked."""
    first, second = (plugin_run(tmp_path / study, "class Sign: pass\n") for study in ("one", "two"))
    folder = tmp_path / "two" / second.dir
    finished(folder, [row(e) for e in range(1, EPOCHS + 1)], first.spec)  # study 1's run.json
    (folder / store.MARKER).write_text(json.dumps({"key": "ab" * 16, "store": "/s"}))
    found = status.study_status(one_run_plan(second), tmp_path / "two", now=NOW)[0]
    assert (found.state, found.stale, found.fetched) == ("done", "", True)
    text = status.report(one_run_plan(second), [found], "test", NOW)
    assert "(from the run store)" in text and "1 finished run(s) came from the run store" in text


def test_a_plugin_edited_after_the_plan_was_written_makes_its_runs_stale(tmp_path):
    """Issue 37.7: after a plug-in edit status read the old plan.json (its fingerprint) and called every run
    done and none stale, while `snakemake -n` planned the reruns; the file's hash now is compared."""
    run = plugin_run(tmp_path, "class Sign: pass\n")
    finished(tmp_path / run.dir, [row(e) for e in range(1, EPOCHS + 1)], run.spec)
    assert status.study_status(one_run_plan(run), tmp_path, now=NOW)[0].stale == ""
    (tmp_path / "opt" / "sign.py").write_text("class Sign: pass  # edited\n")
    getattr(status, "_code_now", functools.lru_cache(None)(len)).cache_clear()  # a new `make status`
    stale = status.study_status(one_run_plan(run), tmp_path, now=NOW)[0].stale
    edited = file_hash(tmp_path / "opt" / "sign.py")
    assert stale.startswith("optimizer: ") and edited in stale and run.spec["optimizer"]["code"]["sha256"] in stale


def test_a_running_study_reads_its_cached_plan_until_plan_json_exists(tmp_path, study, monkeypatch):
    """Issue 38: the `plan` job may run late in a large study; until it has, status reads the plan `make study`
    checked and cached (runs.PLAN_CACHE) instead of planning the study again, unless a source file it
    records changed since (then the config's plan, as without a cache)."""
    plan, _ = study
    config = tmp_path / "c.yaml"
    config.write_text("results_dir: out/x\n")
    os.utime(config, (time.time() - 60, time.time() - 60))
    source = tmp_path / "plugin.py"
    source.write_text("# an optimizer's file\n")
    cache = tmp_path / "out/x/.cache/plan.json"
    cache.parent.mkdir(parents=True)
    recorded = {str(source): hashlib.sha256(source.read_bytes()).hexdigest()[:16]}
    cache.write_text(json.dumps({"key": "k", "digest": "d", "files": recorded, "plan": plan.to_json()}))
    built = []
    monkeypatch.setattr(status.subprocess, "run", lambda cmd, cwd, **kw: built.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0, plan.to_json(), ""))
    loaded, where = status.load_plan([config], tmp_path)
    assert where == str(cache) and loaded.train_runs == plan.train_runs and built == []
    source.write_text("# an optimizer's file, edited\n")
    _, where = status.load_plan([config], tmp_path)
    assert where.startswith("the config files") and len(built) == 1
