"""What a study is made of, as typed objects, and where each run's files go: `StudyProblem` (a problem as
the study runs it), `TrainRun`, `DescentRun`, `Trial`, `TuneStage`, and the path templates (Snakemake
wildcards in braces) that turn a run's identity into its folder and log; and the `Plan` that
holds them, with its JSON form (`Plan.to_json`, `read_plan`).

optimbench.plan builds the Plan from the config (`plan.plan`); the stages read it back from plan.json
(`read_plan`, also importable from optimbench.plan); every stage and rule file names a run's files through
them. This module imports neither torch nor the config's checks, so reading a plan is fast (`status`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

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
    spec: dict = field(compare=False)
    execution: dict = field(compare=False)

    @property
    def identity(self) -> dict:
        return {"problem": self.problem, "optimizer": self.optimizer, "seed": self.seed}

    def file(self, name: str) -> str:
        return f"{self.dir}/{name}"


@dataclass(frozen=True)
class DescentRun:
    """One descent run: identity, spec, its job's folder (shared by every run of its group on its function: one
    job runs them all, optimbench.descent) and its own figure."""

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
CHECKPOINT = "checkpoint.pt"  # the checkpoint's file name in a run's folder (train, trial, tuned run)
WRITER_LOCK = "writer.lock"  # the lock file of a run's folder: who writes it (checkpoints.writer_lock)
TRAIN_DIR = "{results}/train/{problem}/{optimizer}/seed{seed}"
TRAIN_LOG = "{results}/logs/train/{problem}/{optimizer}/seed{seed}.log"
DATA_FILE = "resources/data/{stem}.npz"
DATA_SUMMARY = "resources/data/{stem}.json"
SPLIT_FILE = "resources/data/{stem}-validation-{size}-seed{seed}.json"
DESCENT_DIR = "{results}/descent/{group}/{function}"  # a descent job: every run of a group on a function
DESCENT_LOG = "{results}/logs/descent/{group}/{function}.log"
DESCENT_FIGURE = "{results}/figures/descent/runs/{group}/{function}/{method}/{gradient}.png"
DATA_LOG = "resources/logs/prepare_data_{stem}.log"
SPLIT_LOG = "resources/logs/validation_split_{stem}-{size}-seed{seed}.log"
TRIAL_LOG = "{results}/logs/tune/{problem}/{optimizer}/trial{trial}.log"
SELECTION_LOG = "{results}/logs/tune/{problem}/{optimizer}/select.log"
TUNED_LOG = "{results}/logs/tuned/{problem}/{optimizer}/seed{seed}.log"
PLAN_CACHE = "{results}/.cache/plan.json"  # the plan built once (plan.cached_plan), keyed by config and code
STAGE_LOG = "{results}/logs/{stage}.log"  # a job of the whole study: plan, aggregate_*, figures_*, report
SCHEDULE_FACTOR = "lr_schedule"  # a searched factor of tuning that is not an optimizer kwarg (apply_selection)
TRIAL_DIR = "{results}/tune/{problem}/{optimizer}/trial{trial}"
SELECTION = "{results}/tune/{problem}/{optimizer}/selected.json"
TUNED_DIR = "{results}/tuned/train/{problem}/{optimizer}/seed{seed}"


def pattern(template: str, results_dir: str) -> str:
    """A path template with the results folder filled in and every other field left as a wildcard."""
    return template.replace("{results}", results_dir)


# ---------------------------------------------------------------- the plan
@dataclass
class Plan:
    """The whole study: its data file, training runs and descent runs, and where the stages write."""

    results_dir: str
    data: dict  # data stem -> {file, summary, spec}: every canonical data file the study needs
    problem_data: dict  # problem -> its data stem
    train_runs: list[TrainRun]
    descent_runs: list[DescentRun]
    settings: dict  # what the tables and report need (target, confidence, title, the train settings)
    tune: TuneStage | None = None  # the tuning stage (tune_plan), when tune.enabled

    @property
    def problems(self) -> dict[str, StudyProblem]:
        """{name: StudyProblem} in the plan's order: what every table, figure and sentence reads of a problem."""
        return {name: StudyProblem.from_summary(name, entry) for name, entry in self.settings["problems"].items()}

    @property
    def confidence(self) -> float:
        return float(self.settings["confidence"])

    @property
    def tables_dir(self) -> str:
        return f"{self.results_dir}/tables"

    @property
    def figures_dir(self) -> str:
        return f"{self.results_dir}/figures"

    @property
    def plan_file(self) -> str:
        return f"{self.results_dir}/plan.json"

    @property
    def report_html(self) -> str:
        return f"{self.results_dir}/report/study.html"

    def data_file(self, problem: str) -> str:
        return self.data[self.problem_data[problem]]["file"]

    # Lookups by identity through indexes built once (a Snakefile's input functions call them once per job:
    # a scan of every run per call made planning 5,000 runs quadratic). A Plan is not changed after it is built.
    @cached_property
    def _train_index(self) -> dict:
        return {(r.problem, r.optimizer, r.seed): r for r in self.train_runs}

    @cached_property
    def _trial_index(self) -> dict:
        return {(t.problem, t.optimizer, t.trial): t for t in (self.tune.trials if self.tune else [])}

    @cached_property
    def _trials_by_pair(self) -> dict:
        pairs: dict = {}
        for trial in self.tune.trials if self.tune else []:
            pairs.setdefault((trial.problem, trial.optimizer), []).append(trial)
        return pairs

    @cached_property
    def _tuned_index(self) -> dict:
        return {(r.problem, r.optimizer, r.seed): r for r in (self.tune.finals if self.tune else [])}

    @cached_property
    def _descent_jobs(self) -> dict:
        jobs: dict = {}
        for run in self.descent_runs:
            jobs.setdefault((run.group, run.function), []).append(run)
        return jobs

    def train_run(self, problem: str, optimizer: str, seed) -> TrainRun:
        """The training run of this identity. Raises KeyError: no such run in the plan."""
        return self._train_index[problem, optimizer, int(seed)]

    def descent_run(self, group: str, function: str, method: str, gradient: str) -> DescentRun:
        key = (group, function, method, gradient)
        return next(r for r in self.descent_runs if (r.group, r.function, r.method, r.gradient) == key)

    def train_files(self, name: str) -> list[str]:
        return [run.file(name) for run in self.train_runs]

    def descent_files(self, name: str) -> list[str]:
        """The file `name` of every descent job, once each (a job's runs share its folder)."""
        return list(dict.fromkeys(run.file(name) for run in self.descent_runs))

    def descent_job(self, group: str, function: str) -> list[DescentRun]:
        """The runs of one descent job (a group on a function), in the plan's order."""
        return list(self._descent_jobs.get((group, function), []))

    def trial(self, problem: str, optimizer: str, trial) -> Trial:
        return self._trial_index[problem, optimizer, int(trial)]

    def tuned_run(self, problem: str, optimizer: str, seed) -> TrainRun:
        return self._tuned_index[problem, optimizer, int(seed)]

    def trials_of(self, problem: str | None = None, optimizer: str | None = None) -> list[Trial]:
        """The tuning trials, all or one problem's / optimizer's, in the plan's order."""
        if problem is not None and optimizer is not None:
            return list(self._trials_by_pair.get((problem, optimizer), []))
        return [t for t in (self.tune.trials if self.tune else [])
                if (problem is None or t.problem == problem) and (optimizer is None or t.optimizer == optimizer)]

    def trial_files(self, name: str, problem: str | None = None, optimizer: str | None = None) -> list[str]:
        return [t.file(name) for t in self.trials_of(problem, optimizer)]

    def selection_plan(self, problem: str, optimizer: str) -> "Plan":
        """The part of the plan one selection reads (optimbench.tune.write_selection): the problem's metrics,
        the criterion, the optimizer's space and its trials on that problem (specs left out). The `select`
        rule passes its JSON as a param, so adding a problem or an optimizer re-selects nothing else (the
        plan file would)."""
        trials = [Trial(t.problem, t.optimizer, t.trial, t.setting, t.dir, spec={})
                  for t in self.trials_of(problem, optimizer)]
        stage = TuneStage([optimizer], {}, self.tune.validation_size, self.tune.split_seed, self.tune.select_by,
                          self.tune.sampler, {optimizer: self.tune.spaces[optimizer]}, trials, {}, [])
        settings = {"problems": {problem: self.settings["problems"][problem]}}
        return Plan(self.results_dir, {}, {}, [], [], settings, stage)

    def selection_files(self) -> list[str]:
        return [path for by_optimizer in (self.tune.selections if self.tune else {}).values()
                for path in by_optimizer.values()]

    def split_file(self, problem: str) -> list[str]:
        """The problem's validation split file as a one-item list (none for a data set with its own
        validation stream, PTB), for a rule's input."""
        path = self.tune.split_files.get(problem) if self.tune else None
        return [path] if path else []

    def tuned_files(self, name: str) -> list[str]:
        return [run.file(name) for run in (self.tune.finals if self.tune else [])]

    def published_runs(self, source: str | None = None) -> list[dict]:
        """The imported published runs (optimbench.published.planned_runs' entries), all or one source's."""
        sources = self.settings.get("published", {}).get("sources", {})
        return [run for name, part in sources.items() if source in (None, name) for run in part["runs"]]

    def published_files(self, name: str, source: str | None = None) -> list[str]:
        return [f"{run['dir']}/{name}" for run in self.published_runs(source)]

    def descent_functions(self) -> list[str]:
        return sorted({run.function for run in self.descent_runs})

    def to_json(self) -> str:
        """The plan as the stages downstream of the runs read it: what the runs are and compute. Execution
        settings are left out, so changing them (threads, compile) rewrites nothing downstream."""
        plain = asdict(self)
        for run in plain["train_runs"] + (plain["tune"]["finals"] if plain["tune"] else []):
            del run["execution"]
        return json.dumps(plain, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        """The Plan that to_json wrote (execution settings, left out there, read as {})."""
        plain = json.loads(text)
        train_run = lambda run: TrainRun(**{"execution": {}, **run})  # noqa: E731
        stage = plain.get("tune")
        if stage:
            stage = TuneStage(**{**stage, "trials": [Trial(**t) for t in stage["trials"]],
                                 "finals": [train_run(r) for r in stage["finals"]]})
        return cls(plain["results_dir"], plain["data"], plain["problem_data"],
                   [train_run(r) for r in plain["train_runs"]], [DescentRun(**r) for r in plain["descent_runs"]],
                   plain["settings"], stage)


def source_hash(path) -> str:
    """sha256 prefix (16 hex digits) of a file's bytes: how a cached plan records the sources it depends on."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def current_cached_plan(path) -> Plan | None:
    """The plan in a plan cache file (plan.cached_plan writes it) when every source file it records still has
    the recorded hash, else None (none, unreadable, or code changed since). Reads JSON and hashes a few
    dozen files: no torch, no config checks (optimbench.status)."""
    try:
        cached = json.loads(Path(path).read_text())
        if all(source_hash(file) == digest for file, digest in cached["files"].items()):
            return Plan.from_json(cached["plan"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def read_plan(path) -> Plan:
    """The Plan the `plan` rule wrote (Plan.to_json), or inline JSON of one (what the select rule passes)."""
    text = str(path)
    return Plan.from_json(text if text.lstrip().startswith("{") else Path(path).read_text())


# ---------------------------------------------------------------- a selection in a run's spec
def apply_selection(spec: dict, selection: dict) -> dict:
    """A final run's spec with the selected setting: kwargs merged into the optimizer's, the schedule set."""
    setting = dict(selection["setting"])
    spec = json.loads(json.dumps(spec))
    if SCHEDULE_FACTOR in setting:
        spec["lr_schedule"] = setting.pop(SCHEDULE_FACTOR)
    spec["optimizer"]["kwargs"] = {**spec["optimizer"].get("kwargs", {}), **setting}
    spec["selected_trial"] = selection["trial"]
    return spec
