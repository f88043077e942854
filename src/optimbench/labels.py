"""How metrics and data sets read in figures, the plan and the report: names for people, with their direction.

A metric column is `{split}_{name}` (optimbench.problems): `test_neg_elbo` reads "test negative ELBO",
`train_acc` "training accuracy". What a problem's metrics are (direction, range, primary, target) is the
plan's (optimbench.runs.StudyProblem, optimbench.metrics.Metric); this module only names them.
"""

from __future__ import annotations

import math

SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}  # a column's split word, for people
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST",
                 "stl10": "STL-10", "ptb": "Penn Treebank", "svhn": "SVHN"}
GENERATED_SOURCES = {"digits": "digits"}  # a source that writes its data in another data set's files
NAMES = {"acc": "accuracy", "loss": "loss", "neg_elbo": "negative ELBO", "recon": "reconstruction loss",
         "kl": "KL divergence", "perplexity": "perplexity"}


def data_words(dataset: str, source: str = "") -> str:
    """A data set as a reader names it, with its source when that is not the data set itself: "CIFAR-10",
    "digits (CIFAR-10 format)" (scikit-learn's digits written as CIFAR-10 files)."""
    name = DATASET_NAMES.get(str(dataset), str(dataset))
    if source and source not in ("download", "archive", "", None) and source != dataset:
        return f"{GENERATED_SOURCES.get(source, source)} ({name} format)"
    return name


def metric_label(column: str) -> str:
    """`test_neg_elbo` -> "test negative ELBO"; a name without a known split or metric stays as it is."""
    split, _, name = column.partition("_")
    if split not in SPLIT_NAMES or not name:
        return NAMES.get(column, column)
    return f"{SPLIT_NAMES[split]} {NAMES.get(name, name.replace('_', ' '))}"


def direction(higher_is_better: bool) -> str:
    return "higher is better" if higher_is_better else "lower is better"


def axis_label(column: str, higher_is_better: bool) -> str:
    """`test_neg_elbo`, False -> "test negative ELBO (lower is better)"."""
    return f"{metric_label(column)} ({direction(higher_is_better)})"


DIGITS = 4  # significant digits of every number the report prints (`number`)


def number(value: float, digits: int = DIGITS) -> str:
    """A value as the report prints it, to `digits` significant digits: 0.6172, 367.3, 4412; beyond 10⁶ or
    below 10⁻³ in scientific notation (2.667e+08), so a blow-up never prints nine digits and four decimals;
    ±∞ as the symbol (a diverged run's score), NaN as "–"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if not -3 <= magnitude < 6:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{max(digits - 1 - magnitude, 0)}f}"


def target_text(column: str, higher_is_better: bool, target: float) -> str:
    """The target as a condition: "test accuracy ≥ 0.5", "test negative ELBO ≤ 400"."""
    return f"{metric_label(column)} {'≥' if higher_is_better else '≤'} {target:g}"


def code_label(code: dict | None) -> str:
    """A code fingerprint (code_fingerprint) in a few words for tables: `torch 2.5.1`, `pytorch_optimizer 3.1.0`,
    `lion.py sha256:1a2b3c4d5e6f7a8b`, `optimbench.yellowfin sha256:…`, `+ demon sha256:…`; "" for none
    (a run recorded before fingerprints)."""
    if not code:
        return ""
    if "torch" in code:
        words = f"torch {code['torch']}"
    elif "package" in code:
        words = f"{code['package']} {code['version']}"
    else:
        words = f"{code.get('file') or code.get('module')} sha256:{code['sha256']}"
    return words + (f" + demon sha256:{code['demon']}" if "demon" in code else "")
