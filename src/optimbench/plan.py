"""The study's plan (SPEC §2, §3): which runs it contains, what determines each run's result, and the
files each run writes, as one typed `Plan` of the objects of optimbench.runs (`TrainRun`, `DescentRun`,
`Trial`, `TuneStage`, `StudyProblem`).

This is the one place for those things. The Snakefile builds its targets from `plan(config)`; the `plan`
rule writes the plan as JSON, and aggregation, figures and the report read it back with `read_plan`, which
returns the same `Plan` (nothing is found by globbing results, and no run's identity is parsed back from
its path). `plan(config)` also runs every check that needs the plan (sizes against the data, models at
their width, token streams): `python -m optimbench.plan --check config.yaml preset.yaml` runs them all.
What determines each run (its result spec) and the checks are optimbench.specs'.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import inspect
import json
import sys
import warnings
from pathlib import Path

import torch

from optimbench import formats, search
from optimbench import problems as registry
from optimbench.config import SCHEMA_PATH, build_checks, check_step, load_yaml_files, train_layouts, validate
from optimbench.errors import ConfigError
from optimbench.hardware import visible_device
from optimbench.io import write_text
from optimbench.optim import code_fingerprint, resolve_class
from optimbench.runs import (
    DATA_FILE,
    DATA_SUMMARY,
    DESCENT_DIR,
    DESCENT_FIGURE,
    PLAN_CACHE,
    SCHEDULE_FACTOR,
    SELECTION,
    SPLIT_FILE,
    TRAIN_DIR,
    TRIAL_DIR,
    TUNED_DIR,
    DescentRun,
    Plan,
    TrainRun,
    Trial,
    TuneStage,
    apply_selection,
    source_hash,
)
from optimbench.runs import read_plan as read_plan  # re-exported: Plan and read_plan live in runs (no torch)
from optimbench.specs import (
    TRAIN_RESULT_KEYS,
    check_models,
    check_names,
    check_sizes,
    data_spec,
    data_stem,
    descent_spec,
    execution_settings,
    problem_seeds,
    problem_summary,
    problem_train,
    published_plan,
    train_spec,
)


def plan(config: dict, checks: bool = True) -> Plan:
    """The study a validated config describes (config.validate first): every problem × optimizer × seed.
    checks=False skips the checks that build models and step optimizers (a job's re-parse: its study was
    checked when it was planned).

    Raises:
        ConfigError: a name that cannot become a path component (check_names), a source that cannot give a
        problem's data set, sizes the data cannot give (check_sizes), a model that cannot be built at its
        width (check_models), a bad tuning stage (tune_plan).
    """
    check_names(config)
    if checks:
        check_sizes(config)
        check_models(config)
    results = config["results_dir"]
    train = config["train"]
    data, problem_data, runs = {}, {}, []
    for problem in config["problems"]:
        spec = data_spec(config, problem)
        stem = data_stem(spec)
        data[stem] = {"file": DATA_FILE.format(stem=stem), "summary": DATA_SUMMARY.format(stem=stem), "spec": spec}
        problem_data[problem] = stem
        runs += [_train_run(config, problem, optimizer, seed, data[stem]["file"], TRAIN_DIR)
                 for optimizer in train["optimizers"] for seed in problem_seeds(config, problem)]
    descents = []
    for i, group in enumerate(config["descent"]["groups"]):
        lr_search = group.get("tune")
        if lr_search and not lr_search["low"] < lr_search["high"]:
            raise ConfigError(f"descent.groups[{i}].tune = {lr_search}: the range is empty; give low < high")
        for function in group["functions"]:
            for method in group["methods"]:
                for gradient in group["gradients"]:
                    fields = dict(group=group["name"], function=function, method=method, gradient=gradient)
                    descents.append(DescentRun(**fields, dir=DESCENT_DIR.format(results=results, **fields),
                                               figure=DESCENT_FIGURE.format(results=results, **fields),
                                               spec=descent_spec(config, group, function, method, gradient)))
    settings = {"confidence": config["aggregate"]["confidence"], "title": config["report"]["title"],
                "focus": config["report"].get("focus"), "baselines": config["report"].get("baselines"),
                "optimizer_settings": {name: _effective(config["optimizers"][name]) for name in train["optimizers"]},
                "gpu_share": train["gpus"] / train["runs_per_gpu"],
                "train": {k: train[k] for k in TRAIN_RESULT_KEYS + ("model", "seeds", "optimizers")},
                "problems": {p: problem_summary(config, p, data[problem_data[p]]["spec"]) for p in config["problems"]},
                "published": published_plan(config)}
    return Plan(results_dir=results, data=data, problem_data=problem_data, train_runs=runs, descent_runs=descents,
                settings=settings,
                tune=tune_plan(config, data, problem_data, checks) if config["tune"]["enabled"] else None)


def _train_run(config: dict, problem: str, optimizer: str, seed, data_file: str, dir_template: str,
               **spec_extra) -> TrainRun:
    """One training job of the study (a planned run, or a tuned run with `spec_extra` validation/test
    settings): its result spec (specs.train_spec), execution settings and its files from the templates."""
    spec = {**train_spec(config, problem, optimizer, seed, data_file), **spec_extra}
    fields = dict(problem=problem, optimizer=optimizer, seed=int(seed))
    results = config["results_dir"]
    return TrainRun(**fields, dataset=spec["dataset"], model=spec["model"],
                    dir=dir_template.format(results=results, **fields),
                    spec=spec, execution=execution_settings(config["train"]))


def _optimizer_kwargs(entry: dict) -> dict | None:
    """The keyword arguments an optimizer class accepts, each with its value in the entry or else its default
    (whose type tells a search space a boolean or an integer keyword); None when the class takes **kwargs."""
    parameters = inspect.signature(resolve_class(entry["class"])).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return None
    return {name: entry.get("kwargs", {}).get(name, p.default) for name, p in parameters.items()
            if name not in ("self", "params")}


def _effective(entry: dict) -> dict:
    """An optimizer's effective settings for the report's setup: its class's defaults with the entry's kwargs
    filled in (_optimizer_kwargs; the kwargs alone for a class taking **kwargs), as JSON values."""
    kwargs = _optimizer_kwargs(entry) or dict(entry.get("kwargs", {}))
    plain = (bool, int, float, str, list, type(None))
    return {k: list(v) if isinstance(v, tuple) else v if isinstance(v, plain) else repr(v)
            for k, v in kwargs.items()}


def _validation(config: dict, problem: str, data: dict) -> str:
    """The problem's validation: a stratified split file of its training images (checked against the data's
    size), or "valid" for a data set that ships its own validation stream (PTB)."""
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
    subset, key = train["train_subset"], _train_key(config, problem, "train_subset")
    if subset is not None and tune["validation_size"] > subset:
        # Both readings are legitimate (a small training subset for speed, a large validation split for a
        # reliable choice; or a slip): warned about, not refused (issue 27.10).
        warnings.warn(f"tune.validation_size = {tune['validation_size']} exceeds {key} = {subset} of problem "
                      f"{problem!r}: trials will validate on more images than they train on. If unintended, use a "
                      f"validation_size below {subset} (AlgoPerf holds out 10%: {max(least, subset // 10)}), or "
                      "raise the subset", UserWarning, stacklevel=2)
    if subset is not None and subset > n_train - tune["validation_size"]:
        raise ConfigError(f"{key} = {subset} with tune.validation_size = {tune['validation_size']}: problem "
                          f"{problem!r} has {n_train:,} training examples, {n_train - tune['validation_size']:,} after "
                          f"the split, so the trials and tuned runs would silently train on fewer. Use at most "
                          f"{n_train - tune['validation_size']} (or null for all)")
    stem = Path(data["file"]).stem
    return SPLIT_FILE.format(stem=stem, size=tune["validation_size"], seed=tune["split_seed"])


def _train_key(config: dict, problem: str, key: str) -> str:
    """Where a problem's train.* setting comes from: problem_settings.<problem>.<key> if set there, else train.<key>."""
    return f"problem_settings.{problem}.{key}" if key in config["problem_settings"].get(problem, {}) else f"train.{key}"


def tune_plan(config: dict, data: dict, problem_data: dict, checks: bool = True) -> TuneStage:
    """The tuning stage (SPEC §2.8), per problem: its validation split, each optimizer's search space and
    trials (optimbench.search.trial_settings), where each selection is written, and the final runs over the seeds.

    Raises:
        ConfigError: an unknown optimizer to tune, a bad search space (tune.check_space), a validation size
        the data cannot give, or a criterion whose metric a problem does not report (final_val_acc on a VAE).
    """
    tune, train = config["tune"], config["train"]
    results = config["results_dir"]
    optimizers = tune["optimizers"] or train["optimizers"]
    unknown = [o for o in optimizers if o not in config["optimizers"]]
    if unknown:
        raise ConfigError(f"tune.optimizers: {unknown} are not in the optimizers table; known: "
                          f"{sorted(config['optimizers'])}")
    spaces = {}
    for optimizer in optimizers:
        space = search.search_space(tune, optimizer)
        where = f"tune.space.{optimizer if optimizer in tune['space'] else 'default'}"
        search.check_space(space, where, _optimizer_kwargs(config["optimizers"][optimizer]))
        search.check_budget(space, where, tune["trials"], tune["sampler"], tune["sampler_seed"])
        if checks:
            check_trial_steps(config, optimizer, space, where)
        spaces[optimizer] = space
    split_files, trials, selections, finals = {}, [], {}, []
    for problem in config["problems"]:
        column = search.fixed_criterion_columns().get(tune["select_by"])
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
            for k, setting in enumerate(search.trial_settings(spaces[optimizer], tune["trials"], tune["sampler"],
                                                              tune["sampler_seed"])):
                fields = dict(problem=problem, optimizer=optimizer, trial=k)
                spec = apply_selection(base, {"setting": setting, "trial": k})
                trials.append(Trial(**fields, setting=setting, dir=TRIAL_DIR.format(results=results, **fields),
                                    spec=spec))
            selections[problem][optimizer] = SELECTION.format(results=results, problem=problem, optimizer=optimizer)
            finals += [_train_run(config, problem, optimizer, seed, data[stem]["file"], TUNED_DIR,
                                  validation=validation, test="final") for seed in problem_seeds(config, problem)]
    return TuneStage(optimizers, split_files, tune["validation_size"], tune["split_seed"], tune["select_by"],
                     tune["sampler"], spaces, trials, selections, finals)


def check_trial_steps(config: dict, optimizer: str, space: dict, where: str) -> None:
    """Every trial setting of a tuned optimizer builds and takes one training step on the trials' device
    (config.check_step): a searched value the optimizer refuses (a momentum of 1.5, a schedule it cannot
    follow) stops here, naming the space's key, not in the trial's job.

    Raises:
        ConfigError: naming tune.space.<name>.<kwarg>, its value, the trial and the optimizer's message.
    """
    tune, entry = config["tune"], config["optimizers"][optimizer]
    device = visible_device(config["train"]["device"])
    layouts = train_layouts(config, device)  # the trials' models laid out as the trainer will (channels-last)
    for k, setting in enumerate(search.trial_settings(space, tune["trials"], tune["sampler"], tune["sampler_seed"])):
        kwargs = {key: value for key, value in setting.items() if key != SCHEDULE_FACTOR}
        schedule = setting.get(SCHEDULE_FACTOR, config["train"]["lr_schedule"])
        keys = {key: f"optimizers.{optimizer}.kwargs" for key in entry.get("kwargs", {})}
        keys.update({key: where for key in kwargs})
        check_step(entry, optimizer, {**entry.get("kwargs", {}), **kwargs}, "train", device,
                   {"": f"optimizers.{optimizer}", **keys}, schedule, note=f"in trial {k}, {setting}", layouts=layouts)


# ---------------------------------------------------------------- the plan, built once (issue 38)
PACKAGE_DIR = Path(__file__).parent


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:32]


def plan_inputs(config: dict) -> tuple[str, dict]:
    """(key, files) of a cached plan of a validated config (config.validate(build=False)). The key holds the
    config, the code fingerprint of every optimizer class it names (optim.code_fingerprint), torch's version
    and the device the checks step on; `files` ({path: sha256 prefix}) every source file the plan depends on:
    optimbench's own modules and schema and the file defining each optimizer class, so that a reader without
    torch (optimbench.status) can tell whether a cached plan still holds (runs.current_cached_plan).
    Milliseconds per optimizer class, not per run."""
    classes = sorted({(entry["class"], bool(entry.get("demon"))) for entry in config["optimizers"].values()})
    sources = [*sorted(PACKAGE_DIR.rglob("*.py")), Path(SCHEMA_PATH)]
    sources += [Path(sys.modules[resolve_class(name).__module__].__file__) for name, _ in classes]
    files = {str(path.resolve()): source_hash(path) for path in sources}
    device = visible_device(config["train"]["device"])
    key = _digest({"config": config, "code": [[c, d, code_fingerprint(c, d)] for c, d in classes], "files": files,
                   "torch": torch.__version__, "device": str(device)})
    return key, files


def cached_plan(config: dict, path, write: bool = True) -> tuple[Plan, str]:
    """(the plan of a validated config (config.validate(build=False)), the sha256 prefix of its JSON): read
    from the cache file `path` (runs.PLAN_CACHE) when it holds the plan of the same key (plan_inputs), else
    checked (config.build_checks and every check of `plan`), built and, with `write`, written there
    atomically. A bad config raises ConfigError as `plan` does; an unreadable cache is rebuilt."""
    key, files = plan_inputs(config)
    try:
        cached = json.loads(Path(path).read_text())
        if cached["key"] == key:
            return Plan.from_json(cached["plan"]), cached["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    build_checks(config)
    the_plan = plan(config)
    text = the_plan.to_json()
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    if write:
        write_text(path, json.dumps({"key": key, "digest": digest, "files": files, "plan": text}))
    return the_plan, digest


def _flat(value, prefix: str = "") -> dict:
    """{dotted key: leaf value} of nested mappings (a spec)."""
    if not isinstance(value, dict):
        return {prefix.removesuffix("."): value}
    return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()} or {prefix: {}}


def plan_changes(old: Plan, new: Plan, most: int = 12) -> list[str]:
    """What changed from one plan to the next, one line per change with the runs it reruns: a spec key's old
    and new value (`optimizer.code.sha256: 1f2e… -> 9a8b…`) with the count and optimizers of the training runs,
    trials and tuned runs it touches, and the runs added or removed. At most `most` lines (the rest counted):
    a dry run's summary of why runs rerun, never the whole plan."""
    def runs_of(the_plan: Plan) -> dict:
        found = {("train", r.problem, r.optimizer, r.seed): r.spec for r in the_plan.train_runs}
        found.update({("trial", t.problem, t.optimizer, t.trial): t.spec for t in the_plan.trials_of()})
        found.update({("tuned", r.problem, r.optimizer, r.seed): r.spec
                      for r in (the_plan.tune.finals if the_plan.tune else [])})
        return found

    before, after = runs_of(old), runs_of(new)
    changes: dict[str, list] = {}
    for run in before.keys() & after.keys():
        was, now = _flat(before[run]), _flat(after[run])
        for key in sorted(was.keys() | now.keys()):
            if was.get(key) != now.get(key):
                changes.setdefault(f"{key}: {was.get(key)!r} -> {now.get(key)!r}", []).append(run)
    lines = [f"{change} ({len(runs)} run(s) of {', '.join(sorted({run[2] for run in runs}))})"
             for change, runs in sorted(changes.items(), key=lambda item: -len(item[1]))]
    added, removed = len(after.keys() - before.keys()), len(before.keys() - after.keys())
    lines += [f"{n} run(s) {what}" for n, what in ((added, "added"), (removed, "removed")) if n]
    return lines[:most] + ([f"... and {len(lines) - most} more change(s)"] if len(lines) > most else [])


def cache_file(config: dict, workdir=".") -> Path:
    """Where a study's cached plan lives (runs.PLAN_CACHE in its results folder)."""
    return Path(workdir) / PLAN_CACHE.format(results=config["results_dir"])


def job_config(config: dict, targets: list[dict]) -> dict:
    """The part of a merged (unvalidated) config that the jobs `targets` need, each target the wildcards of one
    job. A training job ({problem, optimizer, seed | trial}) plans only its problems and optimizers (the
    optimizers table, seeds and settings stay whole, so each run's spec is the one the whole study's plan holds),
    no descent and no report focus. Any other job (the plan, aggregation, figures, report: no wildcards; a data
    or descent job) gets the whole config: such a job may write the study's plan.json, which must hold every run
    and the report's settings. A job re-parsing the Snakefile then plans its own runs, not the study."""
    if not targets or not all("problem" in t and "optimizer" in t for t in targets):
        return config
    config = copy.deepcopy(config)
    problems = {t["problem"] for t in targets}
    optimizers = {t["optimizer"] for t in targets}
    config["problems"] = [p for p in config["problems"] if p in problems]
    trained = config["train"]["optimizers"]
    tune = config.setdefault("tune", {})
    tuned = tune.get("optimizers") or list(trained)  # null: train.optimizers (config/schema.yaml)
    config["train"]["optimizers"] = [o for o in trained if o in optimizers] or [o for o in tuned if o in optimizers]
    tune["optimizers"] = [o for o in tuned if o in optimizers]
    config.setdefault("descent", {})["groups"] = []
    config.setdefault("report", {})["focus"] = None
    config["report"]["baselines"] = None
    return config


def write_plan(plan_json: str, path) -> None:
    """Write the plan's JSON (Plan.to_json) atomically: the `plan` rule's one call."""
    write_text(path, plan_json + "\n")


def missing_runs(the_plan: Plan, workdir=".") -> list[str]:
    """The finished-run markers (metrics.csv, summary.csv) of this plan that are not on disk."""
    wanted = the_plan.train_files("metrics.csv") + the_plan.descent_files("summary.csv")
    return [path for path in wanted if not (Path(workdir) / path).exists()]


def main(argv=None) -> None:
    """`python -m optimbench.plan [--check | --missing] config.yaml [override.yaml ...]`: merge and validate the
    files, build the study's plan (every check that needs it: sources, sizes, models, tuning split,
    criteria), and print it as JSON, or with --check only say so, or with --missing list the runs without
    results. Exits 1 with the message naming the key on a bad config.

    Snakemake reads --configfile files itself, before the workflow's code runs, and its messages name
    neither the file nor the line; `make` runs `--check` first so that a bad file is named."""
    parser = argparse.ArgumentParser(description="The study's plan: its runs and their files.")
    parser.add_argument("configs", nargs="+", help="config.yaml, then override files (later ones win)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true", help="check the config files and the plan, print 'config OK'")
    what.add_argument("--missing", action="store_true",
                      help="list the runs whose results are missing and exit 1 if there are any")
    parser.add_argument("--workdir", default=".", help="the folder the study runs in")
    args = parser.parse_args(argv)
    try:
        config = validate(load_yaml_files(args.configs), build=False)
        # `--check` (make study's first step) builds, checks and caches the plan for the Snakefile and `make
        # status`; printing it or the missing runs reads that cache but never writes (status runs it).
        the_plan, _ = cached_plan(config, cache_file(config, args.workdir), write=args.check)
    except ConfigError as exc:
        raise SystemExit(f"{exc}") from None
    if args.check:
        print(f"config OK: {' + '.join(map(str, args.configs))} -> results in {config['results_dir']}/")
        return
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
