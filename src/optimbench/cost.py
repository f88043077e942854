"""What the study's runs cost (SPEC §2.10), measured and projected.

A run's cost is its wall time × the share of a device it held (device-seconds: GPU-seconds on CUDA,
CPU core-seconds on the CPU), split into start-up (a fixed cost per run: interpreter, imports, data load,
model build) and its epochs, so that a study of other sizes can be projected from this one's pace.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from optimbench.runs import GROUP_KEYS, TrainRun
from optimbench.tables import read_table

SUMMED = ["epochs", "steps", "train_seconds", "eval_seconds", "job_seconds", "startup_seconds", "device_seconds",
          "startup_device_seconds", "epoch_device_seconds", "runs_over_request"]  # cost_table's sums over runs
PEAKS = ["peak_host_mb", "peak_gpu_mb", "mem_mb"]  # cost_table's maxima over runs
# The step-cost baseline of a problem, the first of these the study ran on it (SGD; else torch's SGD with
# momentum, the Demon paper's SGDM); without either, the problem's fastest optimizer per step.
STEP_BASELINES = ("SGD", "SGDM")


def _number(value) -> float:
    return np.nan if value is None else float(value)


def run_memory(run: TrainRun, info: dict) -> dict:
    """The run's peak memory (MB) and what its job asked for: peak_host_mb (run.json's, the trainer's
    measurement; NaN for runs recorded before it), peak_gpu_mb (run.json's; NaN off CUDA or unrecorded),
    mem_mb (run.json's request, else the run's execution settings', else NaN) and over_request (the host
    peak exceeded the request; False when unknown)."""
    requested = _number(info.get("mem_mb", run.execution.get("mem_mb")))
    host = _number(info.get("peak_host_mb"))
    return {"peak_host_mb": host, "peak_gpu_mb": _number(info.get("peak_gpu_mb")), "mem_mb": requested,
            "over_request": bool(np.isfinite(host) and np.isfinite(requested) and host > requested)}


def run_cost(run: TrainRun, gpu_share: float) -> dict:
    """What one run of the plan cost (seconds and device-seconds), split into its start-up and its epochs.

    The job's wall time (`job_seconds`: process start to its run.json, the trainer's own measurement) and
    `startup_seconds` (process start to the first epoch) come from the run's run.json; NaN and 0 for runs
    recorded before them. A resumed run's job_seconds timed its last attempt only: its start-up plus its
    epochs' seconds (epoch_seconds + eval_seconds of metrics.csv) stand in then.
    Device-seconds are seconds × the share of a device the run held: `gpu_share` GPUs on CUDA, its threads
    (CPU cores) on the CPU. Steps are epochs × run.json's steps_per_epoch (NaN for runs recorded without it);
    seconds_per_step is the training seconds (epoch_seconds, evaluation excluded) per step. Returns the run's
    identity (problem, optimizer, seed, dataset, model), device, unit, share, epochs, steps, the seconds, the
    device-seconds and its memory (run_memory).
    """
    info = json.loads(Path(run.file("run.json")).read_text())
    metrics = read_table(run.file("metrics.csv"))
    job_seconds = _number(info.get("job_seconds"))
    measured = metrics["epoch_seconds"].sum() + metrics["eval_seconds"].sum()
    startup = info.get("startup_seconds")
    if startup is None:  # runs recorded before start-up was measured: the job's time beyond its epochs
        known = np.isfinite(job_seconds) and not info.get("resumed_after_epoch")
        startup = max(0.0, job_seconds - measured) if known else 0.0
    wall = measured + startup if info.get("resumed_after_epoch") or np.isnan(job_seconds) else job_seconds
    on_gpu = info["device"].startswith("cuda")
    share = gpu_share if on_gpu else info["threads"]
    steps = len(metrics) * _number(info.get("steps_per_epoch"))
    memory = run_memory(run, info)
    return {**run.identity, "dataset": run.dataset, "model": run.model, "device": info["device_name"],
            "unit": "GPU" if on_gpu else "CPU core", "share": share, "epochs": len(metrics), "steps": steps,
            **{k: memory[k] for k in PEAKS}, "runs_over_request": int(memory["over_request"]),
            "train_seconds": metrics["epoch_seconds"].sum(), "eval_seconds": metrics["eval_seconds"].sum(),
            "job_seconds": job_seconds, "startup_seconds": startup,
            "samples_per_second": metrics["samples_per_second"].median(), "device_seconds": wall * share,
            "startup_device_seconds": startup * share, "epoch_device_seconds": (wall - startup) * share}


def _summarize(frame: pd.DataFrame) -> dict:
    """One row of cost_table from some runs' run_cost rows."""
    return {"device": ", ".join(sorted(frame["device"].unique())), "unit": ", ".join(sorted(frame["unit"].unique())),
            "share": frame["share"].median(), "runs": len(frame), **{c: frame[c].sum(min_count=1) for c in SUMMED},
            "samples_per_second": frame["samples_per_second"].median(),
            "startup_device_seconds_per_run": frame["startup_device_seconds"].mean(),
            "device_seconds_per_epoch": frame["epoch_device_seconds"].sum() / frame["epochs"].sum(),
            "seconds_per_step": frame["train_seconds"].sum() / frame["steps"].sum(min_count=1),
            **{c: frame[c].max() for c in PEAKS}}


def step_costs(table: pd.DataFrame) -> pd.DataFrame:
    """cost_table's problem × optimizer rows with `step_baseline` (the optimizer each row is compared with:
    STEP_BASELINES' first that ran on the same problem and device, else the fastest per step there) and
    `step_cost_vs_baseline` (seconds_per_step ÷ the baseline's: 1 = as costly per step as the baseline, 1.5
    = 50% more). AlgoPerf reports such per-step overhead beside time to result (Dahl et al. 2023, §4), so a
    wall-clock difference splits into step cost and progress per step. NaN where steps are unrecorded."""
    table = table.assign(step_baseline="", step_cost_vs_baseline=np.nan)
    for _, rows in table.groupby(["problem", "device"], sort=False):
        known = rows.dropna(subset=["seconds_per_step"])
        if known.empty:
            continue
        named = [b for b in STEP_BASELINES if b in set(known["optimizer"])]
        base = named[0] if named else known.loc[known["seconds_per_step"].idxmin(), "optimizer"]
        seconds = known.loc[known["optimizer"] == base, "seconds_per_step"].iloc[0]
        table.loc[rows.index, "step_baseline"] = base
        table.loc[rows.index, "step_cost_vs_baseline"] = rows["seconds_per_step"] / seconds
    return table


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per problem × optimizer (summed over seeds) and for the whole study (problem: every problem's name,
    optimizer 'all'): runs, epochs, steps, seconds, device-seconds (GPU-seconds or CPU core-seconds), split
    into start-up per run and device-seconds per epoch, the median samples/s, seconds per training step and
    its ratio to the problem's baseline (step_costs), the peak host and GPU memory and the requested mem_mb
    (MB, maxima over the runs) and the runs whose host peak exceeded their request. `runs`: run_cost rows."""
    def names(column: str) -> str:
        return ", ".join(str(v) for v in runs[column].unique())

    rows = [{"problem": p, "optimizer": o, "dataset": frame["dataset"].iloc[0], "model": frame["model"].iloc[0],
             **_summarize(frame)} for (p, o), frame in runs.groupby(GROUP_KEYS, sort=False)]
    table = step_costs(pd.DataFrame(rows))
    study = {"problem": names("problem"), "optimizer": "all", "dataset": names("dataset"), "model": names("model"),
             **_summarize(runs), "step_baseline": "", "step_cost_vs_baseline": np.nan}
    return pd.concat([table, pd.DataFrame([study])], ignore_index=True)


def memory_by_problem(cost: pd.DataFrame) -> pd.DataFrame:
    """Per problem (cost_table's problem × optimizer rows): peak host and GPU memory and requested mem_mb
    (MB, maxima over its runs) and its runs whose host peak exceeded their request."""
    rows = cost[cost["optimizer"] != "all"]
    return rows.groupby("problem", sort=False).agg(
        peak_host_mb=("peak_host_mb", "max"), peak_gpu_mb=("peak_gpu_mb", "max"), mem_mb=("mem_mb", "max"),
        runs_over_request=("runs_over_request", "sum")).reset_index()


def plan_cost(runs: list[TrainRun], gpu_share: float) -> pd.DataFrame:
    """cost_table of the plan's training runs (Plan.train_runs; gpu_share: Plan.settings["gpu_share"])."""
    return cost_table(pd.DataFrame([run_cost(run, gpu_share) for run in runs]))


def projected_device_hours(cost: pd.DataFrame, epochs: int, seeds: int, optimizers: int) -> float:
    """Device-hours of a study of `optimizers` × `seeds` runs of `epochs` epochs at this study's measured
    pace (cost_table's 'all' row): (start-up device-seconds per run × runs + device-seconds per epoch ×
    epochs × runs) / 3600."""
    total = cost.loc[cost["optimizer"] == "all"].iloc[0]
    runs = optimizers * seeds
    return (total["startup_device_seconds_per_run"] * runs + total["device_seconds_per_epoch"] * epochs * runs) / 3600
