"""Checkpoints: the run's fingerprint, a checkpoint resumes only its own run (issue 13), a killed run
resumes to the uninterrupted one's results, a damaged checkpoint (issue 14.6)."""

import json
import os
import signal
import socket
import subprocess
import time

import pandas as pd
import pytest
import torch

from optimbench import checkpoints, train

from helpers import (
    PYTHON,
    ROOT,
    assert_one_event_per_epoch,
    kill_after_first_checkpoint,
    run_env,
    run_interrupted_after,
)

TIMING = ["epoch_seconds", "eval_seconds", "samples_per_second"]


def test_spec_hash_changes_with_every_setting_that_changes_results(tiny_spec):
    base = checkpoints.spec_hash(tiny_spec)
    assert checkpoints.spec_hash(dict(reversed(tiny_spec.items()))) == base  # key order does not matter
    assert checkpoints.spec_hash({**tiny_spec, "compile": "on"}) == base  # how, not what, is computed
    assert checkpoints.spec_hash({**tiny_spec, "threads": 2}) != base  # a CPU run's numbers change with them
    changed = {key: ("other" if isinstance(value, str) else {"x": 1} if isinstance(value, dict) else value + 1)
               for key, value in tiny_spec.items()}
    for key, value in {**changed, "lr_schedule": "cosine", "deterministic": False}.items():
        assert checkpoints.spec_hash({**tiny_spec, key: value}) != base, key
    for kwargs in ({"lr": 0.01, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.8}):
        assert checkpoints.spec_hash({**tiny_spec, "optimizer": {"class": "SGD", "kwargs": kwargs}}) != base


@pytest.mark.parametrize("change", [
    {"seed": 1}, {"optimizer": {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}}}, {"lr_schedule": "cosine"},
], ids=["seed", "lr", "lr_schedule"])
def test_a_run_ignores_the_checkpoint_of_another_configuration(tiny_spec, tmp_path, monkeypatch, capfd, change):
    """Run A's checkpoint after epoch 1 lies in B's folder: B starts from scratch and equals B run alone;
    A itself resumes from it (so only the configuration check keeps B from using it)."""
    spec_a, spec_b = tiny_spec, {**tiny_spec, **change}
    save = checkpoints.save_checkpoint

    def keep_epoch_one(path, state):
        save(path, state)
        if state["epoch"] == 1:
            for folder in ("b", "a-again"):
                save(tmp_path / folder / checkpoints.CHECKPOINT, state)

    monkeypatch.setattr(checkpoints, "save_checkpoint", keep_epoch_one)
    train.run(spec_a, tmp_path / "a", threads=1)
    monkeypatch.undo()
    capfd.readouterr()

    b = train.run(spec_b, tmp_path / "b", threads=1)
    assert "belongs to another configuration" in capfd.readouterr().err
    assert json.loads((tmp_path / "b" / "run.json").read_text())["resumed_after_epoch"] is None
    alone = train.run(spec_b, tmp_path / "b-alone", threads=1)
    pd.testing.assert_frame_equal(b.drop(columns=TIMING), alone.drop(columns=TIMING), check_exact=True)
    train.run(spec_a, tmp_path / "a-again", threads=1)
    assert json.loads((tmp_path / "a-again" / "run.json").read_text())["resumed_after_epoch"] == 1


@pytest.mark.parametrize("optimizer", [
    {"class": "SGD", "kwargs": {"lr": 0.05, "momentum": 0.9}},
    {"class": "Adam", "kwargs": {"lr": 1e-3}, "demon": True},  # Demon's step count is resumed too
], ids=["SGD", "DemonAdam"])
def test_a_killed_run_resumes_and_matches_an_uninterrupted_one(tiny_spec, tmp_path, optimizer):
    spec = {**tiny_spec, "epochs": 6, "train_subset": 256, "optimizer": optimizer}
    cmd, checkpoint, done_before = kill_after_first_checkpoint(spec, tmp_path, 6)
    assert checkpoint.name == checkpoints.CHECKPOINT

    resumed = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, check=True)
    assert f"resuming from {checkpoint} after epoch {done_before}" in resumed.stderr
    info = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert info["resumed_after_epoch"] == done_before

    uninterrupted = train.run(spec, tmp_path / "straight", threads=1)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "killed" / "metrics.csv").drop(columns=TIMING),
                                  uninterrupted.drop(columns=TIMING), check_exact=True)
    a = torch.load(tmp_path / "killed" / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "straight" / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert not checkpoint.exists()
    assert_one_event_per_epoch(tmp_path / "killed", spec["problem"], 6)  # TensorBoard's curves: no step twice


def test_a_checkpoint_of_another_configuration_is_ignored(tiny_spec, tmp_path):
    train.run({**tiny_spec, "epochs": 1}, tmp_path / "x", threads=1)
    fake = {"spec_hash": "another", "epoch": 1}
    checkpoints.save_checkpoint(tmp_path / "y" / checkpoints.CHECKPOINT, fake)
    metrics = train.run(tiny_spec, tmp_path / "y", threads=1)
    assert len(metrics) == 2


def test_a_truncated_checkpoint_names_the_file_and_the_way_out(tiny_spec, tmp_path, monkeypatch):
    run_interrupted_after(tiny_spec, tmp_path, 1, monkeypatch)
    checkpoint = tmp_path / checkpoints.CHECKPOINT
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    for _ in range(2):  # every rerun refuses: no silent restart
        with pytest.raises(checkpoints.CheckpointError) as info:
            train.run(tiny_spec, tmp_path, threads=1)
        message = str(info.value)
        assert f"checkpoint {checkpoint} cannot be read (RuntimeError: PytorchStreamReader failed" in message
        assert f"Delete it to restart this run from epoch 1 (rm '{checkpoint}'), or delete the run's folder " \
               f"'{tmp_path}'" in message
        assert not (tmp_path / "metrics.csv").exists() and checkpoint.exists()
    checkpoint.unlink()  # the way out works
    assert len(train.run(tiny_spec, tmp_path, threads=1)) == 2


def test_spec_hash_is_16_hex_digits_of_the_sha256_of_the_sorted_json_without_compile():
    import hashlib
    spec = {"seed": 3, "lr": 0.1, "threads": 4, "compile": "on", "optimizer": {"b": 1, "a": 2}}
    text = '{"lr": 0.1, "optimizer": {"a": 2, "b": 1}, "seed": 3, "threads": 4}'  # sorted keys, json.dumps' separators
    assert checkpoints.spec_hash(spec) == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert checkpoints.spec_hash({"compile": 1}) == hashlib.sha256(b"{}").hexdigest()[:16]


def test_the_random_states_restore_every_generator():
    import random

    import numpy as np
    gen = torch.Generator().manual_seed(5)
    states = checkpoints.rng_states(gen)
    assert set(states) == {"gen", "torch", "numpy", "random"} | ({"cuda"} if torch.cuda.is_available() else set())

    def draw():
        return (torch.rand(3, generator=gen).tolist(), torch.rand(3).tolist(), np.random.rand(3).tolist(),
                [random.random() for _ in range(3)])

    first = draw()
    checkpoints.restore_rng(states, gen)
    assert draw() == first
    checkpoints.restore_rng({k: v for k, v in states.items() if k != "cuda"}, gen)  # no CUDA state: the rest
    assert draw() == first


def test_a_checkpoint_is_saved_and_read_back_and_one_without_its_keys_is_refused(tmp_path):
    path = tmp_path / "run" / checkpoints.CHECKPOINT
    state = {"spec_hash": "abc", "epoch": 2, "rows": [{"epoch": 1}], "w": torch.arange(3.0)}
    checkpoints.save_checkpoint(path, state)
    read = checkpoints.read_checkpoint(path, "cpu")
    assert read.keys() == state.keys() and read["rows"] == [{"epoch": 1}] and torch.equal(read["w"], state["w"])
    for saved, missing in (({"epoch": 1}, "['spec_hash']"), ({"spec_hash": "a"}, "['epoch']"),
                           ([1, 2], "['spec_hash', 'epoch']")):
        checkpoints.save_checkpoint(path, saved)
        with pytest.raises(checkpoints.CheckpointError,
                           match=rf"^checkpoint {path} is not one of this trainer's checkpoints \(no \{missing}\)\. "
                                 r"Delete it to restart this run from epoch 1"):
            checkpoints.read_checkpoint(path, "cpu")


def test_resume_loads_only_its_own_runs_checkpoint_and_returns_its_rows_and_epoch(tmp_path, capfd):
    class Training:
        loaded = None

        def load(self, ckpt):
            self.loaded = ckpt

    path = tmp_path / checkpoints.CHECKPOINT
    training = Training()
    assert checkpoints.resume(path, "mine", training, "cpu") == ([], 0) and training.loaded is None
    checkpoints.save_checkpoint(path, {"spec_hash": "other", "epoch": 3, "rows": [{"epoch": 1}]})
    assert checkpoints.resume(path, "mine", training, "cpu") == ([], 0) and training.loaded is None
    assert capfd.readouterr().err == f"ignoring {path}: it belongs to another configuration\n"
    checkpoints.save_checkpoint(path, {"spec_hash": "mine", "epoch": 3, "rows": [{"epoch": 1}, {"epoch": 2}]})
    assert checkpoints.resume(path, "mine", training, "cpu") == ([{"epoch": 1}, {"epoch": 2}], 3)
    assert training.loaded["spec_hash"] == "mine"
    assert capfd.readouterr().err == f"resuming from {path} after epoch 3\n"
    checkpoints.save_checkpoint(path, {"spec_hash": "mine", "epoch": 1, "rows": [], "w": torch.ones(2)})
    checkpoints.resume(path, "mine", training, "meta")
    assert training.loaded["w"].device.type == "meta"  # loaded onto the run's device


def test_the_cuda_generators_are_saved_and_restored_only_where_cuda_is_available(monkeypatch):
    restored = []
    monkeypatch.setattr(checkpoints.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(checkpoints.torch.cuda, "get_rng_state_all", lambda: ["cuda state"])
    monkeypatch.setattr(checkpoints.torch.cuda, "set_rng_state_all", restored.append)
    gen = torch.Generator().manual_seed(1)
    states = checkpoints.rng_states(gen)
    assert states["cuda"] == ["cuda state"]
    checkpoints.restore_rng(states, gen)
    assert restored == [["cuda state"]]
    checkpoints.restore_rng({k: v for k, v in states.items() if k != "cuda"}, gen)  # a CPU run's checkpoint
    assert restored == [["cuda state"]]
    monkeypatch.setattr(checkpoints.torch.cuda, "is_available", lambda: False)
    checkpoints.restore_rng(states, gen)  # a GPU run's checkpoint resumed without CUDA: its CUDA state is left
    assert restored == [["cuda state"]]


def test_a_checkpoint_is_read_onto_the_runs_device(tmp_path):
    path = tmp_path / checkpoints.CHECKPOINT
    checkpoints.save_checkpoint(path, {"spec_hash": "a", "epoch": 1, "w": torch.ones(2)})
    assert checkpoints.read_checkpoint(path, "meta")["w"].device.type == "meta"  # map_location = the device


def test_a_run_folder_has_one_writer_a_second_trainer_refuses_until_the_first_is_gone(tiny_spec, tmp_path):
    """Issue 27.8: after `kill -9` of Snakemake its trainer still writes; a rerun's trainer on the same folder
    refuses (naming the holder's PID and host, and what to do) and, once the first is killed, resumes."""
    spec = {**tiny_spec, "epochs": 6, "train_subset": 256}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "run"
    cmd = [PYTHON, str(ROOT / "scripts" / "train.py"), "--spec", str(tmp_path / "spec.json"), "--out", str(out),
           "--threads", "1"]
    first = subprocess.Popen(cmd, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / checkpoints.CHECKPOINT).exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)  # still alive, mid-run: as a trainer Snakemake's kill left behind
        assert first.poll() is None and not (out / "metrics.csv").exists()
        second = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=120)
        assert second.returncode != 0
        assert f"PID {first.pid} on host {socket.gethostname()}" in second.stderr, second.stderr[-2000:]
        assert "another trainer is writing" in second.stderr and "kill" in second.stderr
        assert not (out / "metrics.csv").exists()
    finally:
        first.kill()
        first.wait()
    done = torch.load(out / checkpoints.CHECKPOINT, weights_only=False)["epoch"]
    resumed = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"after epoch {done}" in resumed.stderr
    assert len(pd.read_csv(out / "metrics.csv")) == 6


def test_the_writer_lock_is_released_when_its_holder_returns_or_fails(tmp_path):
    with checkpoints.writer_lock(tmp_path):
        with pytest.raises(checkpoints.RunFolderLocked, match=f"PID {os.getpid()}"):
            with checkpoints.writer_lock(tmp_path):
                pass
    with pytest.raises(ZeroDivisionError):
        with checkpoints.writer_lock(tmp_path):
            1 / 0
    with checkpoints.writer_lock(tmp_path):  # free again
        pass
