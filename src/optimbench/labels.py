"""How metrics read in figures and the report: names for people, with their direction.

A metric column is `{split}_{name}` (optimbench.problems): `test_neg_elbo` reads "test negative ELBO",
`train_acc` "training accuracy". A problem's settings are the plan's `settings["problems"][name]`:
primary, higher_is_better, target, title, metrics (a list of {name, higher_is_better, low, high}).
"""

from __future__ import annotations

import math

SPLITS = {"train": "training", "val": "validation", "test": "test"}
NAMES = {"acc": "accuracy", "loss": "loss", "neg_elbo": "negative ELBO", "recon": "reconstruction loss",
         "kl": "KL divergence", "perplexity": "perplexity"}
# Selection criteria of optimbench.tune: reductions of a validation metric over a trial's epochs.
REDUCTIONS = {"final": "final", "best": "best", "lowest": "lowest"}
LEGACY_CRITERIA = {"final_val_acc": "val_acc", "best_val_acc": "val_acc", "lowest_val_loss": "val_loss"}


def metric_label(column: str) -> str:
    """`test_neg_elbo` -> "test negative ELBO"; a name without a known split or metric stays as it is."""
    split, _, name = column.partition("_")
    if split not in SPLITS or not name:
        return NAMES.get(column, column)
    return f"{SPLITS[split]} {NAMES.get(name, name.replace('_', ' '))}"


def direction(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def axis_label(column: str, higher_is_better: bool) -> str:
    """`test_neg_elbo`, False -> "test negative ELBO (lower is better)"."""
    return f"{metric_label(column)} ({direction(higher_is_better)})"


def number(value: float) -> str:
    """A metric value as the report prints it: 4 decimals; ±∞ as the symbol (a diverged run's score)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.4f}"


def target_text(column: str, higher_is_better: bool, target: float) -> str:
    """The target as a condition: "test accuracy ≥ 0.5", "test negative ELBO ≤ 400"."""
    return f"{metric_label(column)} {'≥' if higher_is_better else '≤'} {target:g}"


def primary_metric(problem: dict) -> dict:
    """The primary metric's entry {name, higher_is_better, low, high} of a problem's settings; an unbounded
    end (missing, or null in JSON) is ∓∞, and without a metrics list the range is unbounded."""
    entry = next((m for m in problem.get("metrics", []) if m["name"] == problem["primary"]),
                 {"name": problem["primary"], "higher_is_better": problem["higher_is_better"]})
    low, high = entry.get("low"), entry.get("high")
    return {**entry, "low": -math.inf if low is None else float(low), "high": math.inf if high is None else float(high)}


def worst(metric: dict) -> float:
    """What a diverged run scores: the range's low end for higher-is-better metrics, else its high end."""
    return metric["low"] if metric["higher_is_better"] else metric["high"]


def split_metrics(problem: dict, splits=("train", "test")) -> list[dict]:
    """The problem's metrics of the given splits, in the plan's order (for the curves' panels)."""
    return [m for m in problem["metrics"] if m["name"].partition("_")[0] in splits]


def criterion(select_by: str, problem: dict) -> tuple[str, bool]:
    """A tuning criterion (optimbench.tune.CRITERIA) for people, and whether higher is better:
    `final_val` / `best_val` are the problem's primary metric on the validation split."""
    if select_by in ("final_val", "best_val"):
        column = "val_" + problem["primary"].removeprefix("test_")
        return f"{select_by.removesuffix('_val')} {metric_label(column)}", bool(problem["higher_is_better"])
    if select_by in LEGACY_CRITERIA:
        reduction = select_by.partition("_")[0]
        return f"{REDUCTIONS[reduction]} {metric_label(LEGACY_CRITERIA[select_by])}", reduction != "lowest"
    raise KeyError(f"unknown selection criterion {select_by!r}")
