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

The records are TensorBoard's own (its protobuf messages and its TFRecord writer, tensorboard.summary.writer):
not torch.utils.tensorboard, whose import costs seconds (it loads torch's whole tracing stack), nor its
SummaryWriter's append-only file, which a kill can leave with a torn last record and a resume with
repeated steps.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from optimbench.io import atomic_path

EVENT_FILE = "events.out.tfevents.{epoch:06d}.optimbench"  # one epoch's events in a run's folder
EVENT_PATTERN = re.compile(r"^events\.out\.tfevents\.(\d{6})\.optimbench$")
SKIPPED = ("epoch", "diverged")  # row entries that are no curve (the step; a flag)


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
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        writer = RecordWriter(fh)
        for record in records:
            writer.write(record.SerializeToString())
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
