"""What a study is made of, as typed objects, and where each run's files go: `StudyProblem` (a problem as
the study runs it), `TrainRun`, `DescentRun`, `Trial`, `TuneStage`, and the path templates (Snakemake
wildcards in braces) that turn a run's identity into its folder, log and benchmark file.

optimbench.plan builds these from the config (`plan.plan`) and reads them back from plan.json
(`plan.read_plan`); every stage and rule file names a run's files through them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from optimbench.metrics import Metric


def _bound(value, default: float) -> float:
    return default if value is None else float(value)


RUN_KEYS = ["problem", "optimizer", "seed"]  # a training run's identity (TrainRun.identity), the tables' keys
GROUP_KEYS = ["problem", "optimizer"]  # what seeds are aggregated over
POSITIVE = (0.0, math.inf)  # the range of times, counts, learning rates: columns that are no metric


@dataclass(frozen=True)
class StudyProblem:
    """A problem as this study runs it (plan.json's settings["problems"][name], problem_summary): every
    metric column by name (`{split}_{name}` for train, val and test, in the plan's order), the primary
    metric, the target (the threshold of time to target, in the primary metric's unit), and what the
    report names (title, data set and source, model, width, epochs)."""

    name: str
    metrics: dict  # column name -> optimbench.metrics.Metric
    primary: Metric
    target: float
    title: str
    dataset: str
    data_source: str
    model: str
    kind: str
    epochs: int
    width: int | None
    paper: str

    @classmethod
    def from_summary(cls, name: str, entry: dict) -> "StudyProblem":
        """From a problem_summary entry; a null range end is unbounded.

        Raises:
            ValueError: the primary metric is not among the problem's metrics.
        """
        metrics = {m["name"]: Metric(m["name"], bool(m["higher_is_better"]), _bound(m.get("low"), -math.inf),
                                     _bound(m.get("high"), math.inf)) for m in entry["metrics"]}
        if entry["primary"] not in metrics:
            raise ValueError(f"problem {name}: primary metric {entry['primary']!r} is not among its metrics "
                             f"{list(metrics)}")
        return cls(name, metrics, metrics[entry["primary"]], float(entry["target"]), entry.get("title", name),
                   entry.get("dataset", ""), entry.get("data_source", ""), entry.get("model", ""),
                   entry.get("kind", ""), entry.get("epochs"), entry.get("width"), entry.get("paper", ""))

    @property
    def higher_is_better(self) -> bool:
        return self.primary.higher_is_better

    def columns(self, splits=("train", "test")) -> list[str]:
        """The metric columns of the given splits, in the plan's order (train_loss, train_acc, test_loss, ...)."""
        return [name for name in self.metrics if name.split("_", 1)[0] in splits]

    def split_metrics(self, splits=("train", "test")) -> list[Metric]:
        """The Metrics of the given splits, in the plan's order (the curves' panels)."""
        return [self.metrics[name] for name in self.columns(splits)]

    def bounds(self, column: str) -> tuple[float, float]:
        """The range of a column of this problem's tables: its metric's, else [0, ∞) (times, counts, lr)."""
        metric = self.metrics.get(column)
        return (metric.low, metric.high) if metric is not None else POSITIVE


# ---------------------------------------------------------------- runs
@dataclass(frozen=True)
class TrainRun:
    """One training job: identity (problem, optimizer, seed), result spec, execution settings and its files."""

    problem: str
    dataset: str
    model: str
    optimizer: str
    seed: int
    dir: str
    benchmark: str  # Snakemake's benchmark file of the job (wall time, memory)
    spec: dict = field(compare=False)
    execution: dict = field(compare=False)

    @property
    def identity(self) -> dict:
        return {"problem": self.problem, "optimizer": self.optimizer, "seed": self.seed}

    def file(self, name: str) -> str:
        return f"{self.dir}/{name}"


@dataclass(frozen=True)
class DescentRun:
    """One descent job: identity, spec and its files."""

    group: str
    function: str
    method: str
    gradient: str
    dir: str
    figure: str
    spec: dict = field(compare=False)

    @property
    def identity(self) -> dict:
        return {"group": self.group, "function": self.function, "method": self.method, "gradient": self.gradient}

    @property
    def label(self) -> str:
        return f"{self.method} / {self.gradient} ({self.group})"

    def file(self, name: str) -> str:
        return f"{self.dir}/{name}"


@dataclass(frozen=True)
class Trial:
    """One tuning trial: a training run on the validation split with one setting of the search space."""

    problem: str
    optimizer: str
    trial: int
    setting: dict  # {kwarg: value, ..., lr_schedule: choice}
    dir: str
    spec: dict = field(compare=False)

    def file(self, name: str) -> str:
        return f"{self.dir}/{name}"


@dataclass
class TuneStage:
    """The tuning stage (SPEC §2.8), when tune.enabled: per problem its validation split, per optimizer its
    search space and trials, where each selection is written, and the final (tuned) runs over the seeds."""

    optimizers: list[str]
    split_files: dict  # problem -> split file, or None for a data set with its own validation stream (PTB)
    validation_size: int
    split_seed: int
    select_by: str
    sampler: str
    spaces: dict  # optimizer -> {factor: {low, high, log} or {choices}}
    trials: list[Trial]
    selections: dict  # problem -> {optimizer: selection file}
    finals: list[TrainRun]  # the tuned runs


# Path templates (Snakemake wildcards in braces); `pattern(template, results_dir)` fills in the folder.
TRAIN_DIR = "{results}/train/{problem}/{optimizer}/seed{seed}"
TRAIN_LOG = "{results}/logs/train/{problem}/{optimizer}/seed{seed}.log"
TRAIN_BENCHMARK = "{results}/benchmarks/train/{problem}/{optimizer}/seed{seed}.tsv"
DATA_FILE = "resources/data/{stem}.npz"
DATA_SUMMARY = "resources/data/{stem}.json"
SPLIT_FILE = "resources/data/{stem}-validation-{size}-seed{seed}.json"
DESCENT_DIR = "{results}/descent/{group}/{function}/{method}/{gradient}"
DESCENT_LOG = "{results}/logs/descent/{group}/{function}/{method}/{gradient}.log"
DESCENT_FIGURE = "{results}/figures/descent/runs/{group}/{function}/{method}/{gradient}.png"
DATA_LOG = "resources/logs/prepare_data_{stem}.log"
SPLIT_LOG = "resources/logs/validation_split_{stem}-{size}-seed{seed}.log"
TRIAL_LOG = "{results}/logs/tune/{problem}/{optimizer}/trial{trial}.log"
SELECTION_LOG = "{results}/logs/tune/{problem}/{optimizer}/select.log"
TUNED_LOG = "{results}/logs/tuned/{problem}/{optimizer}/seed{seed}.log"
STAGE_LOG = "{results}/logs/{stage}.log"  # a job of the whole study: plan, aggregate_*, figures_*, report
TRIAL_DIR = "{results}/tune/{problem}/{optimizer}/trial{trial}"
SELECTION = "{results}/tune/{problem}/{optimizer}/selected.json"
TUNED_DIR = "{results}/tuned/train/{problem}/{optimizer}/seed{seed}"
TUNED_BENCHMARK = "{results}/benchmarks/tuned/{problem}/{optimizer}/seed{seed}.tsv"


def pattern(template: str, results_dir: str) -> str:
    """A path template with the results folder filled in and every other field left as a wildcard."""
    return template.replace("{results}", results_dir)
