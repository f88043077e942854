"""A run's live curves as TensorBoard event files: one file per epoch in the run's folder, written
atomically when the epoch ends, so `tensorboard --logdir results/<study>` shows every run as it trains.

One file per epoch (`events.out.tfevents.<attempt, 20 digits>.<epoch, 6 digits>.optimbench`) holds exactly
that epoch's scalars at step = epoch: a killed run loses no file it had finished and never holds a
half-written one (each is written to a temp file and renamed, optimbench.io). Tags are `<problem>/<column>`
(metrics.csv's columns: train_loss, test_acc, lr, momentum, epoch_seconds, ...): TensorBoard groups the
charts by problem, and each chart overlays the runs of that problem (run = the folder:
train/<problem>/<optimizer>/seed<k>, tune/.../trial<k>, tuned/train/...), i.e. its optimizers and seeds.

Every start of a trainer is a new *attempt* (`start_attempt`), so that an open TensorBoard shows a rerun's
curve, not the old one (tensorboard#349: a file rewritten under a name TensorBoard has read is never read
again). The attempt's files carry a new number, above any in the folder (the start time in ns); its first
file, epoch 000000, holds only a SessionLog START at step 0; the epochs done so far (a resumed run's) are
written again under it; the previous attempt's files are emptied (their names stay one attempt longer) and
older ones deleted. TensorBoard's loaders then show the new curve alone:
- The Python loader (tensorboard/backend/event_processing/directory_watcher.py, DirectoryWatcher: "once the
  source stops writing to a path, it will start writing to a new path that's lexicographically greater and
  never come back"; `_GetNextPath` takes only names greater than the current one) reads a folder's files in
  name order and never returns to one it has passed: an attempt's names sort after every earlier attempt's
  (the fixed-width number), and by epoch within it. What it holds is dropped at the START event: with
  file_version 2 (every file's first record) its accumulators purge every point at that step or later
  (event_accumulator.py and plugin_event_accumulator.py, `_CheckForRestartAndMaybePurge`: TensorBoard's way
  of showing a restarted run). Its reader (tensorflow_stub's, without TensorFlow) reopens the file it is on
  by path at every poll and stops for good when that path is gone (NotFoundError, swallowed by
  DirectoryWatcher.Load while the folder exists): hence the previous attempt's files are emptied, not
  deleted (at its offset an empty file reads as its end, and the loader moves on to the new names).
- The Rust data server (tensorboard-data-server, `--load_fast`) opens each new file name once and never
  reopens a name it knows (data/server/run.rs, `update_file_set`); a point at a step not above its series'
  last preempts that series' points from that step on (data/server/reservoir.rs): the new attempt's epoch 1
  replaces the old curve, tag by tag (a curve the new attempt never writes, a column now NaN, keeps its old
  points there).

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
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2

from optimbench.io import atomic_path

EVENT_FILE = "events.out.tfevents.{attempt:020d}.{epoch:06d}.optimbench"  # one epoch of one attempt
START_EPOCH = 0  # the "epoch" of an attempt's first file: the SessionLog START alone
EVENT_PATTERN = re.compile(r"^events\.out\.tfevents\.(\d{20})\.(\d{6})\.optimbench$")
EARLIER_PATTERN = re.compile(r"^events\.out\.tfevents\.\d{6}\.optimbench$")  # before attempts (issue 37.9)
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


def attempt_files(run_dir) -> dict[int, dict[int, Path]]:
    """{attempt: {epoch: its event file}} of the run's folder, both in order ({} for a missing folder)."""
    folder = Path(run_dir)
    found: dict[int, dict[int, Path]] = {}
    if folder.is_dir():
        for match in map(EVENT_PATTERN.match, sorted(p.name for p in folder.iterdir())):
            if match:
                found.setdefault(int(match.group(1)), {})[int(match.group(2))] = folder / match.group(0)
    return dict(sorted(found.items()))


def epoch_files(run_dir) -> dict[int, Path]:
    """{epoch: its event file} of the folder's latest attempt, in epoch order, without its START file and
    without emptied files ({} when it has no epoch yet)."""
    attempts = attempt_files(run_dir)
    files = attempts[max(attempts)] if attempts else {}
    return {epoch: path for epoch, path in files.items() if epoch != START_EPOCH and _size(path)}


def _size(path: Path) -> int:
    """The file's size; 0 for one gone since the folder was listed (a trainer starting meanwhile)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def scalars(row: dict) -> dict[str, float]:
    """The row's curves: every finite number but the epoch and the diverged flag (a split not evaluated
    that epoch is NaN in metrics.csv and has no point here; so has an optimizer without momentum)."""
    values = {k: float(v) for k, v in row.items() if k not in SKIPPED and v is not None}
    return {k: v for k, v in values.items() if math.isfinite(v)}


def _write(path: Path, records: list) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(tf_record(record.SerializeToString()) for record in records))
    return path


def write_epoch(run_dir, problem: str, row: dict, wall_time: float, attempt: int = 0) -> Path:
    """Write the event file of row["epoch"] (a metrics.csv row) in `attempt` atomically: a file-version record,
    then one event at step = epoch with every `scalars(row)` value tagged `<problem>/<column>`; wall_time in
    Unix seconds. Returns the file's path. A trainer writes through its Attempt; attempt 0 is for files
    written outside one (tests, tools): any trainer's attempt sorts after it."""
    epoch = int(row["epoch"])
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=f"{problem}/{name}", simple_value=value)
                                         for name, value in scalars(row).items()])
    return _write(Path(run_dir) / EVENT_FILE.format(attempt=attempt, epoch=epoch),
                  [event_pb2.Event(wall_time=wall_time, step=epoch, file_version="brain.Event:2"),
                   event_pb2.Event(wall_time=wall_time, step=epoch, summary=summary)])


class Attempt:
    """One trainer's event files in a run's folder (start_attempt): `write(row, wall_time)` after each epoch."""

    def __init__(self, run_dir, problem: str, number: int):
        self.run_dir, self.problem, self.number = Path(run_dir), problem, number

    def write(self, row: dict, wall_time: float) -> Path:
        return write_epoch(self.run_dir, self.problem, row, wall_time, self.number)


def start_attempt(run_dir, problem: str, rows: list[dict], wall_time: float) -> Attempt:
    """A new attempt of the run (called when a trainer starts or resumes; see the module's docstring): its START
    file, then the epochs done (`rows`, a checkpoint's; none for a fresh run) under its number; then the
    previous attempt's files (or, before attempts, the one-file-per-epoch ones) are emptied and any older
    attempt's deleted, so the folder holds one curve."""
    folder = Path(run_dir)
    before = attempt_files(folder)
    attempt = Attempt(folder, problem, max([time.time_ns(), *(n + 1 for n in before)]))
    _write(folder / EVENT_FILE.format(attempt=attempt.number, epoch=START_EPOCH), [
        event_pb2.Event(wall_time=wall_time, step=START_EPOCH, file_version="brain.Event:2"),
        event_pb2.Event(wall_time=wall_time, step=START_EPOCH,
                        session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))])
    for row in rows:
        attempt.write(row, wall_time)
    earlier = [path for path in folder.iterdir() if EARLIER_PATTERN.match(path.name)]
    if before:
        previous = list(before.pop(max(before)).values())
        older = [*(path for files in before.values() for path in files.values()), *earlier]
    else:
        previous, older = earlier, []
    for path in older:
        path.unlink(missing_ok=True)
    for path in previous:
        if _size(path):
            _write(path, [])  # emptied, not deleted: TensorBoard's Python loader may be reading it
    return attempt
