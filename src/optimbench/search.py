"""The tuning stage's search (SPEC §2.8): each optimizer's search space, the trials a sampler draws from
it, the selection criteria and what a selected setting changes in a run's spec.

- Trials: the `trials` first settings of a sampler over the optimizer's search space: a log/linear grid,
  or a scrambled Sobol sequence (`scipy.stats.qmc.Sobol`, seeded), whose first n points are a prefix of its
  first n + k, so adding trials adds jobs and changes none.
- Criteria: a reduction ("last" or "best" epoch) of one validation metric; `final_val` / `best_val` read
  each problem's primary metric on validation, the others a fixed column.
"""

from __future__ import annotations

import difflib
import math

import numpy as np
from scipy.stats import qmc

from optimbench.errors import ConfigError
from optimbench.labels import metric_label
from optimbench.specs import SCHEDULE_FACTOR

CRITERIA = {  # selection criterion -> (metrics column it reads, None = the primary on validation; reduction)
    "final_val": (None, "last"),
    "best_val": (None, "best"),
    "final_val_acc": ("val_acc", "last"),
    "best_val_acc": ("val_acc", "best"),
    "lowest_val_loss": ("val_loss", "best"),
}


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
                value = np.exp(np.log(factor['low']) + u * np.log(factor['high'] / factor['low']))
                setting[name] = float(f"{value:.6g}")
            else:
                setting[name] = float(f"{factor['low'] + u * (factor['high'] - factor['low']):.6g}")
        settings.append(setting)
    return settings


# ---------------------------------------------------------------- criteria
def validation_primary(problem) -> str:
    """The problem's primary metric on the validation split: test_neg_elbo -> val_neg_elbo."""
    return "val_" + problem.primary.name.removeprefix("test_")


def _column(criterion: str, problem) -> str:
    return CRITERIA[criterion][0] or validation_primary(problem)


def criterion_metric(criterion: str, problem) -> tuple:
    """(the Metric a criterion reads, its reduction "last" or "best") on a problem (an
    optimbench.runs.StudyProblem); "best" follows the metric's direction.

    Raises:
        ValueError: an unknown criterion, or one whose column the problem lacks (final_val_acc on a VAE),
        naming the criterion, the problem and the criteria valid for it.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown selection criterion {criterion!r}; choices: {', '.join(CRITERIA)}")
    column = _column(criterion, problem)
    if column not in problem.metrics:
        valid = [c for c in CRITERIA if _column(c, problem) in problem.metrics]
        raise ValueError(f"selection criterion {criterion!r} reads {column}, which problem {problem.name} does not "
                         f"have; valid criteria for {problem.name}: {', '.join(valid)}")
    return problem.metrics[column], CRITERIA[criterion][1]


def criterion_label(select_by: str, primary: str, higher_is_better: bool) -> tuple[str, bool]:
    """A criterion for people, and whether higher is better: `final_val` on a problem whose primary metric is
    test_acc reads "final validation accuracy"; `lowest_val_loss` reads "lowest validation loss".

    Raises:
        KeyError: an unknown criterion.
    """
    if select_by not in CRITERIA:
        raise KeyError(f"unknown selection criterion {select_by!r}")
    column, reduction = CRITERIA[select_by]
    word = select_by.partition("_")[0]
    if column is None:
        return f"{word} {metric_label('val_' + primary.removeprefix('test_'))}", bool(higher_is_better)
    return f"{word} {metric_label(column)}", word != "lowest"


def fixed_criterion_columns() -> dict[str, str]:
    """{criterion: the metrics column it reads} of the criteria that read one column whatever the problem."""
    return {name: column for name, (column, _) in CRITERIA.items() if column is not None}
