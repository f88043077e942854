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

SUMMED = ["epochs", "train_seconds", "eval_seconds", "job_seconds", "startup_seconds", "device_seconds",
          "startup_device_seconds", "epoch_device_seconds"]  # cost_table's columns summed over runs


def _job_seconds(benchmark_path) -> float:
    """The job's wall time (seconds, the last row of Snakemake's benchmark file); NaN without the file."""
    benchmark = Path(benchmark_path) if benchmark_path else None
    if benchmark is None or not benchmark.exists():
        return np.nan
    return float(read_table(benchmark, sep="\t")["s"].iloc[-1])


def run_cost(run: TrainRun, gpu_share: float) -> dict:
    """What one run of the plan cost (seconds and device-seconds), split into its start-up and its epochs.

    The job's wall time comes from Snakemake's benchmark file (`run.benchmark`); `startup_seconds` (process
    start to the first epoch) from the run's run.json. A resumed run's benchmark file timed the last attempt
    only: its start-up plus its epochs' seconds (epoch_seconds + eval_seconds of metrics.csv) stand in then.
    Device-seconds are seconds × the share of a device the run held: `gpu_share` GPUs on CUDA, its threads
    (CPU cores) on the CPU. Returns the run's identity (problem, optimizer, seed, dataset, model), device,
    unit, share, epochs, the seconds and the device-seconds.
    """
    info = json.loads(Path(run.file("run.json")).read_text())
    metrics = read_table(run.file("metrics.csv"))
    job_seconds = _job_seconds(run.benchmark)
    measured = metrics["epoch_seconds"].sum() + metrics["eval_seconds"].sum()
    startup = info.get("startup_seconds")
    if startup is None:  # runs recorded before start-up was measured: the job's time beyond its epochs
        known = np.isfinite(job_seconds) and not info.get("resumed_after_epoch")
        startup = max(0.0, job_seconds - measured) if known else 0.0
    wall = measured + startup if info.get("resumed_after_epoch") or np.isnan(job_seconds) else job_seconds
    on_gpu = info["device"].startswith("cuda")
    share = gpu_share if on_gpu else info["threads"]
    return {**run.identity, "dataset": run.dataset, "model": run.model, "device": info["device_name"],
            "unit": "GPU" if on_gpu else "CPU core", "share": share, "epochs": len(metrics),
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
            "device_seconds_per_epoch": frame["epoch_device_seconds"].sum() / frame["epochs"].sum()}


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per problem × optimizer (summed over seeds) and for the whole study (problem: every problem's name,
    optimizer 'all'): runs, epochs, seconds, device-seconds (GPU-seconds or CPU core-seconds), split into
    start-up per run and device-seconds per epoch, and the median samples/s. `runs`: run_cost rows."""
    def names(column: str) -> str:
        return ", ".join(str(v) for v in runs[column].unique())

    rows = [{"problem": p, "optimizer": o, "dataset": frame["dataset"].iloc[0], "model": frame["model"].iloc[0],
             **_summarize(frame)} for (p, o), frame in runs.groupby(GROUP_KEYS, sort=False)]
    rows.append({"problem": names("problem"), "optimizer": "all", "dataset": names("dataset"),
                 "model": names("model"), **_summarize(runs)})
    return pd.DataFrame(rows)


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
