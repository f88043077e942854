"""Tables across runs (SPEC §2.4, §2.10): every epoch in one long table, seed statistics, per-optimizer
summaries with ranks, the article's claims with verdicts, the runs as they recorded themselves, what the
runs cost, and the descent reproduction table.

Two policies hold everywhere:
- **Intervals**: `mean_interval` computes every interval of every table (and so of every figure): the
  Student-t interval of the mean across seeds, clipped to the metric's range (`RANGES`).
- **Divergence** (`score_divergence`): a run that diverged keeps its epochs before the divergence; from
  the epoch it diverged until its planned last epoch it scores the worst value of each metric (accuracy 0,
  loss +inf) and it never reaches the target (AlgoPerf scores a missed target as infinite time). So every
  optimizer of the config appears in every table and ranking, and a diverged seed counts against it.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from optimbench.io import atomic_path, write_csv

RUN_KEYS = ["dataset", "model", "optimizer", "seed"]
GROUP_KEYS = ["dataset", "model", "optimizer"]
METRICS = ["train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds", "samples_per_second"]
INF = math.inf
# Each metric's range: intervals are clipped to it; `worst` is what a diverged epoch scores.
RANGES = {"train_acc": (0.0, 1.0), "test_acc": (0.0, 1.0), "train_loss": (0.0, INF), "test_loss": (0.0, INF),
          "lr": (0.0, INF), "epoch_seconds": (0.0, INF), "samples_per_second": (0.0, INF)}
WORST = {"train_acc": 0.0, "test_acc": 0.0, "train_loss": INF, "test_loss": INF}
# The article's seven optimizers (SPEC §1.2): its claims compare these among themselves.
ARTICLE_OPTIMIZERS = ["SGD", "Adam", "Adadelta", "Adagrad", "AdamW", "Adamax", "ASGD"]


# ---------------------------------------------------------------- intervals (the one place)
def mean_interval(n, mean, std, confidence: float, bounds=(-INF, INF)) -> tuple[np.ndarray, np.ndarray]:
    """Confidence interval of a mean across seeds: Student-t (scipy.stats.t.interval, n - 1 degrees of
    freedom) around the sample mean, clipped to the metric's range `bounds`.

    Args: n, mean, std: arrays (or scalars) of the number of values, their mean and sample std (ddof 1).
    Returns: (low, high) arrays; NaN where n < 2 (no spread to estimate), (mean, mean) where the mean is
    infinite (a diverged seed scored +inf).
    """
    n, mean, std = (np.asarray(a, dtype=float) for a in (n, mean, std))
    with np.errstate(invalid="ignore", divide="ignore"):
        sem = std / np.sqrt(n)
        low, high = stats.t.interval(confidence, np.maximum(n - 1, 1), loc=np.nan_to_num(mean), scale=sem)
    enough = n >= 2
    low, high = np.where(enough, low, np.nan), np.where(enough, high, np.nan)
    infinite = np.isinf(mean)
    low, high = np.where(infinite, mean, low), np.where(infinite, mean, high)
    return np.clip(low, *bounds), np.clip(high, *bounds)


def summarize_values(values: pd.Series, confidence: float, bounds=(-INF, INF)) -> dict:
    """n, mean, std and the interval (mean_interval) of one set of values (NaN values are not counted)."""
    values = values.dropna().astype(float)
    n = len(values)
    mean = values.mean() if n else np.nan
    std = values.std() if n > 1 and np.isfinite(values).all() else np.nan
    low, high = mean_interval(n, mean, std, confidence, bounds)
    return {"n": n, "mean": mean, "std": std, "ci_low": float(low), "ci_high": float(high)}


def welch(a, b) -> dict:
    """Welch's t-test of mean(a) - mean(b) (scipy.stats.ttest_ind, equal_var=False).

    Returns diff (mean a - mean b) and the one-sided p-values p_greater (H1: a > b) and p_less (H1: a < b).
    Degenerate cases: with infinite values or no spread, the sign of the difference decides (p 0 or 1)
    when every value of one side beats every value of the other, else p = 1; fewer than 2 values a side: 1.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return {"diff": np.mean(a) - np.mean(b) if len(a) and len(b) else np.nan, "p_greater": 1.0, "p_less": 1.0}
    with np.errstate(invalid="ignore"):
        diff = np.mean(a) - np.mean(b)
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or (np.std(a) == 0 and np.std(b) == 0):
        return {"diff": diff, "p_greater": 0.0 if a.min() > b.max() else 1.0,
                "p_less": 0.0 if a.max() < b.min() else 1.0}
    greater = float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    return {"diff": diff, "p_greater": greater, "p_less": 1.0 - greater}  # one t statistic: the two tails


# ---------------------------------------------------------------- loading
def run_identity(spec: dict) -> dict:
    """A run's RUN_KEYS (dataset, model, optimizer, seed) from the spec in its run.json."""
    return {"dataset": spec["dataset"], "model": spec["model"], "optimizer": spec["optimizer_name"],
            "seed": int(spec["seed"])}


def load_run(run_dir) -> pd.DataFrame:
    """One run's metrics.csv with its identity and planned epochs, both from the run.json beside it."""
    run_dir = Path(run_dir)
    spec = json.loads((run_dir / "run.json").read_text())["spec"]
    frame = pd.read_csv(run_dir / "metrics.csv")
    frame = frame.assign(**run_identity(spec), planned_epochs=int(spec["epochs"]))
    return frame[RUN_KEYS + [c for c in frame.columns if c not in RUN_KEYS]]


def load_runs(run_dirs) -> pd.DataFrame:
    """All runs' epochs, wide: one row per run and epoch, divergence scored (score_divergence)."""
    return score_divergence(pd.concat([load_run(d) for d in run_dirs], ignore_index=True))


def score_divergence(wide: pd.DataFrame) -> pd.DataFrame:
    """The divergence policy (module docstring): from the epoch a run diverged to its planned last epoch,
    its accuracy and loss columns score WORST; `scored` marks those rows. Input: wide epochs with
    `diverged` (True on the epoch the loss became non-finite) and `planned_epochs`."""
    wide = wide.assign(diverged=wide["diverged"].astype(bool), scored=False)
    fillers = []
    for _, run in wide[wide["diverged"]].groupby(RUN_KEYS):
        first = run.sort_values("epoch").iloc[0]
        after = (wide[RUN_KEYS] == first[RUN_KEYS]).all(axis=1) & (wide["epoch"] >= first["epoch"])
        wide.loc[after, list(WORST)] = list(WORST.values())
        wide.loc[after, ["diverged", "scored"]] = True
        epochs = np.arange(int(first["epoch"]) + 1, int(first["planned_epochs"]) + 1)
        if len(epochs):
            fillers.append(pd.DataFrame({**{k: first[k] for k in RUN_KEYS}, "epoch": epochs, **WORST,
                                         "diverged": True, "planned_epochs": first["planned_epochs"],
                                         "scored": True}))
    out = pd.concat([wide, *fillers], ignore_index=True) if fillers else wide
    return out.sort_values(RUN_KEYS + ["epoch"]).reset_index(drop=True)


def long_table(wide: pd.DataFrame) -> pd.DataFrame:
    """Tidy: dataset, model, optimizer, seed, epoch, metric, value, scored (a diverged epoch's worst value)."""
    return wide.melt(id_vars=RUN_KEYS + ["epoch", "scored"], value_vars=METRICS, var_name="metric",
                     value_name="value")


# ---------------------------------------------------------------- statistics
def epoch_stats(long: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per optimizer × epoch × metric: n (values counted), mean, std and the interval across seeds."""
    rows = []
    for key, values in long.groupby(GROUP_KEYS + ["epoch", "metric"])["value"]:
        summary = summarize_values(values, confidence, RANGES.get(key[-1], (-INF, INF)))
        rows.append({**dict(zip(GROUP_KEYS + ["epoch", "metric"], key)), **summary})
    return pd.DataFrame(rows)


def per_seed_summary(wide: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per run: final (last planned epoch) and best values, lowest test loss, time to the target accuracy.
    A diverged run never reaches the target (its epochs/seconds to target are NaN, `reached_target` False)."""
    rows = []
    for key, run in wide.sort_values("epoch").groupby(RUN_KEYS):
        diverged = bool(run["diverged"].any())
        reached = run[(run["test_acc"] >= target) & ~diverged]
        first = reached.iloc[0] if len(reached) else None
        lowest = run.loc[run["test_loss"].idxmin()] if run["test_loss"].notna().any() else None
        last = run.iloc[-1]
        rows.append({**dict(zip(RUN_KEYS, key)), "epochs": int(run["epoch"].max()),
                     "final_train_acc": last["train_acc"], "final_train_loss": last["train_loss"],
                     "final_test_acc": last["test_acc"], "final_test_loss": last["test_loss"],
                     "best_test_acc": run["test_acc"].max(),
                     "lowest_test_loss": lowest["test_loss"] if lowest is not None else INF,
                     "lowest_test_loss_epoch": int(lowest["epoch"]) if lowest is not None else np.nan,
                     "reached_target": first is not None,
                     "epochs_to_target": int(first["epoch"]) if first is not None else np.nan,
                     "seconds_to_target": (run.loc[run["epoch"] <= first["epoch"], "epoch_seconds"].sum()
                                           if first is not None else np.nan),
                     "mean_epoch_seconds": run["epoch_seconds"].mean(),
                     "diverged": diverged,
                     "diverged_epoch": int(run.loc[run["diverged"].astype(bool), "epoch"].min()) if diverged else np.nan})
    return pd.DataFrame(rows)


SUMMARY_METRICS = {"final_test_acc": "test_acc", "final_train_acc": "train_acc", "final_test_loss": "test_loss",
                   "final_train_loss": "train_loss", "best_test_acc": "test_acc", "lowest_test_loss": "test_loss",
                   "epochs_to_target": "epoch_seconds", "seconds_to_target": "epoch_seconds"}


def optimizer_summary(seeds: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per optimizer: each summary metric's mean with its n and interval (mean_interval), divergences,
    runs reaching the target, and the rank by mean final test accuracy with whether the seeds separate it
    from the best (Welch's one-sided test at 1 - confidence): every optimizer is ranked."""
    rows = []
    for key, group in seeds.groupby(GROUP_KEYS):
        row = {**dict(zip(GROUP_KEYS, key)), "seeds": len(group), "divergences": int(group["diverged"].sum()),
               "runs_reaching_target": int(group["reached_target"].sum()),
               "mean_epoch_seconds": group["mean_epoch_seconds"].mean(),
               "lowest_test_loss_epoch": group["lowest_test_loss_epoch"].mean()}
        for column, metric in SUMMARY_METRICS.items():
            s = summarize_values(group[column], confidence, RANGES[metric])
            row.update({column: s["mean"], f"{column}_n": s["n"], f"{column}_std": s["std"],
                        f"{column}_ci_low": s["ci_low"], f"{column}_ci_high": s["ci_high"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby(["dataset", "model"])["final_test_acc"].rank(ascending=False, method="min")
    table["separated_from_best"] = False
    alpha = 1 - confidence
    for _, problem in table.groupby(["dataset", "model"]):
        best = problem.sort_values("final_test_acc", ascending=False).iloc[0]
        best_values = seeds.loc[seeds["optimizer"] == best["optimizer"], "final_test_acc"]
        for index, row in problem.iterrows():
            values = seeds.loc[seeds["optimizer"] == row["optimizer"], "final_test_acc"]
            table.loc[index, "separated_from_best"] = welch(best_values, values)["p_greater"] < alpha
    return table.sort_values(["dataset", "model", "rank", "optimizer"]).reset_index(drop=True)


# ---------------------------------------------------------------- the article's claims
SIMILAR_ACC = 0.02   # "end similar": final test accuracies within 2 percentage points
RISE = 1.05          # "test loss rises near the end": final loss ≥ 5% above its minimum
HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = "holds", "contradicted", "inconclusive", "not tested"


def _pair_verdict(a, b, alpha: float) -> str:
    """'holds' if the seeds show mean(a) > mean(b), 'contradicted' if they show a < b, else 'inconclusive'."""
    test = welch(a, b)
    return HOLDS if test["p_greater"] < alpha else CONTRADICTED if test["p_less"] < alpha else INCONCLUSIVE


def _combine(verdicts) -> str:
    """A claim made of several comparisons: contradicted if any is, holds if all do, else inconclusive."""
    verdicts = list(verdicts)
    return CONTRADICTED if CONTRADICTED in verdicts else HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def _ordered(values: dict, names, alpha: float, higher=True) -> tuple[str, str]:
    """Verdict on `names[0] > names[1] > ... > every other name of values` (lower is better: higher=False)."""
    pairs = list(zip(names, names[1:])) + [(names[-1], other) for other in values if other not in names]
    verdicts = []
    for better, worse in pairs:
        a, b = (values[better], values[worse]) if higher else (-values[better], -values[worse])
        verdicts.append(_pair_verdict(a, b, alpha))
    detail = "; ".join(f"{x} vs {y}: {v}" for (x, y), v in zip(pairs, verdicts))
    return _combine(verdicts), detail


def _means(values: dict, names, fmt="{:.4f}") -> str:
    return ", ".join(f"{n} {fmt.format(np.mean(values[n]))}" for n in names)


def claims_table(seeds: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The article's findings (SPEC §1.2), judged among the article's optimizers present in this study.

    Each claim's verdict is holds / contradicted / inconclusive from one-sided Welch tests on the per-seed
    values at level 1 - confidence (holds: every comparison the claim makes is significant in its favour;
    contradicted: one is significant against it), or "not tested" when an optimizer it names is missing.
    Columns: claim, compared (the optimizers it was judged among), measured (means and the tests), verdict.
    """
    alpha = 1 - confidence
    present = [n for n in ARTICLE_OPTIMIZERS if n in set(seeds["optimizer"])]
    by = {column: {n: seeds.loc[seeds["optimizer"] == n, column].to_numpy(float) for n in present}
          for column in ("final_train_acc", "final_test_acc", "final_test_loss", "lowest_test_loss")}
    claims = []

    def claim(text, needed, judge):
        missing = [n for n in needed if n not in present]
        if missing:
            claims.append({"claim": text, "compared": ", ".join(present),
                           "measured": f"not tested: {', '.join(missing)} not in this study", "verdict": NOT_TESTED})
        else:
            verdict, measured = judge()
            claims.append({"claim": text, "compared": ", ".join(present), "measured": measured, "verdict": verdict})

    top4 = ["Adamax", "SGD", "Adam", "AdamW"]

    def trains_best():
        values = by["final_train_acc"]
        verdict, detail = _ordered(values, top4, alpha)
        order = sorted(values, key=lambda n: -np.mean(values[n]))
        return verdict, f"mean final training accuracy: {_means(values, order)}. Tests: {detail}"

    def similar():
        values = by["final_test_acc"]
        verdicts, spreads = [], []
        for i, x in enumerate(top4):
            for y in top4[i + 1:]:
                # Equivalence (two one-sided tests): |mean x - mean y| < SIMILAR_ACC shown, or refuted.
                inside = (welch(values[x] - SIMILAR_ACC, values[y])["p_less"] < alpha
                          and welch(values[x] + SIMILAR_ACC, values[y])["p_greater"] < alpha)
                outside = (welch(values[x] - SIMILAR_ACC, values[y])["p_greater"] < alpha
                           or welch(values[x] + SIMILAR_ACC, values[y])["p_less"] < alpha)
                verdicts.append(HOLDS if inside else CONTRADICTED if outside else INCONCLUSIVE)
                spreads.append(abs(np.mean(values[x]) - np.mean(values[y])))
        return _combine(verdicts), (f"mean final test accuracy: {_means(values, top4)}; largest gap "
                                    f"{max(spreads):.4f} (equivalence tests at ±{SIMILAR_ACC:g})")

    def loss_rises():
        verdicts, parts = [], []
        for name in ["SGD", "Adamax"]:
            ratio = by["final_test_loss"][name] / by["lowest_test_loss"][name]
            finite = ratio[np.isfinite(ratio)]  # a diverged seed has no final loss to compare
            if len(finite) < 2:
                verdict = INCONCLUSIVE
            elif np.std(finite) == 0:
                verdict = HOLDS if finite.min() >= RISE else CONTRADICTED
            else:
                p_greater = stats.ttest_1samp(finite, RISE, alternative="greater").pvalue
                p_less = 1.0 - p_greater
                verdict = HOLDS if p_greater < alpha else CONTRADICTED if p_less < alpha else INCONCLUSIVE
            verdicts.append(verdict)
            mean = np.mean(finite) if len(finite) else np.nan
            parts.append(f"{name} mean final/lowest test loss {mean:.3f} over {len(finite)} seed(s): {verdict}")
        return _combine(verdicts), "; ".join(parts)

    def lowest_loss():
        values = by["final_test_loss"]
        pairs = [(x, o) for x in ("Adam", "AdamW") for o in present if o not in ("Adam", "AdamW")]
        verdicts = [_pair_verdict(-values[x], -values[o], alpha) for x, o in pairs]
        order = sorted(values, key=lambda n: np.mean(values[n]))
        return _combine(verdicts), f"mean final test loss: {_means(values, order)}"

    def end_worst():
        values = by["final_test_acc"]
        pairs = [(o, x) for x in ("Adagrad", "Adadelta") for o in present if o not in ("Adagrad", "Adadelta")]
        verdicts = [_pair_verdict(values[o], values[x], alpha) for o, x in pairs]
        order = sorted(values, key=lambda n: np.mean(values[n]))
        return _combine(verdicts), f"mean final test accuracy, lowest first: {_means(values, order)}"

    claim("Adamax trains best, then SGD, Adam, AdamW (final training accuracy)", top4, trains_best)
    claim(f"Adamax, SGD, Adam, AdamW end with similar test accuracy (within {SIMILAR_ACC:.0%})", top4, similar)
    claim(f"SGD's and Adamax's test loss rises near the end (final ≥ {RISE:g}× lowest)", ["SGD", "Adamax"],
          loss_rises)
    claim("Adam and AdamW end with the lowest test loss", ["Adam", "AdamW"], lowest_loss)
    claim("Adagrad and Adadelta end worst (test accuracy)", ["Adagrad", "Adadelta"], end_worst)
    return pd.DataFrame(claims, columns=["claim", "compared", "measured", "verdict"])


# ---------------------------------------------------------------- the runs as recorded
def _differences(recorded: dict, planned: dict, prefix: str = "") -> list[str]:
    """Keys whose values differ between two nested specs, as 'key: recorded → planned'."""
    out = []
    for key in sorted(set(recorded) | set(planned)):
        a, b = recorded.get(key), planned.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} recorded, {b!r} in the config")
    return out


def runs_table(train_runs: list[dict]) -> pd.DataFrame:
    """One row per run of the plan: the settings its run.json recorded (what actually ran) and whether they
    match the config's spec for it (`differences` lists each key that does not)."""
    rows = []
    for planned in train_runs:
        info = json.loads((Path(planned["dir"]) / "run.json").read_text())
        spec = info["spec"]
        recorded = {k: v for k, v in spec.items() if k in planned["spec"]}
        differences = _differences(recorded, planned["spec"])
        rows.append({**run_identity(spec), "class": spec["optimizer"]["class"],
                     "kwargs": json.dumps(spec["optimizer"].get("kwargs", {}), sort_keys=True),
                     "demon": bool(spec["optimizer"].get("demon", False)), "lr_schedule": spec.get("lr_schedule"),
                     "epochs": spec["epochs"], "batch_size": spec["batch_size"], "width": spec.get("width"),
                     "train_images": info.get("train_images", spec.get("train_subset")),
                     "test_images": info.get("test_images", spec.get("test_subset")),
                     "device": info["device_name"], "threads": info["threads"], "bf16": info.get("bf16"),
                     "torch": info["versions"]["torch"], "python": info["versions"]["python"],
                     "git": info.get("git_commit"), "resumed_after_epoch": info.get("resumed_after_epoch"),
                     "diverged": info["diverged"], "diverged_epoch": info.get("diverged_epoch"),
                     "matches_config": not differences, "differences": "; ".join(differences)})
    return pd.DataFrame(rows)


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
def run_cost(run_dir, benchmark_path, gpu_share: float) -> dict:
    """What one run cost, split into its start-up (a fixed cost per run) and its epochs.

    The job's wall time comes from Snakemake's benchmark file; `startup_seconds` (process start to the
    first epoch: interpreter, imports, data load, model build) from run.json. A resumed run's benchmark file
    timed the last attempt only: its start-up plus its epochs' seconds stand in then. Device-seconds are
    seconds × the share of a device the run held: `gpu_share` GPUs on CUDA, its threads (CPU cores) on the CPU.
    """
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    metrics = pd.read_csv(run_dir / "metrics.csv")
    benchmark = Path(benchmark_path) if benchmark_path else None
    job_seconds = (float(pd.read_csv(benchmark, sep="\t")["s"].iloc[-1])
                   if benchmark is not None and benchmark.exists() else np.nan)
    measured = metrics["epoch_seconds"].sum() + metrics["eval_seconds"].sum()
    startup = info.get("startup_seconds")
    if startup is None:  # runs recorded before start-up was measured: the job's time beyond its epochs
        known = np.isfinite(job_seconds) and not info.get("resumed_after_epoch")
        startup = max(0.0, job_seconds - measured) if known else 0.0
    wall = measured + startup if info.get("resumed_after_epoch") or np.isnan(job_seconds) else job_seconds
    on_gpu = info["device"].startswith("cuda")
    share = gpu_share if on_gpu else info["threads"]
    return {**run_identity(info["spec"]), "device": info["device_name"], "unit": "GPU" if on_gpu else "CPU core",
            "share": share, "epochs": len(metrics), "train_seconds": metrics["epoch_seconds"].sum(),
            "eval_seconds": metrics["eval_seconds"].sum(), "job_seconds": job_seconds, "startup_seconds": startup,
            "samples_per_second": metrics["samples_per_second"].median(), "device_seconds": wall * share,
            "startup_device_seconds": startup * share, "epoch_device_seconds": (wall - startup) * share}


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer (summed over seeds) and for the whole study (optimizer 'all'): runs, epochs, seconds,
    device-seconds (GPU-seconds or CPU core-seconds), split into start-up per run and device-seconds per
    epoch, and the median samples/s."""
    sums = ["epochs", "train_seconds", "eval_seconds", "job_seconds", "startup_seconds", "device_seconds",
            "startup_device_seconds", "epoch_device_seconds"]

    def summarize(frame: pd.DataFrame) -> dict:
        return {"device": ", ".join(sorted(frame["device"].unique())), "unit": ", ".join(sorted(frame["unit"].unique())),
                "share": frame["share"].median(), "runs": len(frame), **{c: frame[c].sum(min_count=1) for c in sums},
                "samples_per_second": frame["samples_per_second"].median(),
                "startup_device_seconds_per_run": frame["startup_device_seconds"].mean(),
                "device_seconds_per_epoch": frame["epoch_device_seconds"].sum() / frame["epochs"].sum()}

    rows = [{"dataset": d, "model": m, "optimizer": o, **summarize(frame)}
            for (d, m, o), frame in runs.groupby(GROUP_KEYS, sort=False)]
    rows.append({"dataset": ", ".join(runs["dataset"].unique()), "model": ", ".join(runs["model"].unique()),
                 "optimizer": "all", **summarize(runs)})
    return pd.DataFrame(rows)


def projected_device_hours(cost: pd.DataFrame, epochs: int, seeds: int, optimizers: int) -> float:
    """Device-hours of a study of `optimizers` × `seeds` runs of `epochs` epochs at this study's measured
    pace: start-up per run × runs + device-seconds per epoch × epochs × runs."""
    total = cost.loc[cost["optimizer"] == "all"].iloc[0]
    runs = optimizers * seeds
    return (total["startup_device_seconds_per_run"] * runs + total["device_seconds_per_epoch"] * epochs * runs) / 3600


# ---------------------------------------------------------------- writing
def write_table(frame: pd.DataFrame, out_dir: Path, name: str) -> None:
    """CSV for people, Parquet for machines, both written atomically."""
    write_csv(out_dir / f"{name}.csv", frame)
    with atomic_path(out_dir / f"{name}.parquet") as tmp:
        frame.to_parquet(tmp, index=False)


def aggregate_train(plan: dict, out_dir) -> dict[str, pd.DataFrame]:
    """Every training table from the runs of `plan` (optimbench.study.read_plan)."""
    settings, train_runs = plan["settings"], plan["train_runs"]
    confidence = settings["confidence"]
    wide = load_runs([run["dir"] for run in train_runs])
    seeds = per_seed_summary(wide, settings["target_accuracy"])
    long = long_table(wide)
    tables = {"runs": runs_table(train_runs), "epochs_long": long, "epoch_stats": epoch_stats(long, confidence),
              "seed_summary": seeds, "optimizer_summary": optimizer_summary(seeds, confidence),
              "article_claims": claims_table(seeds, confidence),
              "cost": cost_table(pd.DataFrame([run_cost(run["dir"], run["benchmark"], settings["gpu_share"])
                                               for run in train_runs]))}
    for name, frame in tables.items():
        write_table(frame, Path(out_dir), name)
    return tables


def aggregate_descent(plan: dict, out_dir) -> dict[str, pd.DataFrame]:
    """The descent tables from the runs of `plan`."""
    runs = pd.concat([pd.read_csv(Path(run["dir"]) / "summary.csv") for run in plan["descent_runs"]],
                     ignore_index=True)
    tables = {"descent_runs": runs, "descent_reproduction": descent_reproduction(runs)}
    for name, frame in tables.items():
        write_table(frame, Path(out_dir), name)
    return tables


def rankings(default: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """The default-hyperparameter ranking beside the tuned one (optimizer_summary tables), by optimizer."""
    columns = ["optimizer", "rank", "final_test_acc", "final_test_acc_ci_low", "final_test_acc_ci_high",
               "separated_from_best", "divergences"]
    both = default[columns].merge(tuned[columns], on="optimizer", how="outer", suffixes=("_default", "_tuned"))
    return both.sort_values(["rank_tuned", "optimizer"]).reset_index(drop=True)


def aggregate_tune(plan: dict, out_dir) -> dict[str, pd.DataFrame]:
    """The tuning stage's tables (SPEC §2.8): every trial, each selection (with a warning when it sits at the
    edge of its range), budget curves, the final runs' tables and claims, and the two rankings side by side."""
    from optimbench import tune

    out_dir = Path(out_dir)
    settings, stage = plan["settings"], plan["tune"]
    confidence = settings["confidence"]
    trials = tune.trials_table(plan)
    chosen_of = {optimizer: json.loads(Path(path).read_text()) for optimizer, path in stage["selections"].items()}
    selections = []
    for optimizer, chosen in chosen_of.items():
        selections.append({"optimizer": optimizer, "trial": chosen["trial"],
                           "setting": json.dumps(chosen["setting"], sort_keys=True), "criterion": chosen["criterion"],
                           "score": chosen["score"], "all_trials_diverged": chosen["all_diverged"],
                           "at_edge": "; ".join(chosen["at_edge"])})
    selection = pd.DataFrame(selections)
    picked = set(zip(selection["optimizer"], selection["trial"]))
    trials["selected"] = [(o, t) in picked for o, t in zip(trials["optimizer"], trials["trial"])]
    finals = [{**run, "spec": tune.apply_selection(run["spec"], chosen_of[run["optimizer"]])} for run in stage["finals"]]
    wide = load_runs([run["dir"] for run in finals])
    seeds = per_seed_summary(wide, settings["target_accuracy"])
    summary = optimizer_summary(seeds, confidence)
    default = pd.read_parquet(out_dir / "optimizer_summary.parquet")
    tables = {"tune_trials": trials, "tune_selection": selection,
              "budget_curves": tune.budget_curves(trials, stage["select_by"]), "tuned_runs": runs_table(finals),
              "tuned_seed_summary": seeds, "tuned_optimizer_summary": summary,
              "tuned_claims": claims_table(seeds, confidence), "rankings": rankings(default, summary)}
    for name, frame in tables.items():
        write_table(frame, out_dir, name)
    return tables


def main(argv=None) -> None:
    from optimbench.study import read_plan

    parser = argparse.ArgumentParser(description="Aggregate the training runs or the descent runs of a study.")
    parser.add_argument("stage", choices=["train", "descent", "tune"])
    parser.add_argument("--plan", required=True, help="the study's plan.json (the `plan` rule writes it)")
    parser.add_argument("--out", required=True, help="tables folder")
    args = parser.parse_args(argv)
    plan = read_plan(args.plan)
    stages = {"train": aggregate_train, "descent": aggregate_descent, "tune": aggregate_tune}
    tables = stages[args.stage](plan, args.out)
    for name, frame in tables.items():
        print(f"{args.out}/{name}: {len(frame)} rows")


if __name__ == "__main__":
    main()
