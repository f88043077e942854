"""The honest comparison (SPEC §2.8): a validation split held out of the training set, a search space and a
trial budget per optimizer, selection on validation only, and budget curves.

- Validation split: stratified and seeded (scikit-learn's `train_test_split`), identical in every process;
  its indices are written once with the data set's checksum and every trial and final run reads them.
- Trials: the `trials` first settings of a sampler over the optimizer's search space: a log/linear grid,
  or a scrambled Sobol sequence (`scipy.stats.qmc.Sobol`, seeded), whose first n points are a prefix of its
  first n + k, so adding trials adds jobs and changes none.
- Selection (validation only; the test set never decides): the best trial by the configured criterion;
  a diverged trial loses to any finished one; ties go to the earlier trial.
- Budget curves: the expected best validation score after k of the n trials, exactly (the expected maximum
  of k draws without replacement; Dodge et al. 2019, "Show Your Work", §3).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from optimbench.config import ConfigError
from optimbench.io import write_json

CRITERIA = {  # selection criterion -> (metrics column over a trial's epochs, reduction, higher is better)
    "final_val_acc": ("val_acc", "last", True),
    "best_val_acc": ("val_acc", "max", True),
    "lowest_val_loss": ("val_loss", "min", False),
}
SCHEDULE_FACTOR = "lr_schedule"  # a searched factor that is not an optimizer kwarg


# ---------------------------------------------------------------- validation split
def validation_split(labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of a stratified split of `size` validation images, both sorted.

    Raises:
        ConfigError: size not smaller than the training set, or too small to hold every class once.
    """
    from sklearn.model_selection import train_test_split

    n, classes = len(labels), len(np.unique(labels))
    if not classes <= size < n:
        raise ConfigError(f"tune.validation_size = {size}: must be at least the number of classes ({classes}) "
                          f"and below the training set's {n} images")
    train, val = train_test_split(np.arange(n), test_size=size, stratify=labels, random_state=seed)
    return np.sort(train), np.sort(val)


def write_split(data_npz, size: int, seed: int, out_json) -> dict:
    """Write the validation split of a canonical data file, with the data's sha256, atomically."""
    from optimbench.data import load_canonical
    from optimbench.io import sha256

    labels = load_canonical(data_npz)["y_train"]
    train, val = validation_split(labels, size, seed)
    split = {"data_sha256": sha256(data_npz), "size": size, "seed": seed,
             "train_indices": train.tolist(), "validation_indices": val.tolist()}
    write_json(out_json, split)
    return split


def read_split(path, data_npz=None) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of a split file; with `data_npz`, checks it belongs to that data.

    Raises:
        ValueError: the split was made from another data file.
    """
    split = json.loads(Path(path).read_text())
    if data_npz is not None:
        from optimbench.io import sha256

        if split["data_sha256"] != sha256(data_npz):
            raise ValueError(f"{path} was made from another data file than {data_npz}: delete it to remake it")
    return np.asarray(split["train_indices"]), np.asarray(split["validation_indices"])


# ---------------------------------------------------------------- search spaces
def search_space(tune_cfg: dict, optimizer: str) -> dict:
    """The optimizer's search space: its own entry of tune.space, else tune.space.default."""
    space = tune_cfg["space"]
    return space.get(optimizer, space["default"])


def check_space(space: dict, where: str, allowed_kwargs) -> None:
    """Refuse a space with an unknown kwarg, an empty range or a log range touching 0.

    Raises:
        ConfigError: naming the key, the value and the fix.
    """
    for name, factor in space.items():
        key = f"{where}.{name}"
        if name == SCHEDULE_FACTOR:
            if not factor.get("choices"):
                raise ConfigError(f"{key}: give `choices`, e.g. [null, cosine, warmup-cosine]")
            continue
        if allowed_kwargs is not None and name not in allowed_kwargs:
            import difflib

            close = difflib.get_close_matches(name, list(allowed_kwargs), n=1)
            raise ConfigError(f"{key}: {name!r} is not a keyword of this optimizer; valid: {sorted(allowed_kwargs)}"
                              + (f". Did you mean {close[0]!r}?" if close else ""))
        low, high = factor.get("low"), factor.get("high")
        if low is None or high is None or not low < high:
            raise ConfigError(f"{key} = {factor}: the range is empty; give low < high")
        if factor.get("log", True) and low <= 0:
            raise ConfigError(f"{key} = {factor}: a log range must stay above 0 (low > 0), or set log: false")


def _unit_points(n: int, dims: int, sampler: str, seed: int) -> np.ndarray:
    """n points in [0, 1)^dims (grid: evenly spaced incl. both ends per axis; sobol: scrambled, seeded)."""
    if sampler == "grid":
        per_axis = max(1, math.ceil(n ** (1 / dims))) if dims else 1
        axis = np.linspace(0.0, 1.0, per_axis) if per_axis > 1 else np.array([0.0])
        mesh = np.stack(np.meshgrid(*[axis] * dims, indexing="ij"), -1).reshape(-1, dims)
        return mesh[:n]
    from scipy.stats import qmc

    # Sobol points are balanced for powers of two; any prefix is still a valid low-discrepancy set.
    return qmc.Sobol(dims, scramble=True, seed=seed).random(2 ** math.ceil(math.log2(max(n, 1))))[:n]


def trial_settings(space: dict, n: int, sampler: str, seed: int) -> list[dict]:
    """The n trial settings of a space: {kwarg: value, ..., lr_schedule: choice} per trial, in order."""
    names = sorted(space)
    points = _unit_points(n, len(names), sampler, seed)
    settings = []
    for point in points:
        setting = {}
        for u, name in zip(point, names):
            factor = space[name]
            if name == SCHEDULE_FACTOR:
                choices = factor["choices"]
                setting[name] = choices[min(int(u * len(choices)), len(choices) - 1)]
            elif factor.get("log", True):  # 6 significant digits: a grid point reads 0.001, not 0.0010000000000000002
                setting[name] = float(f"{np.exp(np.log(factor['low']) + u * np.log(factor['high'] / factor['low'])):.6g}")
            else:
                setting[name] = float(f"{factor['low'] + u * (factor['high'] - factor['low']):.6g}")
        settings.append(setting)
    return settings


# ---------------------------------------------------------------- selection
def trial_score(metrics: pd.DataFrame, criterion: str) -> float:
    """A trial's score by the criterion (NaN when the trial diverged)."""
    column, reduce, _ = CRITERIA[criterion]
    if metrics["diverged"].astype(bool).any():
        return math.nan
    values = metrics[column]
    return float(values.iloc[-1] if reduce == "last" else values.max() if reduce == "max" else values.min())


def select(trials: pd.DataFrame, criterion: str) -> pd.Series:
    """The selected trial of one optimizer: the best score (direction from CRITERIA), a diverged trial (NaN
    score) losing to every finished one, ties to the earliest trial. `trials`: trial, score, diverged, ...

    Raises:
        ValueError: no trials.
    """
    if trials.empty:
        raise ValueError("no trials to select from")
    higher = CRITERIA[criterion][2]
    key = trials["score"] if higher else -trials["score"]
    ranked = trials.assign(_key=key.fillna(-math.inf)).sort_values(["_key", "trial"], ascending=[False, True])
    return ranked.iloc[0].drop("_key")


def at_edge(trials: pd.DataFrame, selected: pd.Series, space: dict) -> list[str]:
    """The searched kwargs whose selected value is the smallest or largest tried: widen the range there."""
    edges = []
    for name, factor in space.items():
        if name == SCHEDULE_FACTOR or name not in trials:
            continue
        values = trials[name].astype(float)
        if len(values.unique()) > 1 and selected[name] in (values.min(), values.max()):
            edges.append(f"{name}={selected[name]:.3g} ({'lowest' if selected[name] == values.min() else 'highest'} tried)")
    return edges


# ---------------------------------------------------------------- budget curves
def expected_max(values, k: int) -> float:
    """Expected maximum of k values drawn without replacement from `values` (Dodge et al. 2019, §3):
    with v_(1) ≤ ... ≤ v_(n) sorted, E = Σ_{i=k..n} v_(i) · C(i-1, k-1) / C(n, k)."""
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    if not 1 <= k <= n:
        raise ValueError(f"k = {k} must be between 1 and the {n} values")
    weights = np.array([math.comb(i - 1, k - 1) for i in range(1, n + 1)], dtype=float) / math.comb(n, k)
    return float(np.dot(weights, v))


def budget_curves(trials: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """Per optimizer and k = 1..n: the expected best validation score of k of its n trials (a diverged
    trial scores the worst value: accuracy 0, loss ∞), and the optimizers' rank at each k."""
    higher = CRITERIA[criterion][2]
    worst = 0.0 if higher else math.inf
    rows = []
    for optimizer, group in trials.groupby("optimizer", sort=False):
        scores = group["score"].fillna(worst).to_numpy()
        signed = scores if higher else -scores
        for k in range(1, len(scores) + 1):
            best = expected_max(signed, k)
            rows.append({"optimizer": optimizer, "k": k, "expected_best": best if higher else -best})
    curves = pd.DataFrame(rows)
    curves["rank"] = curves.groupby("k")["expected_best"].rank(ascending=not higher, method="min")
    return curves


# ---------------------------------------------------------------- a plan's trials
def trials_table(plan: dict, optimizer: str | None = None) -> pd.DataFrame:
    """The trials of a plan (optimbench.study.read_plan), one row each: optimizer, trial, the setting's
    factors, score by the plan's criterion, diverged, and the trial's last validation accuracy and loss."""
    criterion = plan["tune"]["select_by"]
    rows = []
    for trial in plan["tune"]["trials"]:
        if optimizer is not None and trial["optimizer"] != optimizer:
            continue
        metrics = pd.read_csv(Path(trial["dir"]) / "metrics.csv")
        last = metrics.iloc[-1]
        rows.append({"optimizer": trial["optimizer"], "trial": trial["trial"], **trial["setting"],
                     "score": trial_score(metrics, criterion), "diverged": bool(metrics["diverged"].astype(bool).any()),
                     "epochs": len(metrics), "final_val_acc": last["val_acc"], "final_val_loss": last["val_loss"],
                     "best_val_acc": metrics["val_acc"].max()})
    return pd.DataFrame(rows)


def write_selection(plan: dict, optimizer: str, out_json) -> dict:
    """Select the optimizer's trial (validation only) and write what the final runs use, atomically."""
    trials = trials_table(plan, optimizer)
    chosen = select(trials, plan["tune"]["select_by"])
    space = plan["tune"]["spaces"][optimizer]
    setting = {name: (chosen[name] if name == SCHEDULE_FACTOR or pd.isna(chosen[name]) else float(chosen[name]))
               for name in space}
    selection = {"optimizer": optimizer, "trial": int(chosen["trial"]), "setting": setting,
                 "criterion": plan["tune"]["select_by"], "score": None if pd.isna(chosen["score"]) else float(chosen["score"]),
                 "all_diverged": bool(trials["diverged"].all()), "at_edge": at_edge(trials, chosen, space)}
    write_json(out_json, selection)
    return selection


def apply_selection(spec: dict, selection: dict) -> dict:
    """A final run's spec with the selected setting: kwargs merged into the optimizer's, the schedule set."""
    setting = dict(selection["setting"])
    spec = json.loads(json.dumps(spec))
    if SCHEDULE_FACTOR in setting:
        spec["lr_schedule"] = setting.pop(SCHEDULE_FACTOR)
    spec["optimizer"]["kwargs"] = {**spec["optimizer"].get("kwargs", {}), **setting}
    spec["selected_trial"] = selection["trial"]
    return spec


# ---------------------------------------------------------------- entry point
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The tuning stage: the validation split, and each optimizer's selection.")
    sub = parser.add_subparsers(dest="stage", required=True)
    split = sub.add_parser("split", help="write the validation split of a canonical data file")
    split.add_argument("--data", required=True, help="canonical .npz (prepare_data's output)")
    split.add_argument("--size", type=int, required=True, help="validation images, held out of the training set")
    split.add_argument("--seed", type=int, required=True, help="seed of the stratified split")
    split.add_argument("--out", required=True, help="split JSON to write (indices and the data's sha256)")
    choose = sub.add_parser("select", help="select an optimizer's trial on validation")
    choose.add_argument("--plan", required=True, help="the study's plan.json")
    choose.add_argument("--optimizer", required=True)
    choose.add_argument("--out", required=True, help="selection JSON to write")
    args = parser.parse_args(argv)
    if args.stage == "split":
        done = write_split(args.data, args.size, args.seed, args.out)
        print(f"{args.out}: {len(done['train_indices'])} training / {len(done['validation_indices'])} validation images")
    else:
        from optimbench.study import read_plan

        chosen = write_selection(read_plan(args.plan), args.optimizer, args.out)
        print(f"{args.optimizer}: trial {chosen['trial']} {chosen['setting']} ({chosen['criterion']} {chosen['score']})"
              + (f"; at the edge of the range: {chosen['at_edge']}" if chosen["at_edge"] else ""))


if __name__ == "__main__":
    main()
