"""What determines a run's numbers (its result spec), per problem, optimizer, seed and descent run, and the
checks a config must pass before any job: names that become folder names, sizes the data can give, models
that build at their width. Everything here is a function of the validated config and the registries.

A run's spec is split in two:
- the *result spec*: everything that can change its numbers (data file, model, optimizer class and
  kwargs, seed, epochs, ...). Snakemake passes it as a non-derived `params`, so a change reruns the
  run, and the trainer fingerprints it to resume only the same run;
- *execution settings*: how it runs, not what it computes (threads, torch.compile mode, an
  optimizer's `paper` citation). These never trigger a rerun.
"""

from __future__ import annotations

import hashlib
import json
import re

import torch

from optimbench import formats, functions
from optimbench import problems as registry
from optimbench.errors import ConfigError, DataError
from optimbench.labels import data_words
from optimbench.optim import code_fingerprint

# Names from the config (optimizers, descent methods and groups) become single path components. The
# rule keeps them portable and shell-safe; dots are allowed ("article-momentum-0.1").
NAME_RULE = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
_NAME = re.compile(rf"^{NAME_RULE}$")
NAME_HELP = ("a name must start with a letter or digit and hold only letters, digits, '_', '.', '+' and '-' "
             "(it becomes a folder name; no spaces or slashes)")

# train.* keys that can change a run's numbers (the result spec); the rest of train.* is execution or
# scheduling (compile, gpus, runs_per_gpu, mem_mb, minutes_per_epoch, seeds, optimizers, target). Threads
# are in: a CPU run's numbers change with the thread count (reduction order; issue 27.6).
TRAIN_RESULT_KEYS = ("width", "pretrained", "epochs", "batch_size", "eval_batch_size", "lr_schedule", "device",
                     "channels_last", "bf16", "deterministic", "train_subset", "test_subset", "threads")
# The train.* keys a problem may set for itself (problem_settings.<problem>), besides its target.
PROBLEM_TRAIN_KEYS = ("width", "epochs", "batch_size", "eval_batch_size", "train_subset", "test_subset", "threads")
RUNTIME_MARGIN_MINUTES = 5  # start-up, data load, the last evaluation: added to every job's runtime
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


def problem_seeds(config: dict, problem: str) -> list[int]:
    """The problem's seeds: problem_settings.<problem>.seeds, else train.seeds."""
    return list(config["problem_settings"].get(problem, {}).get("seeds", config["train"]["seeds"]))


def problem_target(config: dict, problem: str) -> float:
    """The primary metric's target: problem_settings.<problem>.target, else the registry's."""
    return float(config["problem_settings"].get(problem, {}).get("target", registry.get(problem).target))


def problem_summary(config: dict, problem: str, data: dict) -> dict:
    """What the tables and report need about a problem (plan settings["problems"][name])."""
    p = registry.get(problem)
    train = problem_train(config, problem)
    width = f"width {train['width']}" if train["width"] else "the paper's size"
    metrics = [{"name": f"{split}_{m.name}", "higher_is_better": m.higher_is_better, "low": m.low, "high": m.high}
               for split in ("train", "val", "test") for m in p.task.metric_defs]
    return {"dataset": p.dataset, "model": train["model"], "kind": p.kind, "primary": p.primary,
            "higher_is_better": p.primary_metric.higher_is_better, "target": problem_target(config, problem),
            "title": f"{problem} ({data_words(data['dataset'], data['source'])}, {train['model']} at {width})",
            "data_source": data["source"],
            "epochs": train["epochs"], "width": train["width"], "paper": p.paper, "metrics": metrics}


# ---------------------------------------------------------------- checks that need the plan's settings
def check_sizes(config: dict) -> None:
    """Per problem, train_subset, test_subset and batch_size within its data set's split sizes (known before
    any job, optimbench.formats.split_sizes; a token stream such as PTB is not checked)."""
    for problem in config["problems"]:
        spec = data_spec(config, problem)
        sizes = formats.split_sizes(spec)
        train = problem_train(config, problem)
        own = config["problem_settings"].get(problem, {})
        where = {k: f"problem_settings.{problem}.{k}" if k in own else f"train.{k}" for k in train}
        if sizes is None:
            check_streams(config, problem, spec, train, where)
            continue
        n_train, n_test = sizes
        source = (f"problem {problem!r} ({spec['dataset']}, data.source {spec['source']!r}) has {n_train:,} training "
                  f"and {n_test:,} test examples")
        for key, available in (("train_subset", n_train), ("test_subset", n_test)):
            if train[key] is not None and train[key] > available:
                raise ConfigError(f"{where[key]} = {train[key]} exceeds the data: {source}. "
                                  f"Use at most {available} (or null for all).")
        used = min(train["train_subset"] or n_train, n_train)
        if train["batch_size"] > used:
            raise ConfigError(f"{where['batch_size']} = {train['batch_size']} exceeds the {used:,} training examples "
                              f"used ({source}): every epoch would be one smaller batch. Use at most {used}.")


def check_models(config: dict) -> None:
    """Every problem's model builds at its width (CapsNet: a multiple of 8), on the meta device: no memory,
    no time, the constructors' own checks only."""
    for problem in config["problems"]:
        width = problem_train(config, problem)["width"]
        try:
            with torch.device("meta"):
                registry.get(problem).build_model(width)
        except (ValueError, TypeError, RuntimeError) as exc:
            own = "width" in config["problem_settings"].get(problem, {})
            where = f"problem_settings.{problem}.width" if own else "train.width"
            raise ConfigError(f"{where} = {width!r}: problem {problem!r} cannot build its model "
                              f"({registry.get(problem).model}): {exc}") from None


def check_streams(config: dict, problem: str, spec: dict, train: dict, where: dict) -> None:
    """A token stream (PTB) cut into batch_size (training) or eval_batch_size (validation, test) parallel
    streams must give each at least two tokens (optimbench.paper_models.batchify); sizes from formats.token_sizes."""
    n_train, n_valid, n_test = formats.token_sizes(spec)
    exact = spec["source"] != "synthetic"
    streams = [("training", min(train["train_subset"] or n_train, n_train), "batch_size"),
               ("test", min(train["test_subset"] or n_test, n_test), "eval_batch_size")]
    if config["tune"]["enabled"]:
        streams.append(("validation", n_valid, "eval_batch_size"))
    for split, tokens, key in streams:
        if train[key] > tokens // 2:
            holds = f"{tokens:,} tokens" if exact else f"at least {tokens:,} tokens"
            raise ConfigError(f"{where[key]} = {train[key]} cuts the {split} stream of problem {problem!r} "
                              f"({spec['dataset']}, data.source {spec['source']!r}; it holds {holds}) into streams "
                              f"shorter than two tokens. Use at most {tokens // 2}.")


def job_resources(config: dict, spec: dict, attempt: int = 1) -> dict:
    """What one training job (train, trial, tuned_train) asks the scheduler for, from its own result spec:
    mem_mb (problem_settings.<problem>.mem_mb, else train.mem_mb, else the problem's measured default
    Problem.mem_mb) × attempt; runtime in minutes = spec["epochs"] × minutes per epoch
    (problem_settings.<problem>.minutes_per_epoch, else train.minutes_per_epoch) × attempt + 5; threads =
    spec["threads"]. A retry (attempt 2, 3) asks for more time and memory: a job killed for either gets more."""
    problem, train = spec["problem"], config["train"]
    own = config["problem_settings"].get(problem, {})
    mem_mb = own.get("mem_mb") or train.get("mem_mb") or registry.get(problem).mem_mb
    minutes = own.get("minutes_per_epoch", train["minutes_per_epoch"])
    return {"mem_mb": int(mem_mb * attempt),
            "runtime": int(spec["epochs"] * minutes * attempt) + RUNTIME_MARGIN_MINUTES,
            "threads": int(spec.get("threads", train["threads"]))}


def execution_settings(train: dict) -> dict:
    """How every training job of the study executes (train.* TRAIN_EXECUTION_KEYS): never a rerun trigger."""
    return {k: train[k] for k in TRAIN_EXECUTION_KEYS if k in train}


def optimizer_spec(entry: dict) -> dict:
    """An optimizer entry's result keys (ENTRY_RESULT_KEYS) and, as `code`, the fingerprint of the code that
    computes its steps (optim.code_fingerprint): editing a plug-in's file or upgrading its package changes
    the spec, so exactly the runs of that optimizer rerun."""
    return {**{k: entry[k] for k in ENTRY_RESULT_KEYS if k in entry},
            "code": code_fingerprint(entry["class"], bool(entry.get("demon")))}


def train_spec(config: dict, problem: str, optimizer: str, seed: int, data_file: str) -> dict:
    """What determines one training run's results (the trainer's --spec)."""
    return {"problem": problem, "dataset": registry.get(problem).dataset, "data": data_file,
            "seed": int(seed), "optimizer_name": optimizer,
            "optimizer": optimizer_spec(config["optimizers"][optimizer]), **problem_train(config, problem)}


def descent_spec(config: dict, group: dict, function: str, method: str, gradient: str) -> dict:
    """What determines one descent run (descent's --spec): the group's own settings over the defaults."""
    d = config["descent"]
    spec = {"group": group["name"], "function": function, "method": method, "gradient": gradient, "h": d["h"],
            "tol": (d["tol"] or d["h"]) if group.get("early_stop", True) else 0.0,
            "max_epochs": group.get("max_epochs") or d["max_epochs"],
            "start": list(group.get("start") or functions.get(function).start)}
    if method in d["methods"]:
        spec.update(kind="article", **d["methods"][method])
    else:
        entry = config["optimizers"][method]
        overrides = group.get("kwargs", {})
        spec.update(kind="optimizer", optimizer=optimizer_spec(entry),
                    kwargs=overrides, lr=overrides.get("lr", entry.get("kwargs", {}).get("lr")))
        if group.get("tune"):
            spec["tune"] = group["tune"]
    return spec
