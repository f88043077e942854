"""Tables across runs (SPEC §2.4): every epoch in one long table, seed statistics, per-optimizer
summaries, the article's claims beside what was measured, what the runs cost (device-seconds), and the
descent reproduction table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from optimbench.io import atomic_path, write_csv

RUN_KEYS = ["dataset", "model", "optimizer", "seed"]
GROUP_KEYS = ["dataset", "model", "optimizer"]
METRICS = ["train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds", "samples_per_second"]


# ---------------------------------------------------------------- loading
def run_identity(spec: dict) -> dict:
    """A run's RUN_KEYS (dataset, model, optimizer, seed) from the spec in its run.json."""
    return {"dataset": spec["dataset"], "model": spec["model"], "optimizer": spec["optimizer_name"],
            "seed": int(spec["seed"])}


def load_run(metrics_path) -> pd.DataFrame:
    """One run's metrics.csv with its identity (dataset, model, optimizer, seed) from the run.json beside it."""
    metrics_path = Path(metrics_path)
    spec = json.loads((metrics_path.parent / "run.json").read_text())["spec"]
    frame = pd.read_csv(metrics_path)
    return frame.assign(**run_identity(spec))[RUN_KEYS + [c for c in frame.columns]]


def load_runs(metrics_paths) -> pd.DataFrame:
    """All runs' epochs, wide: one row per run and epoch."""
    return pd.concat([load_run(p) for p in metrics_paths], ignore_index=True)


def long_table(wide: pd.DataFrame) -> pd.DataFrame:
    """Tidy: dataset, model, optimizer, seed, epoch, metric, value."""
    return wide.melt(id_vars=RUN_KEYS + ["epoch"], value_vars=METRICS, var_name="metric", value_name="value")


# ---------------------------------------------------------------- statistics
def t_interval(std: pd.Series, n: pd.Series, confidence: float) -> pd.Series:
    """Half-width of the Student-t confidence interval of a mean (NaN for a single seed)."""
    quantile = stats.t.ppf((1 + confidence) / 2, np.maximum(n - 1, 1))
    return pd.Series(np.where(n > 1, quantile * std / np.sqrt(n), np.nan), index=std.index)


def epoch_stats(long: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per optimizer × epoch × metric: seeds, mean, std, and the CI across seeds."""
    grouped = long.groupby(GROUP_KEYS + ["epoch", "metric"])["value"]
    table = grouped.agg(n="count", mean="mean", std="std").reset_index()
    half = t_interval(table["std"], table["n"], confidence)
    return table.assign(ci_low=table["mean"] - half, ci_high=table["mean"] + half)


def per_seed_summary(wide: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run: final/best test accuracy, lowest test loss and its epoch, time to the target accuracy."""
    rows = []
    for key, run in wide.sort_values("epoch").groupby(RUN_KEYS):
        reached = run[run["test_acc"] >= target]
        first = reached.iloc[0] if len(reached) else None
        lowest = run.loc[run["test_loss"].idxmin()] if run["test_loss"].notna().any() else None
        rows.append({**dict(zip(RUN_KEYS, key)), "epochs": int(run["epoch"].max()),
                     "final_train_acc": run["train_acc"].iloc[-1], "final_train_loss": run["train_loss"].iloc[-1],
                     "final_test_acc": run["test_acc"].iloc[-1], "final_test_loss": run["test_loss"].iloc[-1],
                     "best_test_acc": run["test_acc"].max(),
                     "lowest_test_loss": lowest["test_loss"] if lowest is not None else np.nan,
                     "lowest_test_loss_epoch": int(lowest["epoch"]) if lowest is not None else np.nan,
                     "epochs_to_target": int(first["epoch"]) if first is not None else np.nan,
                     "seconds_to_target": (run.loc[run["epoch"] <= first["epoch"], "epoch_seconds"].sum()
                                           if first is not None else np.nan),
                     "mean_epoch_seconds": run["epoch_seconds"].mean(),
                     "diverged": bool(run["diverged"].any())})
    return pd.DataFrame(rows)


def optimizer_summary(seeds: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per optimizer: means across seeds (with std and CI of the final test accuracy), divergences, rank."""
    grouped = seeds.groupby(GROUP_KEYS)
    table = grouped.agg(
        seeds=("seed", "count"), final_test_acc=("final_test_acc", "mean"),
        final_test_acc_std=("final_test_acc", "std"), best_test_acc=("best_test_acc", "mean"),
        final_train_acc=("final_train_acc", "mean"), final_test_loss=("final_test_loss", "mean"),
        lowest_test_loss=("lowest_test_loss", "mean"), lowest_test_loss_epoch=("lowest_test_loss_epoch", "mean"),
        epochs_to_target=("epochs_to_target", "mean"), seconds_to_target=("seconds_to_target", "mean"),
        runs_reaching_target=("epochs_to_target", "count"), mean_epoch_seconds=("mean_epoch_seconds", "mean"),
        divergences=("diverged", "sum")).reset_index()
    half = t_interval(table["final_test_acc_std"], table["seeds"], confidence)
    table["final_test_acc_ci_low"] = table["final_test_acc"] - half
    table["final_test_acc_ci_high"] = table["final_test_acc"] + half
    table["rank"] = table.groupby(["dataset", "model"])["final_test_acc"].rank(ascending=False, method="min")
    return table.sort_values(["dataset", "model", "rank"]).reset_index(drop=True)


# ---------------------------------------------------------------- the article's claims
SIMILAR_ACC = 0.02   # "end similar": final test accuracies within 2 percentage points
RISE = 1.05          # "test loss rises near the end": final loss ≥ 5% above its minimum


def _fmt(summary: pd.DataFrame, column: str, names) -> str:
    return ", ".join(f"{n} {summary.loc[n, column]:.4f}" for n in names)


def claims_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The article's findings (SPEC §1.2), each with what this study measured and whether it holds."""
    s = summary.set_index("optimizer")
    claims = []

    def claim(text, needed, measure):
        missing = [n for n in needed if n not in s.index]
        if missing:
            claims.append({"claim": text, "measured": f"not tested: {missing} not in this study", "holds": None})
        else:
            measured, holds = measure()
            claims.append({"claim": text, "measured": measured, "holds": bool(holds)})

    top4 = ["Adamax", "SGD", "Adam", "AdamW"]
    claim("Adamax trains best, then SGD, Adam, AdamW (final training accuracy)", top4, lambda: (
        "order: " + _fmt(s.sort_values("final_train_acc", ascending=False), "final_train_acc",
                         s.sort_values("final_train_acc", ascending=False).index),
        list(s.sort_values("final_train_acc", ascending=False).index[:4]) == top4))
    claim(f"Adamax, SGD, Adam, AdamW end with similar test accuracy (within {SIMILAR_ACC:.0%})", top4, lambda: (
        _fmt(s, "final_test_acc", top4) + f"; spread {np.ptp(s.loc[top4, 'final_test_acc']):.4f}",
        np.ptp(s.loc[top4, "final_test_acc"]) <= SIMILAR_ACC))
    claim(f"SGD's and Adamax's test loss rises near the end (final ≥ {RISE:g}× lowest)", ["SGD", "Adamax"], lambda: (
        "final/lowest: " + ", ".join(f"{n} {s.loc[n, 'final_test_loss'] / s.loc[n, 'lowest_test_loss']:.3f}"
                                     for n in ["SGD", "Adamax"]),
        all(s.loc[n, "final_test_loss"] >= RISE * s.loc[n, "lowest_test_loss"] for n in ["SGD", "Adamax"])))
    claim("Adam and AdamW end with the lowest test loss", ["Adam", "AdamW"], lambda: (
        "lowest two: " + _fmt(s, "final_test_loss", s["final_test_loss"].nsmallest(2).index),
        set(s["final_test_loss"].nsmallest(2).index) == {"Adam", "AdamW"}))
    claim("Adagrad and Adadelta end worst (test accuracy)", ["Adagrad", "Adadelta"], lambda: (
        "lowest two: " + _fmt(s, "final_test_acc", s["final_test_acc"].nsmallest(2).index),
        set(s["final_test_acc"].nsmallest(2).index) == {"Adagrad", "Adadelta"}))
    return pd.DataFrame(claims, columns=["claim", "measured", "holds"])


# ---------------------------------------------------------------- descent
def descent_reproduction(runs: pd.DataFrame) -> pd.DataFrame:
    """For each article run: epochs, final point and whether it reached the minimum, per gradient."""
    article = runs[runs["kind"] == "article"]
    if article.empty:
        return pd.DataFrame()
    values = ["epochs", "converged", "final_x", "final_y", "final_f", "distance_to_minimum", "reached_minimum"]
    settings = article.groupby(["function", "method"])[["lr", "momentum", "h", "start_x", "start_y"]].first()
    table = article.pivot(index=["function", "method"], columns="gradient", values=values)
    table.columns = [f"{value}_{gradient}" for value, gradient in table.columns]
    return settings.join(table).reset_index()


# ---------------------------------------------------------------- cost
def run_cost(metrics_path, benchmark_path, gpu_share: float) -> dict:
    """What one run cost: its job's wall time (Snakemake's benchmark file) times the device share it held.

    The share is `gpu_share` GPUs (train.gpus / train.runs_per_gpu) on CUDA, its threads (CPU cores) on the
    CPU. A resumed run's benchmark file timed the last attempt only: its epochs' seconds stand in then.
    """
    metrics_path = Path(metrics_path)
    info = json.loads((metrics_path.parent / "run.json").read_text())
    metrics = pd.read_csv(metrics_path)
    benchmark = Path(benchmark_path) if benchmark_path else None
    job_seconds = (float(pd.read_csv(benchmark, sep="\t")["s"].iloc[-1])
                   if benchmark is not None and benchmark.exists() else np.nan)
    measured = metrics["epoch_seconds"].sum() + metrics["eval_seconds"].sum()
    wall = measured if info.get("resumed_after_epoch") or np.isnan(job_seconds) else job_seconds
    on_gpu = info["device"].startswith("cuda")
    share = gpu_share if on_gpu else info["threads"]
    return {**run_identity(info["spec"]), "device": info["device_name"], "unit": "GPU" if on_gpu else "CPU core",
            "share": share, "epochs": len(metrics), "train_seconds": metrics["epoch_seconds"].sum(),
            "eval_seconds": metrics["eval_seconds"].sum(), "job_seconds": job_seconds,
            "samples_per_second": metrics["samples_per_second"].median(), "device_seconds": wall * share}


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer (summed over seeds) and for the whole study (optimizer 'all'): runs, epochs, seconds,
    device-seconds (GPU-seconds or CPU core-seconds) and the median samples/s."""
    sums = ["epochs", "train_seconds", "eval_seconds", "job_seconds", "device_seconds"]

    def summarize(frame: pd.DataFrame) -> dict:
        return {"device": ", ".join(sorted(frame["device"].unique())), "unit": ", ".join(sorted(frame["unit"].unique())),
                "share": frame["share"].median(), "runs": len(frame), **{c: frame[c].sum(min_count=1) for c in sums},
                "samples_per_second": frame["samples_per_second"].median(),
                "device_seconds_per_epoch": frame["device_seconds"].sum() / frame["epochs"].sum()}

    rows = [{"dataset": d, "model": m, "optimizer": o, **summarize(frame)}
            for (d, m, o), frame in runs.groupby(GROUP_KEYS, sort=False)]
    rows.append({"dataset": ", ".join(runs["dataset"].unique()), "model": ", ".join(runs["model"].unique()),
                 "optimizer": "all", **summarize(runs)})
    return pd.DataFrame(rows)


def projected_device_hours(cost: pd.DataFrame, epochs: int, seeds: int, optimizers: int) -> float:
    """Device-hours of a study of `optimizers` × `seeds` runs of `epochs` epochs at this study's measured
    device-seconds per epoch (e.g. the article's 7 × 3 × 50 from a shorter run of the same model)."""
    per_epoch = cost.loc[cost["optimizer"] == "all", "device_seconds_per_epoch"].iloc[0]
    return per_epoch * epochs * seeds * optimizers / 3600


# ---------------------------------------------------------------- writing
def write_table(frame: pd.DataFrame, out_dir: Path, name: str) -> None:
    """CSV for people, Parquet for machines, both written atomically."""
    write_csv(out_dir / f"{name}.csv", frame)
    with atomic_path(out_dir / f"{name}.parquet") as tmp:
        frame.to_parquet(tmp, index=False)


def aggregate_train(metrics_paths, out_dir, target: float, confidence: float, benchmark_paths=None,
                    gpu_share: float = 1.0) -> dict[str, pd.DataFrame]:
    wide = load_runs(metrics_paths)
    seeds = per_seed_summary(wide, target)
    summary = optimizer_summary(seeds, confidence)
    long = long_table(wide)
    tables = {"epochs_long": long, "epoch_stats": epoch_stats(long, confidence),
              "seed_summary": seeds, "optimizer_summary": summary, "article_claims": claims_table(summary),
              "cost": cost_table(pd.DataFrame([run_cost(m, b, gpu_share) for m, b in
                                               zip(metrics_paths, benchmark_paths or [None] * len(metrics_paths))]))}
    for name, frame in tables.items():
        write_table(frame, Path(out_dir), name)
    return tables


def aggregate_descent(summary_paths, out_dir) -> dict[str, pd.DataFrame]:
    runs = pd.concat([pd.read_csv(p) for p in summary_paths], ignore_index=True)
    tables = {"descent_runs": runs, "descent_reproduction": descent_reproduction(runs)}
    for name, frame in tables.items():
        write_table(frame, Path(out_dir), name)
    return tables


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Aggregate training runs or descent runs into tables.")
    sub = parser.add_subparsers(dest="stage", required=True)
    train = sub.add_parser("train", help="tables from training runs' metrics.csv files")
    train.add_argument("--metrics", nargs="+", required=True)
    train.add_argument("--target", type=float, required=True, help="test accuracy for time-to-target")
    train.add_argument("--confidence", type=float, default=0.95)
    train.add_argument("--benchmarks", nargs="+", help="Snakemake benchmark files, one per --metrics, same order")
    train.add_argument("--gpu-share", type=float, default=1.0, help="GPUs one run holds (gpus / runs_per_gpu)")
    train.add_argument("--out", required=True, help="tables folder")
    descent = sub.add_parser("descent", help="tables from descent runs' summary.csv files")
    descent.add_argument("--summaries", nargs="+", required=True)
    descent.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.stage == "train":
        if args.benchmarks and len(args.benchmarks) != len(args.metrics):
            parser.error(f"--benchmarks: {len(args.benchmarks)} files for {len(args.metrics)} --metrics; "
                         "give one benchmark file per run, in the same order")
        tables = aggregate_train(args.metrics, args.out, args.target, args.confidence, args.benchmarks, args.gpu_share)
    else:
        tables = aggregate_descent(args.summaries, args.out)
    for name, frame in tables.items():
        print(f"{args.out}/{name}: {len(frame)} rows")


if __name__ == "__main__":
    main()
