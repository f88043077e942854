"""optimbench.events: a run's TensorBoard event files, read back with TensorBoard's own EventAccumulator.
A SIGKILLed and resumed run: test_checkpoints.test_a_killed_run_resumes_and_matches_an_uninterrupted_one."""

import json
import math
import random
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator as PluginEventAccumulator
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.util import tensor_util

from optimbench import events, train

from helpers import assert_one_event_per_epoch, curves, run_interrupted_after

ROW = {"epoch": 3, "train_loss": 0.5, "train_acc": 0.75, "val_loss": math.nan, "val_acc": math.nan,
       "test_loss": 0.625, "test_acc": 0.5, "lr": 0.125, "momentum": math.nan, "epoch_seconds": 2.5,
       "eval_seconds": 0.25, "samples_per_second": 100.0, "diverged": False}


def test_an_epoch_is_one_event_per_finite_column_tagged_by_problem(tmp_path):
    path = events.write_epoch(tmp_path, "mnist-mlp", ROW, wall_time=1000.0, attempt=17)
    assert path.name == "events.out.tfevents.00000000000000000017.000003.optimbench"
    expected = {f"mnist-mlp/{k}": [(3, v)] for k, v in ROW.items()
                if k not in ("epoch", "diverged") and not math.isnan(v)}
    assert curves(tmp_path) == expected  # all values are exact in float32
    assert "mnist-mlp/val_loss" not in curves(tmp_path) and "mnist-mlp/momentum" not in curves(tmp_path)


def rows(*losses) -> list[dict]:
    return [{**ROW, "epoch": epoch, "train_loss": loss} for epoch, loss in enumerate(losses, start=1)]


def test_a_new_attempt_rewrites_the_epochs_done_under_new_names_and_empties_the_old_ones(tmp_path):
    """A run restarted at epoch 1 (a checkpoint of another configuration, or none) keeps no curve of the
    earlier session; a resumed one has its epochs done under the new attempt's names, which sort after every
    earlier name (TensorBoard's DirectoryWatcher reads names in order, only forward). The previous attempt's
    files are emptied (TensorBoard's Python loader may be reading one), older ones deleted, and files of the
    earlier one-file-per-epoch format too."""
    (tmp_path / "events.out.tfevents.000004.optimbench").write_bytes(b"x")  # before attempts
    old = events.start_attempt(tmp_path, "p", [], wall_time=1.0)
    assert (tmp_path / "events.out.tfevents.000004.optimbench").stat().st_size == 0
    for row in rows(9.0, 9.0, 9.0):
        old.write(row, wall_time=1.0)
    old_names = {p.name for p in tmp_path.iterdir()}
    new = events.start_attempt(tmp_path, "p", rows(0.25), wall_time=2.0)
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    new_names = {name for name in sizes if name not in old_names}
    assert new.number > old.number and len(new_names) == 2 and min(new_names) > max(old_names)
    assert {name for name, size in sizes.items() if size} == new_names  # nothing of the old curve is left
    assert "events.out.tfevents.000004.optimbench" not in sizes
    assert list(events.epoch_files(tmp_path)) == [1] and list(events.attempt_files(tmp_path))[-1] == new.number
    assert curves(tmp_path)["p/train_loss"] == [(1, 0.25)]
    events.start_attempt(tmp_path, "p", [], wall_time=3.0)  # the attempt before the previous one: deleted
    assert not old_names & {p.name for p in tmp_path.iterdir()} and events.epoch_files(tmp_path) == {}


def plugin_curve(accumulator, tag) -> list[tuple[int, float]]:
    """A scalar curve as TensorBoard's plugin accumulator (its `--load_fast=false` loader) holds it."""
    return [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]


@pytest.mark.parametrize("polled_last_epoch", [True, False], ids=["caught-up", "one-epoch-behind"])
def test_an_open_tensorboard_shows_a_rerun_runs_new_curve(tmp_path, polled_last_epoch):
    """The reported case (tensorboard#349): TensorBoard, open on a run's folder while it reruns, kept the old
    curve because the new files had the old names. Both of TensorBoard's Python loaders, kept open across the
    rerun (and a resume after it), show the new curve only, also when the old run's last epoch came after
    TensorBoard's last poll (a run killed just after an epoch: the loader still on an earlier file)."""
    legacy, plugin = EventAccumulator(str(tmp_path)), PluginEventAccumulator(str(tmp_path))
    first = events.start_attempt(tmp_path, "p", [], wall_time=1.0)
    for row in rows(9.0, 8.0, 7.0):
        first.write(row, wall_time=1.0)
        if row["epoch"] < 3 or polled_last_epoch:
            legacy.Reload(), plugin.Reload()  # TensorBoard polls as the run trains
    assert [e.step for e in legacy.Scalars("p/train_loss")] == [1, 2, 3][:3 if polled_last_epoch else 2]
    first_names = {p.name for p in tmp_path.iterdir()}
    rerun = events.start_attempt(tmp_path, "p", [], wall_time=2.0)  # a rerun: a fresh start, no epoch done
    legacy.Reload(), plugin.Reload()
    assert legacy.Scalars("p/train_loss") == [] and plugin.Tensors("p/train_loss") == []  # its START: purged
    for row in rows(0.5, 0.25):
        rerun.write(row, wall_time=2.0)
        legacy.Reload(), plugin.Reload()
    assert [(e.step, e.value) for e in legacy.Scalars("p/train_loss")] == [(1, 0.5), (2, 0.25)]
    assert plugin_curve(plugin, "p/train_loss") == [(1, 0.5), (2, 0.25)]
    rerun_names = {p.name for p in tmp_path.iterdir()} - first_names
    again = events.start_attempt(tmp_path, "p", rows(0.5, 0.25), wall_time=3.0)  # a resume: the epochs done
    again.write(rows(0.5, 0.25, 0.125)[-1], wall_time=3.0)
    legacy.Reload(), plugin.Reload()
    assert [(e.step, e.value) for e in legacy.Scalars("p/train_loss")] == [(1, 0.5), (2, 0.25), (3, 0.125)]
    assert plugin_curve(plugin, "p/train_loss") == [(1, 0.5), (2, 0.25), (3, 0.125)]
    assert not first_names & {p.name for p in tmp_path.iterdir()}  # two attempts ago: deleted
    assert all((tmp_path / name).stat().st_size == 0 for name in rerun_names)  # the previous one: emptied


def test_a_trainer_rerun_replaces_the_curve_of_an_open_tensorboard(tiny_spec, tmp_path):
    """The same through the trainer: a run, then a rerun with another lr (another spec: a fresh start); an
    accumulator open across both shows the rerun's metrics.csv, every event file of the first run is gone and
    the rerun's names are new."""
    spec = {**tiny_spec, "epochs": 2}
    accumulator = EventAccumulator(str(tmp_path))
    train.run(spec, tmp_path)
    accumulator.Reload()
    first = {p.name for p in tmp_path.glob("events.out.tfevents.*")}
    before = [(e.step, e.value) for e in accumulator.Scalars(f"{spec['problem']}/train_loss")]
    train.run({**spec, "optimizer": {"class": "SGD", "kwargs": {"lr": 0.01}}}, tmp_path)
    accumulator.Reload()
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    loaded = [(e.step, e.value) for e in accumulator.Scalars(f"{spec['problem']}/train_loss")]
    assert loaded == list(zip(metrics["epoch"], metrics["train_loss"].astype(np.float32).tolist())) != before
    second = {p.name for p in tmp_path.glob("events.out.tfevents.*") if p.stat().st_size}
    assert len(first) == len(second) == 3 and not first & second and min(second) > max(first)  # START, 2 epochs
    assert all((tmp_path / name).stat().st_size == 0 for name in first)  # the first run's curve is gone
    assert_one_event_per_epoch(tmp_path, spec["problem"], 2)


def test_a_run_stopped_between_checkpoint_and_events_resumes_with_one_event_per_epoch(tiny_spec, tmp_path,
                                                                                    monkeypatch):
    spec = {**tiny_spec, "epochs": 3}
    run_interrupted_after(spec, tmp_path / "run", 1, monkeypatch)  # checkpoint of epoch 1 written, its events not
    assert events.epoch_files(tmp_path / "run") == {}
    train.run(spec, tmp_path / "run")
    assert_one_event_per_epoch(tmp_path / "run", spec["problem"], 3)


def test_crc32c_is_tensorboards():
    """The known check value (RFC 3720's polynomial), and tensorboard's own (masked) implementation on
    random bytes of every length up to 64."""
    assert events.crc32c(b"123456789") == 0xE3069283
    data = random.Random(0).randbytes(64)
    assert [events.masked_crc32c(data[:n]) for n in range(65)] == [masked_crc32c(data[:n]) for n in range(65)]


def served_curve(port: int, run: str, tag: str) -> list[tuple[int, float]] | None:
    """The curve a running TensorBoard serves (its scalars plugin's HTTP route), None while it starts."""
    url = f"http://localhost:{port}/data/plugin/scalars/scalars?run={run}&tag={tag}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return [(step, value) for _, step, value in json.load(response)]
    except (OSError, ValueError):
        return None


def wait_for(port: int, expected: list, seconds: float = 60.0) -> list | None:
    deadline, seen = time.time() + seconds, None
    while time.time() < deadline and seen != expected:
        time.sleep(0.5)
        seen = served_curve(port, "run", "p/train_loss")
    return seen


@pytest.mark.parametrize("load_fast", ["true", "false"], ids=["rust-data-server", "python-loader"])
def test_a_running_tensorboard_serves_a_rerun_runs_new_curve(tmp_path, load_fast):
    """`tensorboard --logdir` itself, open across a rerun (both of its loaders: the Rust data server of
    --load_fast and the Python one), serves the new curve; it kept serving the old one before (tensorboard#349)."""
    run = tmp_path / "run"
    first = events.start_attempt(run, "p", [], wall_time=1.0)
    for row in rows(9.0, 8.0, 7.0):
        first.write(row, wall_time=1.0)
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--port", str(port),
                               "--load_fast", load_fast, "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(port, [(1, 9.0), (2, 8.0), (3, 7.0)]) == [(1, 9.0), (2, 8.0), (3, 7.0)]
        rerun = events.start_attempt(run, "p", [], wall_time=2.0)
        for row in rows(0.5, 0.25):
            rerun.write(row, wall_time=2.0)
        assert wait_for(port, [(1, 0.5), (2, 0.25)]) == [(1, 0.5), (2, 0.25)]
    finally:
        server.terminate()
        server.wait(timeout=30)
