"""The tuning stage's search (SPEC §2.8): each optimizer's search space, the trials a sampler draws from
it, the selection criteria and what a selected setting changes in a run's spec.

- Trials: `trials` settings of a sampler over the optimizer's search space, every factor covered and no
  two alike (else the budget is refused, naming the smallest that can): the full log/linear grid of exactly
  that many points, or a scrambled Sobol sequence (`scipy.stats.qmc.Sobol`, seeded), whose first n points are
  a prefix of its first n + k, so adding trials adds jobs and changes none. Booleans and listed values are
  categorical (`choices`), never a float range.
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
from optimbench.runs import SCHEDULE_FACTOR

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


SCHEDULES = (None, "cosine", "linear", "warmup-cosine")  # the lr_schedule factor's choices (optim.lr_scheduler)


def is_categorical(factor: dict) -> bool:
    """Whether a factor is searched over its `choices` (lr_schedule, booleans, any listed values), not a range."""
    return "choices" in factor


def check_space(space: dict, where: str, allowed_kwargs) -> None:
    """Refuse a space with an unknown kwarg, an empty range, a log range touching 0, a factor that is both a
    range and choices, empty or repeated choices, a schedule that is not one, or a range over a keyword a
    real number cannot be (a boolean like SGD's nesterov, a tuple like betas, a string: search those with
    `choices`).

    allowed_kwargs: the optimizer's keywords, as {name: its value in the entry or its default} (whose type
    tells a boolean or a tuple keyword), a set of names, or None (a class taking **kwargs: any name).

    Raises:
        ConfigError: naming the key, the value and the fix.
    """
    for name, factor in space.items():
        key = f"{where}.{name}"
        if name != SCHEDULE_FACTOR and allowed_kwargs is not None and name not in allowed_kwargs:
            close = difflib.get_close_matches(name, list(allowed_kwargs), n=1)
            raise ConfigError(f"{key}: {name!r} is not a keyword of this optimizer; valid: {sorted(allowed_kwargs)}"
                              + (f". Did you mean {close[0]!r}?" if close else ""))
        if name == SCHEDULE_FACTOR or is_categorical(factor):
            _check_choices(key, name, factor)
            continue
        low, high = factor.get("low"), factor.get("high")
        if low is None or high is None or not low < high:
            raise ConfigError(f"{key} = {factor}: the range is empty; give low < high")
        if factor.get("log", True) and low <= 0:
            raise ConfigError(f"{key} = {factor}: a log range must stay above 0 (low > 0), or set log: false")
        default = allowed_kwargs.get(name) if isinstance(allowed_kwargs, dict) else None
        # not int: torch writes real keywords with integer defaults (SGD's momentum=0)
        if isinstance(default, (bool, tuple, list, str)):
            kind = "boolean" if isinstance(default, bool) else type(default).__name__
            example = "[false, true]" if isinstance(default, bool) else f"[{default!r}, ...]"
            raise ConfigError(f"{key} = {factor}: {name!r} is a {kind} keyword (default {default!r}); a range "
                              f"searches real numbers. Search it as categorical: `{name}: {{choices: {example}}}`")


def _check_choices(key: str, name: str, factor: dict) -> None:
    choices = factor.get("choices")
    if not choices:
        example = "[null, cosine, warmup-cosine]" if name == SCHEDULE_FACTOR else "[false, true]"
        raise ConfigError(f"{key}: give `choices`, e.g. {example}")
    if {"low", "high", "log"} & set(factor):
        raise ConfigError(f"{key} = {factor}: a factor is either a range (low, high, log) or `choices`, not both")
    if len({repr(c) for c in choices}) != len(choices):
        raise ConfigError(f"{key}.choices = {choices}: a choice is repeated; list each once")
    if name == SCHEDULE_FACTOR and any(c not in SCHEDULES for c in choices):
        raise ConfigError(f"{key}.choices = {choices}: schedules are {list(SCHEDULES)} (null = constant lr)")


# ---------------------------------------------------------------- samplers
def _levels(factor: dict) -> int | None:
    """A factor's fixed number of levels: its choices' count, or None for a range (any count ≥ 2)."""
    return len(factor["choices"]) if is_categorical(factor) else None


def grid_shape(space: dict, n: int) -> list[int]:
    """Levels per factor (in sorted name order) of the full grid of exactly n trials: each categorical
    factor takes all its choices, each range at least 2 levels (both ends), their product = n; among the
    shapes that fit, the most even over the ranges (extra levels to the earlier names).

    Raises:
        ValueError: no such grid, naming the smallest budget that makes one and the nearest below and above n.
    """
    shape = _grid_shape(space, n)
    if shape is None:
        names = sorted(space)
        smallest = math.prod(_levels(space[name]) or 2 for name in names)
        fits = [m for m in range(smallest, max(n, smallest) * 2 + 1) if _grid_shape(space, m)]
        below, above = [m for m in fits if m < n], [m for m in fits if m > n]
        nearest = ([str(below[-1])] if below else []) + ([str(above[0])] if above else [])
        what = " × ".join(f"{name} ({_levels(space[name])} choices)" if _levels(space[name]) else
                          f"{name} (≥ 2 levels)" for name in names)
        raise ValueError(f"a grid over {what} has no layout of exactly {n} trials that tries every choice and both "
                         f"ends of every range, each trial once; the smallest budget that can is {smallest}; the "
                         f"nearest: {' or '.join(nearest)}")
    return shape


def _grid_shape(space: dict, n: int) -> list[int] | None:
    names = sorted(space)
    fixed = math.prod(_levels(space[name]) or 1 for name in names)
    ranges = [i for i, name in enumerate(names) if _levels(space[name]) is None]
    shape = _range_shape(n // fixed, len(ranges)) if n % fixed == 0 else None
    if shape is None:
        return None
    levels = [_levels(space[name]) for name in names]
    for i, count in zip(ranges, shape):
        levels[i] = count
    return levels


def _range_shape(m: int, d: int) -> list[int] | None:
    """d integers ≥ 2 whose product is m, as even as possible, larger first; [] when d = 0 and m = 1."""
    if d == 0:
        return [] if m == 1 else None
    best = None
    for first in range(2, m + 1):
        if m % first:
            continue
        rest = _range_shape(m // first, d - 1)
        if rest is not None and first >= max(rest, default=0):
            shape = [first, *rest]
            if best is None or max(shape) - min(shape) < max(best) - min(best):
                best = shape
    return best


def _grid_points(space: dict, n: int) -> np.ndarray:
    """The full grid (grid_shape) in [0, 1]^d: a range's levels evenly spaced incl. both ends, a categorical
    factor's k levels at the centres of k equal cells (so `_value` gives each choice once); the first name
    varies slowest."""
    axes = [np.linspace(0.0, 1.0, count) if _levels(space[name]) is None else (np.arange(count) + 0.5) / count
            for name, count in zip(sorted(space), grid_shape(space, n))]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))


def _sobol_points(dims: int, n: int, seed: int) -> np.ndarray:
    # Sobol points are balanced for powers of two; any prefix is still a valid low-discrepancy set.
    return qmc.Sobol(dims, scramble=True, seed=seed).random(2 ** math.ceil(math.log2(max(n, 1))))[:n]


def _value(factor: dict, u: float):
    """The factor's value at u in [0, 1]: choice ⌊u·k⌋ (the last for u = 1), or the range's point at u (log
    or linear), kept to 6 significant digits (a grid point reads 0.001, not 0.0010000000000000002)."""
    if is_categorical(factor):
        choices = factor["choices"]
        return choices[min(int(u * len(choices)), len(choices) - 1)]
    low, high = factor["low"], factor["high"]
    value = np.exp(np.log(low) + u * np.log(high / low)) if factor.get("log", True) else low + u * (high - low)
    return float(f"{value:.6g}")


def _settings(space: dict, points: np.ndarray) -> list[dict]:
    names = sorted(space)
    return [{name: _value(space[name], u) for u, name in zip(point, names)} for point in points]


def coverage_problems(space: dict, settings: list[dict]) -> list[str]:
    """What a list of trial settings misses: repeated settings, a choice never tried, a range tried at one
    value only (ranges need ≥ 2 distinct values). Empty when the trials cover the space, each once."""
    problems, seen = [], {}
    for i, setting in enumerate(settings):
        seen.setdefault(repr(sorted(setting.items())), []).append(i)
    repeats = [trials for trials in seen.values() if len(trials) > 1]
    if repeats:
        problems.append("repeated trials " + ", ".join("=".join(map(str, t)) for t in repeats))
    for name, factor in sorted(space.items()):
        tried = {repr(s[name]) for s in settings}
        if is_categorical(factor):
            missing = [c for c in factor["choices"] if repr(c) not in tried]
            if missing:
                problems.append(f"{name} never tries {missing}")
        elif len(tried) < 2:
            problems.append(f"{name} never varies")
    return problems


def _smallest_sobol_budget(space: dict, n: int, seed: int, cap: int = 4096) -> str:
    """Advice for a Sobol budget that misses a factor: the smallest prefix (up to `cap` points) in which every
    choice appears and every range takes 2 values, when no two of its settings repeat; else use the grid."""
    more = _settings(space, _sobol_points(len(space), cap, seed))
    if len({repr(sorted(s.items())) for s in more[:n]}) < n:  # more trials keep the repeat
        return "no Sobol budget can (it repeats the few settings of a space of choices): use sampler: grid"
    firsts = []
    for name, factor in space.items():
        values = [repr(s[name]) for s in more]
        wanted = [repr(c) for c in factor["choices"]] if is_categorical(factor) else None
        seen, first = set(), None
        for i, value in enumerate(values):
            seen.add(value)
            if (wanted is not None and set(wanted) <= seen) or (wanted is None and len(seen) >= 2):
                first = i + 1
                break
        firsts.append(first)
    if None in firsts or coverage_problems(space, more[:max(firsts)]):
        return "no Sobol budget can (too few distinct settings in a space of choices): use sampler: grid"
    return f"the smallest budget that can is {max(max(firsts), n + 1)}"


def trial_settings(space: dict, n: int, sampler: str, seed: int) -> list[dict]:
    """The n trial settings of a space: {kwarg: value, ..., lr_schedule: choice} per trial, in order; every
    factor covered (each choice tried, each range at ≥ 2 values; the grid reaches both ends of each range)
    and no two trials alike.

    - grid: the full grid of exactly n trials (grid_shape): categorical factors at every choice, ranges at
      evenly spaced levels (log scale where log) from low to high; the first name varies slowest.
    - sobol: the first n points of a scrambled Sobol sequence (scipy.stats.qmc.Sobol, seeded); a prefix of
      the first n + k, so adding trials adds jobs and changes none.
    An empty space has one setting, {}: n = 1 (or 0) only. n = 0 gives no trials.

    Raises:
        ValueError: a budget that cannot cover the space with distinct trials, naming the smallest that can
        (for sobol, the smallest prefix that covers within 4096 points; else advice to use the grid).
    """
    if n == 0:
        return []
    if not space:
        if n != 1:
            raise ValueError(f"an empty search space has one setting (the optimizer's own): {n} trials would repeat "
                             "it; use trials: 1 or search a factor")
        return [{}]
    if sampler == "grid":
        return _settings(space, _grid_points(space, n))
    if sampler != "sobol":
        raise ValueError(f"unknown sampler {sampler!r}; use grid or sobol")
    settings = _settings(space, _sobol_points(len(space), n, seed))
    problems = coverage_problems(space, settings)
    if problems:
        raise ValueError(f"sobol (seed {seed}) with {n} trials: {'; '.join(problems)}; "
                         + _smallest_sobol_budget(space, n, seed))
    return settings


def check_budget(space: dict, where: str, n: int, sampler: str, seed: int) -> None:
    """Refuse a budget with which `sampler` cannot cover `space` (at `where`) with distinct trials.

    Raises:
        ConfigError: naming tune.trials, the sampler, the space's key and the smallest budget that can.
    """
    try:
        trial_settings(space, n, sampler, seed)
    except ValueError as exc:
        raise ConfigError(f"tune.trials = {n} with tune.sampler = {sampler} over {where}: {exc}. Change tune.trials "
                          f"(or the sampler, or the space)") from None


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
