"""Paths and helpers shared by the tests (the project's root, this venv's tools, Snakemake runs)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def run_env() -> dict:
    """The environment for subprocesses: this interpreter's venv first on PATH, one thread per process."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    env.pop("OPTIMBENCH_STORE", None)  # a user's run store never leaks into a test study (optimbench.store)
    return env


def write_config(path, **sections) -> str:
    path.write_text(yaml.safe_dump(sections))
    return str(path)


def snakemake(workdir, configfile, *args, check=True, timeout=900):
    """Run Snakemake on the project's Snakefile in workdir; returns the CompletedProcess."""
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), *args]
    result = subprocess.run(cmd, env=run_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake run or dry run, as {rule: count}."""
    table = output.split("Job stats:")[1]
    rows = re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)
    return {rule: int(count) for rule, count in rows}


def plan_problem(name: str, **overrides) -> dict:
    """A problem's entry of plan settings["problems"] (as issue 19's contract gives it), built from the
    registry: every {split}_{metric} of train, val and test with its direction and range; `overrides`
    replace keys (target, model, ...)."""
    from optimbench.problems import get

    problem = get(name)
    metrics = [{"name": f"{split}_{m.name}", "higher_is_better": m.higher_is_better, "low": m.low, "high": m.high}
               for split in ("train", "val", "test") for m in problem.task.metric_defs]
    return {"dataset": problem.dataset, "model": problem.model, "kind": problem.kind, "primary": problem.primary,
            "higher_is_better": problem.primary_metric.higher_is_better, "target": problem.target,
            "title": name, "metrics": metrics, **overrides}


def images(n=6, seed=0):
    """n random uint8 images N×C×H×W = n×3×32×32, the same for the same seed."""
    import torch

    return torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def reference_augment(x, flip, offsets):
    """Per image, the torchvision way: flip, zero-pad 4 pixels, crop 32×32 at the offset."""
    import torch

    out = []
    for img, f, oy, ox in zip(x, flip, offsets[0], offsets[1]):
        img = img.flip(2) if f else img
        padded = torch.zeros(3, 40, 40, dtype=img.dtype)
        padded[:, 4:36, 4:36] = img
        out.append(padded[:, oy:oy + 32, ox:ox + 32])
    return torch.stack(out)


class Interrupted(Exception):
    """Raised in place of a kill, right after a checkpoint is written."""


def run_interrupted_after(spec, out, epoch, monkeypatch) -> None:
    """Train `spec` until the checkpoint of `epoch` is written, then stop as a kill would (no metrics.csv)."""
    import pytest

    from optimbench import checkpoints, train

    save = checkpoints.save_checkpoint

    def save_then_stop(path, state):
        save(path, state)
        if state["epoch"] == epoch:
            raise Interrupted

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_then_stop)
    with pytest.raises(Interrupted):
        train.run(spec, out, threads=1)
    monkeypatch.setattr(checkpoints, "save_checkpoint", save)


def assert_identical_runs(a_dir, b_dir, timing_columns) -> None:
    """Two run folders hold bit-identical metrics (timing columns aside) and model weights."""
    import pandas as pd
    import torch

    a_dir, b_dir = Path(a_dir), Path(b_dir)
    pd.testing.assert_frame_equal(pd.read_csv(a_dir / "metrics.csv").drop(columns=timing_columns),
                                  pd.read_csv(b_dir / "metrics.csv").drop(columns=timing_columns), check_exact=True)
    a = torch.load(a_dir / "model.pt", weights_only=False)["model"]
    b = torch.load(b_dir / "model.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in b)


def kill_after_first_checkpoint(spec: dict, folder: Path, epochs: int) -> tuple[list[str], Path, int]:
    """Train `spec` with scripts/train.py into `folder`/killed and SIGKILL it as soon as its first checkpoint
    exists, as a scheduler or a power cut would. Returns (the command, for the resume; the checkpoint; the
    epochs it finished), asserting that it was killed between its first and its last epoch."""
    (folder / "spec.json").write_text(json.dumps(spec))
    cmd = [PYTHON, str(ROOT / "scripts" / "train.py"), "--spec", str(folder / "spec.json"),
           "--out", str(folder / "killed"), "--threads", "1"]
    checkpoint = folder / "killed" / "checkpoint.pt"
    proc = subprocess.Popen(cmd, env=run_env(), stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (folder / "killed" / "metrics.csv").exists(), "the run was not interrupted"
    done_before = torch.load(checkpoint, weights_only=False)["epoch"]
    assert 1 <= done_before < epochs
    return cmd, checkpoint, done_before


def curves(run_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of a run folder's event files, as TensorBoard's EventAccumulator loads them."""
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_one_event_per_epoch(run_dir, problem: str, epochs: int) -> None:
    """Every curve has one point per epoch in which metrics.csv holds a finite value (a tuned run tests only
    after its last epoch), at steps 1..epochs, with metrics.csv's values (float32, TensorBoard's precision)."""
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics["epoch"].tolist() == list(range(1, epochs + 1))
    loaded = curves(run_dir)
    finite = {c: metrics[np.isfinite(metrics[c].astype(float))] for c in metrics.columns
              if c not in ("epoch", "diverged")}
    assert sorted(loaded) == sorted(f"{problem}/{c}" for c, rows in finite.items() if len(rows))
    for column, rows in finite.items():
        points = loaded.get(f"{problem}/{column}", [])
        assert [step for step, _ in points] == rows["epoch"].tolist(), column
        np.testing.assert_array_equal([v for _, v in points], rows[column].to_numpy(np.float32), err_msg=column)
