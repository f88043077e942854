# Config validation, target lists and job specs. No rules here.
import json
import os
import sys

from optimbench import config as study_config
from optimbench.data import DATASET_OF_SOURCE

# Validate before any job: unknown keys, wrong types and unknown optimizer names stop here.
_validated = study_config.validate(config)
config.clear()
config.update(_validated)

PY = sys.executable
BASE = workflow.basedir  # the project folder: scripts/ and report/ are found from here, whatever the workdir
SCRIPTS = os.path.join(BASE, "scripts")
R = config["results_dir"]
TRAIN = config["train"]
DATASET = DATASET_OF_SOURCE[config["data"]["source"]]
DATA_NPZ = f"resources/data/{DATASET}.npz"
DATA_SUMMARY = f"resources/data/{DATASET}.json"
RUN_DIR = f"{R}/train/{{dataset}}/{{model}}/{{optimizer}}/seed{{seed}}"
TRAIN_BENCHMARK = f"{R}/benchmarks/train/{{dataset}}/{{model}}/{{optimizer}}/seed{{seed}}.tsv"
DESCENT_DIR = f"{R}/descent/{{group}}/{{function}}/{{method}}/{{gradient}}"
TABLES = f"{R}/tables"
FIGURES = f"{R}/figures"
REPORT_HTML = f"{R}/report/study.html"

wildcard_constraints:
    seed=r"\d+",
    optimizer=r"[^/]+",
    group=r"[^/]+",
    method=r"[^/]+",


def train_runs():
    """One (optimizer, seed) per training job."""
    return [(o, s) for o in TRAIN["optimizers"] for s in TRAIN["seeds"]]


def per_train_run(pattern):
    """`pattern` (with {dataset}, {model}, {optimizer}, {seed}) filled in for every training job, in order."""
    return [pattern.format(dataset=DATASET, model=TRAIN["model"], optimizer=o, seed=s) for o, s in train_runs()]


def train_outputs(name):
    return per_train_run(os.path.join(RUN_DIR, name))


def train_gres():
    """`gres="gpu:G"` for jobs that need GPUs; nothing on CPU-only setups (train.gpus = 0)."""
    return {"gres": f"gpu:{TRAIN['gpus']}"} if TRAIN["gpus"] else {}


def descent_jobs():
    """One (group, function, method, gradient) per descent job."""
    return [(g["name"], f, m, d) for g in config["descent"]["groups"]
            for f in g["functions"] for m in g["methods"] for d in g["gradients"]]


def descent_outputs(name):
    return [os.path.join(DESCENT_DIR.format(group=g, function=f, method=m, gradient=d), name)
            for g, f, m, d in descent_jobs()]


def descent_functions():
    return sorted({f for _, f, _, _ in descent_jobs()})


def train_spec(wildcards):
    """Everything that determines one training run (the trainer's --spec)."""
    keys = ["width", "pretrained", "epochs", "batch_size", "eval_batch_size", "lr_schedule", "device",
            "channels_last", "bf16", "compile", "deterministic", "train_subset", "test_subset"]
    return json.dumps({"dataset": wildcards.dataset, "data": DATA_NPZ, "model": wildcards.model,
                       "seed": int(wildcards.seed), "optimizer_name": wildcards.optimizer,
                       "optimizer": config["optimizers"][wildcards.optimizer], **{k: TRAIN[k] for k in keys}},
                      sort_keys=True)


def descent_spec(wildcards):
    """Everything that determines one descent run (descent's --spec)."""
    from optimbench.functions import get

    d = config["descent"]
    group = next(g for g in d["groups"] if g["name"] == wildcards.group)
    spec = {"group": group["name"], "function": wildcards.function, "method": wildcards.method,
            "gradient": wildcards.gradient, "h": d["h"], "tol": (d["tol"] or d["h"]) if group["early_stop"] else 0.0,
            "max_epochs": group.get("max_epochs", d["max_epochs"]),
            "start": group.get("start") or list(get(wildcards.function).start)}
    if wildcards.method in d["methods"]:
        spec.update(kind="article", **d["methods"][wildcards.method])
    else:
        entry = config["optimizers"][wildcards.method]
        spec.update(kind="optimizer", optimizer=entry, kwargs=group.get("kwargs", {}),
                    lr=group.get("kwargs", {}).get("lr", entry.get("kwargs", {}).get("lr")))
    return json.dumps(spec, sort_keys=True)
