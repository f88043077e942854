"""optimbench.status and the TensorBoard curves on real studies: the shared tiny study once it has finished,
and a one-run study killed by SIGKILL half-way, then run again to its end."""

import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest
from conftest import tiny_config

from optimbench import events, status
from optimbench.config import load
from optimbench.plan import plan as plan_of
from optimbench.plan import write_plan
from optimbench.runs import WRITER_LOCK, read_plan

from helpers import ROOT, SNAKEMAKE, assert_one_event_per_epoch, run_env, snakemake, write_config
from workflow_study import DESCENT_RUNS, EPOCHS, OPTIMIZERS, PROBLEM, PROBLEMS, SEEDS, TRIALS, TUNED

pytestmark = pytest.mark.workflow


def test_a_finished_study_is_all_done_with_its_curves(study, capsys):
    workdir, config, _ = study
    plan = read_plan(workdir / "results/plan.json")
    found = status.study_status(plan, workdir)
    table = status.counts(found)
    for problem in PROBLEMS:
        assert table[(problem, "train")] == Counter(done=len(OPTIMIZERS) * len(SEEDS))  # Counter: stale 0 = none
        assert table[(problem, "trials")] == Counter(done=TRIALS * len(TUNED))
        assert table[(problem, "tuned")] == Counter(done=len(SEEDS) * len(TUNED))
    assert sum(table[key]["done"] for key in table if key[1] == "descent") == DESCENT_RUNS
    assert not any(s.stale for s in found)  # each run.json's spec is the plan's (tuned: its selection's trial)
    for s in found:
        if s.stage != "descent":
            epochs = plan.tune.trials[0].spec["epochs"] if s.stage == "trials" else EPOCHS
            assert_one_event_per_epoch(workdir / "results" / s.name, s.problem, epochs)
    status.main([config, "--workdir", str(workdir)])
    out = capsys.readouterr().out
    assert f"(plan from {workdir}/results/plan.json)" in out and "Projected end: every run has finished." in out


def test_a_study_killed_half_way_shows_the_run_stalled_then_done(tmp_path):
    config = write_config(tmp_path / "one.yaml", **tiny_config(problems=[PROBLEM], train={
        "optimizers": ["SGD"], "seeds": [0], "epochs": 3}, tune={"enabled": False}))
    run_dir = tmp_path / f"results/train/{PROBLEM}/SGD/seed0"
    targets = [f"results/train/{PROBLEM}/SGD/seed0/metrics.csv"]  # the run alone: no aggregation, no report
    write_plan(plan_of(load([ROOT / "config.yaml", config])).to_json(), tmp_path / "results/plan.json")  # the plan rule
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile", config,
           "--cores", "1", *targets]
    proc = subprocess.Popen(cmd, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while 1 not in events.epoch_files(run_dir) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    first = events.epoch_files(run_dir).get(1, run_dir / "no epoch-1 event file")
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its job, as a lost session or a power cut would
    proc.wait()
    # A SIGKILLed trainer in the middle of a write exits (and its flock goes) only when the write returns:
    # under I/O load that takes a moment, and until then the run is rightly "training".
    lock = run_dir / WRITER_LOCK
    deadline = time.time() + 60
    while status.lock_held(lock) and time.time() < deadline:
        time.sleep(0.1)
    assert first.exists() and not (run_dir / "metrics.csv").exists(), "the study was not interrupted"

    plan, source = status.load_plan([config], tmp_path)
    assert source == str(tmp_path / "results/plan.json")
    found = status.study_status(plan, tmp_path, now=time.time() + 3600)  # an hour later: nothing has moved
    [run] = [s for s in found if s.stage == "train"]
    assert {s.state for s in found if s.stage == "descent"} == {"waiting"}
    assert run.state == "stalled" and run.epochs == 3 and 1 <= run.epoch < 3
    assert run.values["train_loss"] > 0 and run.seconds_per_epoch > 0
    done_before = run.epoch

    # --nolock: the killed Snakemake's lock is stale (instead of a separate --unlock run)
    snakemake(tmp_path, config, "--cores", "1", "--rerun-incomplete", "--nolock", *targets)
    [run] = [s for s in status.study_status(plan, tmp_path) if s.stage == "train"]
    assert (run.state, run.epoch, run.stale) == ("done", 3, "")
    assert json.loads((run_dir / "run.json").read_text())["resumed_after_epoch"] >= done_before
    assert_one_event_per_epoch(run_dir, PROBLEM, 3)
