"""The study's plan (SPEC §2, §3): which runs it contains, what determines each run's result, and the
files each run writes.

This is the one place for those three things. The Snakefile builds its targets from `plan(config)`; the
`plan` rule writes the plan as JSON, and aggregation, figures and the report read that file, so every
stage sees exactly the runs of this configuration (nothing is found by globbing results, and no run's
identity is parsed back from its path).

A run's spec is split in two:
- the *result spec*: everything that can change its numbers (data file, model, optimizer class and
  kwargs, seed, epochs, ...). Snakemake passes it as a non-derived `params`, so a change reruns the
  run, and the trainer fingerprints it to resume only the same run;
- *execution settings*: how it runs, not what it computes (threads, torch.compile mode, an
  optimizer's `paper` citation). These never trigger a rerun.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from optimbench import problems as registry
from optimbench.config import ConfigError

# Names from the config (optimizers, descent methods and groups) become single path components. The
# rule keeps them portable and shell-safe; dots are allowed ("article-momentum-0.1").
NAME_RULE = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
_NAME = re.compile(rf"^{NAME_RULE}$")
NAME_HELP = ("a name must start with a letter or digit and hold only letters, digits, '_', '.', '+' and '-' "
             "(it becomes a folder name; no spaces or slashes)")

# train.* keys that can change a run's numbers (the result spec); the rest of train.* is execution or
# scheduling (threads, compile, gpus, runs_per_gpu, mem_mb, minutes_per_epoch, seeds, optimizers, target).
TRAIN_RESULT_KEYS = ("width", "pretrained", "epochs", "batch_size", "eval_batch_size", "lr_schedule", "device",
                     "channels_last", "bf16", "deterministic", "train_subset", "test_subset")
# The train.* keys a problem may set for itself (problem_settings.<problem>), besides its target.
PROBLEM_TRAIN_KEYS = ("width", "epochs", "batch_size", "eval_batch_size", "train_subset", "test_subset")
RESNET18_PROBLEM_MODEL = "resnet18_cifar"  # problems with this registry model train train.model's ResNet18
TRAIN_EXECUTION_KEYS = ("compile",)
ENTRY_RESULT_KEYS = ("class", "kwargs", "demon")  # an optimizer entry's `paper` is a citation


def _digest(obj, length: int = 8) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:length]


# ---------------------------------------------------------------- names
def check_names(config: dict) -> None:
    """Every config name that becomes a path component follows NAME_RULE.

    Raises:
        ConfigError: naming the key, the value and the rule.
    """
    places = [(f"problems[{i}]", name) for i, name in enumerate(config["problems"])]
    places += [(f"optimizers.{name}", name) for name in config["optimizers"]]
    places += [(f"descent.methods.{name}", name) for name in config["descent"]["methods"]]
    places += [(f"descent.groups[{i}].name", g["name"]) for i, g in enumerate(config["descent"]["groups"])]
    bad = [f"{key} = {value!r}" for key, value in places if not _NAME.match(str(value))]
    if bad:
        raise ConfigError(f"invalid name(s): {'; '.join(bad)}. Rename: {NAME_HELP}.")


# ---------------------------------------------------------------- problems and their data
def data_spec(config: dict, problem: str) -> dict:
    """What determines the problem's canonical data file: its data set, source and that source's own
    settings (optimbench.formats.source_spec); a problem pinned to a source (digits-*) uses it.

    Raises:
        ConfigError: the configured source cannot give this problem's data set (naming the keys to set).
    """
    from optimbench import formats
    from optimbench.data import DataError

    p = registry.get(problem)
    try:
        return formats.source_spec(p.dataset, config["data"], p.source)
    except DataError as exc:
        raise ConfigError(f"problems: {problem!r} ({p.dataset}): {exc}") from None


def data_stem(spec: dict) -> str:
    """File stem of a canonical data file, keyed by what determines it (`mnist-digits-1a2b3c4d`), so
    studies with other settings keep their own file; a download is the same everywhere (`cifar10`)."""
    if spec["source"] == "download":
        return spec["dataset"]
    return f"{spec['dataset']}-{spec['source']}-{_digest(spec)}"


def problem_train(config: dict, problem: str) -> dict:
    """The train.* result settings of one problem: train's, then its problem_settings. The ResNet18
    problems train train.model at train.width; the others their registry model at its paper's size
    (width None) unless problem_settings.<problem>.width sets one."""
    train, p = config["train"], registry.get(problem)
    settings = {k: train[k] for k in TRAIN_RESULT_KEYS if k in train}
    if p.model == RESNET18_PROBLEM_MODEL:
        settings["model"] = train["model"]
    else:
        settings.update(model=p.model, width=None, pretrained=None)
    own = config["problem_settings"].get(problem, {})
    settings.update({k: own[k] for k in PROBLEM_TRAIN_KEYS if k in own})
    return settings


def problem_target(config: dict, problem: str) -> float:
    """The primary metric's target: problem_settings.<problem>.target, else the registry's."""
    return float(config["problem_settings"].get(problem, {}).get("target", registry.get(problem).target))


def _data_words(data: dict) -> str:
    """The data as a reader names it: `cifar10`, or `digits as cifar10 files` for a generated source."""
    if data["source"] in ("download", "archive"):
        return data["dataset"]
    return f"{data['source']} as {data['dataset']} files"


def problem_summary(config: dict, problem: str, data: dict) -> dict:
    """What the tables and report need about a problem (plan settings["problems"][name])."""
    p = registry.get(problem)
    train = problem_train(config, problem)
    width = f"width {train['width']}" if train["width"] else "the paper's size"
    metrics = [{"name": f"{split}_{m.name}", "higher_is_better": m.higher_is_better, "low": m.low, "high": m.high}
               for split in ("train", "val", "test") for m in p.task.metric_defs]
    return {"dataset": p.dataset, "model": train["model"], "kind": p.kind, "primary": p.primary,
            "higher_is_better": p.primary_metric.higher_is_better, "target": problem_target(config, problem),
            "title": f"{problem} ({_data_words(data)}, {train['model']} at {width})", "data_source": data["source"],
            "epochs": train["epochs"], "width": train["width"], "paper": p.paper, "metrics": metrics}


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


# Path patterns (Snakemake wildcards in braces); `paths(results_dir)` fills in the folder.
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


def pattern(template: str, results_dir: str) -> str:
    """A path template with the results folder filled in and every other field left as a wildcard."""
    return template.replace("{results}", results_dir)


def execution_settings(train: dict) -> dict:
    """How every training job of the study executes (train.* TRAIN_EXECUTION_KEYS): never a rerun trigger."""
    return {k: train[k] for k in TRAIN_EXECUTION_KEYS if k in train}


def train_spec(config: dict, problem: str, optimizer: str, seed: int, data_file: str) -> dict:
    """What determines one training run's results (the trainer's --spec)."""
    entry = config["optimizers"][optimizer]
    return {"problem": problem, "dataset": registry.get(problem).dataset, "data": data_file,
            "seed": int(seed), "optimizer_name": optimizer,
            "optimizer": {k: entry[k] for k in ENTRY_RESULT_KEYS if k in entry}, **problem_train(config, problem)}


def descent_spec(config: dict, group: dict, function: str, method: str, gradient: str) -> dict:
    """What determines one descent run (descent's --spec): the group's own settings over the defaults."""
    from optimbench.functions import get

    d = config["descent"]
    spec = {"group": group["name"], "function": function, "method": method, "gradient": gradient, "h": d["h"],
            "tol": (d["tol"] or d["h"]) if group.get("early_stop", True) else 0.0,
            "max_epochs": group.get("max_epochs") or d["max_epochs"],
            "start": list(group.get("start") or get(function).start)}
    if method in d["methods"]:
        spec.update(kind="article", **d["methods"][method])
    else:
        entry = config["optimizers"][method]
        overrides = group.get("kwargs", {})
        spec.update(kind="optimizer", optimizer={k: entry[k] for k in ENTRY_RESULT_KEYS if k in entry},
                    kwargs=overrides, lr=overrides.get("lr", entry.get("kwargs", {}).get("lr")))
        if group.get("tune"):
            spec["tune"] = group["tune"]
    return spec


@dataclass
class Plan:
    """The whole study: its data file, training runs and descent runs, and where the stages write."""

    results_dir: str
    data: dict  # data stem -> {file, summary, spec}: every canonical data file the study needs
    problem_data: dict  # problem -> its data stem
    train_runs: list[TrainRun]
    descent_runs: list[DescentRun]
    settings: dict  # what the tables and report need (target, confidence, title, the train settings)
    tune: dict | None = None  # the tuning stage (tune_plan), when tune.enabled

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

    def train_run(self, problem: str, optimizer: str, seed) -> TrainRun:
        key = (problem, optimizer, int(seed))
        return next(r for r in self.train_runs if (r.problem, r.optimizer, r.seed) == key)

    def descent_run(self, group: str, function: str, method: str, gradient: str) -> DescentRun:
        key = (group, function, method, gradient)
        return next(r for r in self.descent_runs if (r.group, r.function, r.method, r.gradient) == key)

    def train_files(self, name: str) -> list[str]:
        return [run.file(name) for run in self.train_runs]

    def descent_files(self, name: str) -> list[str]:
        return [run.file(name) for run in self.descent_runs]

    def trial(self, problem: str, optimizer: str, trial) -> dict:
        key = (problem, optimizer, int(trial))
        return next(t for t in self.tune["trials"] if (t["problem"], t["optimizer"], t["trial"]) == key)

    def tuned_run(self, problem: str, optimizer: str, seed) -> TrainRun:
        key = (problem, optimizer, int(seed))
        return next(r for r in self.tune["finals"] if (r.problem, r.optimizer, r.seed) == key)

    def trial_files(self, name: str, problem: str | None = None, optimizer: str | None = None) -> list[str]:
        return [f"{t['dir']}/{name}" for t in (self.tune or {}).get("trials", [])
                if (problem is None or t["problem"] == problem) and (optimizer is None or t["optimizer"] == optimizer)]

    def selection_plan(self, problem: str, optimizer: str) -> dict:
        """The part of the plan one selection reads (optimbench.tune.write_selection): the problem's metrics,
        the criterion, the optimizer's space and its trials on that problem. The `select` rule passes it as
        a param, so adding a problem or an optimizer re-selects nothing else (the plan file would)."""
        trials = [{k: v for k, v in t.items() if k != "spec"} for t in self.tune["trials"]
                  if (t["problem"], t["optimizer"]) == (problem, optimizer)]
        return {"settings": {"problems": {problem: self.settings["problems"][problem]}},
                "tune": {"select_by": self.tune["select_by"], "spaces": {optimizer: self.tune["spaces"][optimizer]},
                         "trials": trials}}

    def selection_files(self) -> list[str]:
        return [path for by_optimizer in (self.tune or {}).get("selections", {}).values()
                for path in by_optimizer.values()]

    def split_file(self, problem: str) -> list[str]:
        """The problem's validation split file as a one-item list (none for a data set with its own
        validation stream, PTB), for a rule's input."""
        path = (self.tune or {}).get("split_files", {}).get(problem)
        return [path] if path else []

    def tuned_files(self, name: str) -> list[str]:
        return [run.file(name) for run in (self.tune or {}).get("finals", [])]

    def descent_functions(self) -> list[str]:
        return sorted({run.function for run in self.descent_runs})

    def to_json(self) -> str:
        """The plan as the stages downstream of the runs read it: what the runs are and compute. Execution
        settings are left out, so changing them (threads, compile) rewrites nothing downstream."""
        plain = asdict(self)
        for run in plain["train_runs"] + (plain["tune"]["finals"] if plain["tune"] else []):
            del run["execution"]
        return json.dumps(plain, sort_keys=True, indent=1)


def plan(config: dict) -> Plan:
    """The study a validated config describes (config.validate first): every problem × optimizer × seed.

    Raises:
        ConfigError: a name that cannot become a path component (check_names), a source that cannot give a
        problem's data set, a bad tuning stage (tune_plan).
    """
    check_names(config)
    results = config["results_dir"]
    train = config["train"]
    data, problem_data, runs = {}, {}, []
    for problem in config["problems"]:
        spec = data_spec(config, problem)
        stem = data_stem(spec)
        data[stem] = {"file": DATA_FILE.format(stem=stem), "summary": DATA_SUMMARY.format(stem=stem), "spec": spec}
        problem_data[problem] = stem
        for optimizer in train["optimizers"]:
            for seed in train["seeds"]:
                spec = train_spec(config, problem, optimizer, seed, data[stem]["file"])
                fields = dict(problem=problem, optimizer=optimizer, seed=int(seed))
                runs.append(TrainRun(**fields, dataset=spec["dataset"], model=spec["model"],
                                     dir=TRAIN_DIR.format(results=results, **fields),
                                     benchmark=TRAIN_BENCHMARK.format(results=results, **fields),
                                     spec=spec, execution=execution_settings(train)))
    descents = []
    for i, group in enumerate(config["descent"]["groups"]):
        search = group.get("tune")
        if search and not search["low"] < search["high"]:
            raise ConfigError(f"descent.groups[{i}].tune = {search}: the range is empty; give low < high")
        for function in group["functions"]:
            for method in group["methods"]:
                for gradient in group["gradients"]:
                    fields = dict(group=group["name"], function=function, method=method, gradient=gradient)
                    descents.append(DescentRun(**fields, dir=DESCENT_DIR.format(results=results, **fields),
                                               figure=DESCENT_FIGURE.format(results=results, **fields),
                                               spec=descent_spec(config, group, function, method, gradient)))
    settings = {"confidence": config["aggregate"]["confidence"], "title": config["report"]["title"],
                "gpu_share": train["gpus"] / train["runs_per_gpu"],
                "train": {k: train[k] for k in TRAIN_RESULT_KEYS + ("model", "seeds", "optimizers")},
                "problems": {p: problem_summary(config, p, data[problem_data[p]]["spec"]) for p in config["problems"]}}
    return Plan(results_dir=results, data=data, problem_data=problem_data, train_runs=runs, descent_runs=descents,
                settings=settings, tune=tune_plan(config, data, problem_data) if config["tune"]["enabled"] else None)


TRIAL_DIR = "{results}/tune/{problem}/{optimizer}/trial{trial}"
SELECTION = "{results}/tune/{problem}/{optimizer}/selected.json"
TUNED_DIR = "{results}/tuned/train/{problem}/{optimizer}/seed{seed}"
TUNED_BENCHMARK = "{results}/benchmarks/tuned/{problem}/{optimizer}/seed{seed}.tsv"
# Criteria on one metric column whatever the problem (final_val / best_val follow each problem's primary).
FIXED_CRITERIA_COLUMNS = {"final_val_acc": "val_acc", "best_val_acc": "val_acc", "lowest_val_loss": "val_loss"}


def _optimizer_kwargs(entry: dict) -> set | None:
    """The keyword arguments an optimizer class accepts (None when it takes **kwargs)."""
    import inspect

    from optimbench.optim import resolve_class

    parameters = inspect.signature(resolve_class(entry["class"])).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return {name for name in parameters if name not in ("self", "params")}


def _validation(config: dict, problem: str, data: dict) -> str:
    """The problem's validation: a stratified split file of its training images (checked against the data's
    size), or "valid" for a data set that ships its own validation stream (PTB)."""
    from optimbench import formats

    tune, train = config["tune"], problem_train(config, problem)
    sizes = formats.split_sizes(data["spec"])
    if sizes is None:
        return "valid"
    n_train = sizes[0]
    least = max(10, formats.CLASSES[data["spec"]["dataset"]])  # a stratified split holds every class once
    if not least <= tune["validation_size"] <= n_train - train["batch_size"]:
        raise ConfigError(f"tune.validation_size = {tune['validation_size']}: the {n_train:,} training examples of "
                          f"problem {problem!r} (data.source {data['spec']['source']!r}) must keep at least one batch "
                          f"({train['batch_size']}) for training and give at least {least} for validation (one per "
                          f"class, and 10); choose a size between {least} and {n_train - train['batch_size']}")
    stem = Path(data["file"]).stem
    return SPLIT_FILE.format(stem=stem, size=tune["validation_size"], seed=tune["split_seed"])


def tune_plan(config: dict, data: dict, problem_data: dict) -> dict:
    """The tuning stage (SPEC §2.8), per problem: its validation split, each optimizer's search space and
    trials (optimbench.tune.trial_settings), where each selection is written, and the final runs over the seeds.

    Raises:
        ConfigError: an unknown optimizer to tune, a bad search space (tune.check_space), a validation size
        the data cannot give, or a criterion whose metric a problem does not report (final_val_acc on a VAE).
    """
    from optimbench import tune as tuning

    tune, train = config["tune"], config["train"]
    results = config["results_dir"]
    optimizers = tune["optimizers"] or train["optimizers"]
    unknown = [o for o in optimizers if o not in config["optimizers"]]
    if unknown:
        raise ConfigError(f"tune.optimizers: {unknown} are not in the optimizers table; known: "
                          f"{sorted(config['optimizers'])}")
    spaces = {}
    for optimizer in optimizers:
        space = tuning.search_space(tune, optimizer)
        where = f"tune.space.{optimizer if optimizer in tune['space'] else 'default'}"
        tuning.check_space(space, where, _optimizer_kwargs(config["optimizers"][optimizer]))
        spaces[optimizer] = space
    split_files, trials, selections, finals = {}, [], {}, []
    for problem in config["problems"]:
        column = FIXED_CRITERIA_COLUMNS.get(tune["select_by"])
        names = [m.name for m in registry.get(problem).task.metric_defs]
        if column and column.removeprefix("val_") not in names:
            raise ConfigError(f"tune.select_by = {tune['select_by']!r}: problem {problem!r} reports no {column} "
                              f"(its metrics: {names}); use final_val or best_val (each problem's primary metric)")
        stem = problem_data[problem]
        validation = _validation(config, problem, data[stem])
        split_files[problem] = None if validation == "valid" else validation
        selections[problem] = {}
        for optimizer in optimizers:
            base = {**train_spec(config, problem, optimizer, tune["seed"], data[stem]["file"]),
                    "validation": validation, "test": "never"}
            base["epochs"] = tune["epochs"] or base["epochs"]
            for k, setting in enumerate(tuning.trial_settings(spaces[optimizer], tune["trials"], tune["sampler"],
                                                              tune["sampler_seed"])):
                fields = dict(problem=problem, optimizer=optimizer, trial=k)
                spec = tuning.apply_selection(base, {"setting": setting, "trial": k})
                trials.append({**fields, "setting": setting, "dir": TRIAL_DIR.format(results=results, **fields),
                               "spec": spec})
            selections[problem][optimizer] = SELECTION.format(results=results, problem=problem, optimizer=optimizer)
            for seed in train["seeds"]:
                fields = dict(problem=problem, optimizer=optimizer, seed=int(seed))
                spec = {**train_spec(config, problem, optimizer, seed, data[stem]["file"]), "validation": validation,
                        "test": "final"}
                finals.append(TrainRun(**fields, dataset=spec["dataset"], model=spec["model"],
                                       dir=TUNED_DIR.format(results=results, **fields),
                                       benchmark=TUNED_BENCHMARK.format(results=results, **fields), spec=spec,
                                       execution=execution_settings(train)))
    return {"optimizers": optimizers, "split_files": split_files, "validation_size": tune["validation_size"],
            "split_seed": tune["split_seed"], "select_by": tune["select_by"], "sampler": tune["sampler"],
            "spaces": spaces, "trials": trials, "selections": selections, "finals": finals}


def write_plan(plan_json: str, path) -> None:
    """Write the plan's JSON (Plan.to_json) atomically: the `plan` rule's one call."""
    from optimbench.io import write_text

    write_text(path, plan_json + "\n")


def read_plan(path) -> dict:
    """A plan written by the `plan` rule, as plain data (train_runs, descent_runs, settings, ...)."""
    return json.loads(Path(path).read_text())


def missing_runs(the_plan: Plan, workdir=".") -> list[str]:
    """The finished-run markers (metrics.csv, summary.csv) of this plan that are not on disk."""
    wanted = the_plan.train_files("metrics.csv") + the_plan.descent_files("summary.csv")
    return [path for path in wanted if not (Path(workdir) / path).exists()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The study's plan: its runs and their files.")
    parser.add_argument("configs", nargs="+", help="config.yaml, then override files (later ones win)")
    parser.add_argument("--missing", action="store_true",
                        help="list the runs whose results are missing and exit 1 if there are any")
    parser.add_argument("--workdir", default=".", help="the folder the study runs in")
    args = parser.parse_args(argv)
    from optimbench.config import ConfigError, load

    try:
        the_plan = plan(load(args.configs))
    except ConfigError as exc:
        raise SystemExit(f"{exc}") from None
    if not args.missing:
        print(the_plan.to_json())
        return
    missing = missing_runs(the_plan, args.workdir)
    if missing:
        print(f"{len(missing)} run(s) of this study have no results yet:", *missing, sep="\n  ")
        print("Run the study first (`make study` with the same PRESET/CONFIG, or `make demo`); "
              "`make report` never trains.")
        raise SystemExit(1)
    print(f"all {len(the_plan.train_runs)} training and {len(the_plan.descent_runs)} descent runs are present")


if __name__ == "__main__":
    main()
