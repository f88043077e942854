"""A run's live curves as TensorBoard event files: one file per epoch in the run's folder, written
atomically when the epoch ends, so `tensorboard --logdir results/<study>` shows every run as it trains.

One file per epoch (`events.out.tfevents.<epoch, 6 digits>.optimbench`) holds exactly that epoch's scalars
at step = epoch: a killed run loses no file it had finished and never holds a half-written one (each is
written to a temp file and renamed, optimbench.io), and a resumed run rewrites its epochs by number, so
no step is ever recorded twice (`sync_epochs`). Files sort by epoch, the order TensorBoard reads a run's
files in. Tags are `<problem>/<column>` (metrics.csv's columns: train_loss, test_acc, lr, momentum,
epoch_seconds, ...): TensorBoard groups the charts by problem, and each chart overlays the runs of that
problem (run = the folder: train/<problem>/<optimizer>/seed<k>, tune/.../trial<k>, tuned/train/...), i.e.
its optimizers and seeds side by side.

The messages are TensorBoard's own protobuf classes (tensorboard.compat.proto). Not torch.utils.tensorboard,
whose import costs seconds (it loads torch's tracing stack), nor its SummaryWriter's append-only file, which a
kill can leave with a torn last record and a resume with repeated steps. The TFRecord framing (length,
payload, each with a masked CRC-32C) is written here (`tf_record`) rather than by tensorboard's
RecordWriter: importing that module loads tensorboard's v1 summary API, absl flags and a TensorFlow stub,
≈ 150 ms of every training job's start-up against ≈ 50 ms for the protos alone (python -X importtime, after
torch). Format: tensorflow/core/lib/io/record_writer.cc; CRC-32C: RFC 3720 §B.4 (Castagnoli polynomial,
reflected 0x82F63B78), masked as tensorflow/core/lib/hash/crc32c.h `Mask`.
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2

from optimbench.io import atomic_path

EVENT_FILE = "events.out.tfevents.{epoch:06d}.optimbench"  # one epoch's events in a run's folder
EVENT_PATTERN = re.compile(r"^events\.out\.tfevents\.(\d{6})\.optimbench$")
SKIPPED = ("epoch", "diverged", "start_loss")  # row entries that are no curve (the step; a flag; a reference)


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, as an unsigned 32-bit int; crc32c(b"123456789") = 0xE3069283."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: the CRC-32C rotated right by 15 bits plus 0xA282EAD8 (mod 2^32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tf_record(payload: bytes) -> bytes:
    """One TFRecord: uint64 length, its masked CRC, the payload, its masked CRC (little-endian)."""
    length = struct.pack("<Q", len(payload))
    return (length + struct.pack("<I", masked_crc32c(length)) + payload
            + struct.pack("<I", masked_crc32c(payload)))


def epoch_files(run_dir) -> dict[int, Path]:
    """{epoch: its event file} of the run's folder, in epoch order ({} for a missing folder)."""
    folder = Path(run_dir)
    if not folder.is_dir():
        return {}
    found = {int(m.group(1)): folder / m.group(0) for m in map(EVENT_PATTERN.match, (p.name for p in folder.iterdir()))
             if m}
    return dict(sorted(found.items()))


def scalars(row: dict) -> dict[str, float]:
    """The row's curves: every finite number but the epoch and the diverged flag (a split not evaluated
    that epoch is NaN in metrics.csv and has no point here; so has an optimizer without momentum)."""
    values = {k: float(v) for k, v in row.items() if k not in SKIPPED and v is not None}
    return {k: v for k, v in values.items() if math.isfinite(v)}


def write_epoch(run_dir, problem: str, row: dict, wall_time: float) -> Path:
    """Write the event file of row["epoch"] (a metrics.csv row) atomically: a file-version record, then one
    event at step = epoch with every `scalars(row)` value tagged `<problem>/<column>`; wall_time in Unix
    seconds. Returns the file's path."""
    epoch = int(row["epoch"])
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=f"{problem}/{name}", simple_value=value)
                                         for name, value in scalars(row).items()])
    records = [event_pb2.Event(wall_time=wall_time, step=epoch, file_version="brain.Event:2"),
               event_pb2.Event(wall_time=wall_time, step=epoch, summary=summary)]
    path = Path(run_dir) / EVENT_FILE.format(epoch=epoch)
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(tf_record(record.SerializeToString()) for record in records))
    return path


def sync_epochs(run_dir, problem: str, rows: list[dict], wall_time: float) -> None:
    """Make the folder's event files those of `rows` (the epochs done, e.g. a checkpoint's): delete the files
    of later epochs (a run restarted from scratch or from an earlier checkpoint) and write the missing ones
    (a kill between the checkpoint and its event file). Called when a run starts or resumes."""
    done = {int(row["epoch"]): row for row in rows}
    for epoch, path in epoch_files(run_dir).items():
        if epoch not in done:
            path.unlink(missing_ok=True)
    existing = epoch_files(run_dir)
    for epoch, row in done.items():
        if epoch not in existing:
            write_epoch(run_dir, problem, row, wall_time)
