"""Finished (or half-finished) runs of a study without training them (issue 38): every training run of a plan
gets the files the trainer writes, in the real layout (optimbench.runs' templates), with the trainer's columns
(optimbench.train.metric_columns) and run.json keys, and plausible curves: per run a metric moves from a start
to an end value epoch by epoch, each optimizer's end drawn once and each seed's around it. Used to time status,
aggregation, figures and the report at 200 … 5,000 runs (benchmarks/report_scale.py); never a mock of the code
under test, which reads these files as it reads a real study's.

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/synthetic_runs.py config.yaml large.yaml --workdir /tmp/big \
        [--finished 0.5 --started 0.1]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import zlib
from pathlib import Path

import numpy as np

from optimbench import problems as registry
from optimbench.config import load_yaml_files, validate
from optimbench.io import write_json
from optimbench.plan import cache_file, cached_plan
from optimbench.runs import CHECKPOINT, TRAIN_LOG, Plan, StudyProblem, TrainRun
from optimbench.train import metric_columns

EPOCH_SECONDS = 30.0


def _rng(*parts) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(json.dumps(parts).encode()))


def _curve(metric_name: str, problem: StudyProblem, optimizer: str, seed: int, epochs: int) -> np.ndarray:
    """A metric's value per epoch: from its start to an optimizer's end (drawn per optimizer), seed noise."""
    metric = problem.metrics.get(metric_name)
    higher = metric.higher_is_better if metric else False
    if metric_name.endswith("_acc"):
        start, end = 0.1, 0.55 + 0.4 * _rng(problem.name, optimizer).random()
    else:
        start = 2.3 if "loss" in metric_name else 300.0
        end = start * (0.2 + 0.5 * _rng(problem.name, optimizer, metric_name).random())
    end += (0.02 if higher else 0.02 * start) * _rng(problem.name, optimizer, seed, metric_name).standard_normal()
    values = start + (end - start) * (1 - np.exp(-3 * np.arange(1, epochs + 1) / epochs))
    return np.clip(values, 0.0, 1.0) if metric_name.endswith("_acc") else np.abs(values)


def metrics_rows(run: TrainRun, problem: StudyProblem, epochs: int) -> list[dict]:
    """metrics.csv's rows of `epochs` epochs of a run, the trainer's columns, validation columns empty."""
    columns = metric_columns(registry.get(run.problem))
    rows = []
    curves = {c: _curve(c, problem, run.optimizer, run.seed, epochs) for c in columns
              if c.startswith(("train_", "test_"))}
    for k in range(epochs):
        row = {c: (curves[c][k] if c in curves else math.nan) for c in columns if "_" in c and c.split("_")[0] in
               ("train", "val", "test")}
        rows.append({"epoch": k + 1, **row, "lr": run.spec["optimizer"].get("kwargs", {}).get("lr", 0.001),
                     "momentum": 0.9, "epoch_seconds": EPOCH_SECONDS, "eval_seconds": 2.0,
                     "samples_per_second": 1000.0, "diverged": False})
    return rows


def run_info(run: TrainRun, epochs: int) -> dict:
    """run.json as the trainer writes it (optimbench.train.run), for a CPU run."""
    return {"spec": run.spec, "spec_hash": f"{zlib.crc32(json.dumps(run.spec, sort_keys=True).encode()):08x}",
            "problem": run.problem, "primary_metric": registry.get(run.problem).primary, "kind": "synthetic",
            "versions": {"python": "3.11", "torch": "2.0"}, "device": "cpu", "device_name": "cpu",
            "threads": run.spec.get("threads", 1), "channels_last": False, "channels_last_reason": "synthetic",
            "bf16": False, "bf16_reason": "synthetic", "compile_mode": None, "compile_reason": "synthetic",
            "cpu": "synthetic", "inputs": None, "input_mean_std": None, "parameters": 1000, "steps_per_epoch": 10,
            "train_images": 1000, "test_images": 300, "resumed_after_epoch": None, "diverged": False,
            "startup_seconds": 4.0, "diverged_epoch": None, "epochs_completed": epochs, "git_commit": None,
            "started": "2026-12-08T00:00:00", "finished": "2026-12-08T01:00:00", "peak_host_mb": 900.0,
            "peak_gpu_mb": None, "mem_mb": 2000, "job_seconds": 4.0 + epochs * (EPOCH_SECONDS + 2.0)}


def write_runs(plan: Plan, workdir, finished: float = 1.0, started: float = 0.0) -> tuple[int, int]:
    """Write the first `finished` fraction of the plan's training runs as finished (metrics.csv, run.json),
    the next `started` fraction as started (a checkpoint and a log line); (finished, started) counts."""
    root, problems = Path(workdir), plan.problems
    n_done, n_started = round(finished * len(plan.train_runs)), round(started * len(plan.train_runs))
    for i, run in enumerate(plan.train_runs[:n_done + n_started]):
        folder = root / run.dir
        folder.mkdir(parents=True, exist_ok=True)
        log = root / TRAIN_LOG.format(results=plan.results_dir, problem=run.problem, optimizer=run.optimizer,
                                      seed=run.seed)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("epoch 1\n")
        if i >= n_done:
            (folder / CHECKPOINT).write_bytes(b"synthetic")
            continue
        epochs = run.spec["epochs"]
        write_json(folder / "run.json", run_info(run, epochs))
        rows = metrics_rows(run, problems[run.problem], epochs)
        with open(folder / "metrics.csv", "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return n_done, n_started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="config.yaml, then override files")
    parser.add_argument("--workdir", type=Path, default=Path("."))
    parser.add_argument("--finished", type=float, default=1.0, help="fraction of the runs written finished")
    parser.add_argument("--started", type=float, default=0.0, help="fraction written started (after those)")
    args = parser.parse_args(argv)
    config = validate(load_yaml_files(args.configs), build=False)
    plan, _ = cached_plan(config, cache_file(config, args.workdir))
    done, started = write_runs(plan, args.workdir, args.finished, args.started)
    print(f"{done} finished and {started} started runs of {len(plan.train_runs)} under {args.workdir}")


if __name__ == "__main__":
    main()
