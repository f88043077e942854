"""optimbench.events: a run's TensorBoard event files, read back with TensorBoard's own EventAccumulator.
A SIGKILLed and resumed run: test_checkpoints.test_a_killed_run_resumes_and_matches_an_uninterrupted_one."""

import math
import random

from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

from optimbench import events, train

from helpers import assert_one_event_per_epoch, curves, run_interrupted_after

ROW = {"epoch": 3, "train_loss": 0.5, "train_acc": 0.75, "val_loss": math.nan, "val_acc": math.nan,
       "test_loss": 0.625, "test_acc": 0.5, "lr": 0.125, "momentum": math.nan, "epoch_seconds": 2.5,
       "eval_seconds": 0.25, "samples_per_second": 100.0, "diverged": False}


def test_an_epoch_is_one_event_per_finite_column_tagged_by_problem(tmp_path):
    path = events.write_epoch(tmp_path, "mnist-mlp", ROW, wall_time=1000.0)
    assert path.name == "events.out.tfevents.000003.optimbench"
    expected = {f"mnist-mlp/{k}": [(3, v)] for k, v in ROW.items()
                if k not in ("epoch", "diverged") and not math.isnan(v)}
    assert curves(tmp_path) == expected  # all values are exact in float32
    assert "mnist-mlp/val_loss" not in curves(tmp_path) and "mnist-mlp/momentum" not in curves(tmp_path)


def test_sync_drops_later_epochs_and_writes_missing_ones(tmp_path):
    """A run restarted at epoch 1 (a checkpoint of another configuration, or none) keeps no curve of the
    earlier session past its epochs; an epoch whose file a kill prevented is written from its row."""
    for epoch in (1, 2, 3):
        events.write_epoch(tmp_path, "p", {**ROW, "epoch": epoch, "train_loss": 9.0}, wall_time=1.0)
    (tmp_path / f"{events.EVENT_FILE.format(epoch=1)}").unlink()
    events.sync_epochs(tmp_path, "p", [{**ROW, "epoch": 1, "train_loss": 0.25}], wall_time=2.0)
    assert list(events.epoch_files(tmp_path)) == [1]
    assert curves(tmp_path)["p/train_loss"] == [(1, 0.25)]


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
