# The study's plan (optimbench.study) and the rules' input functions. No rules here.
import json
import os
import re
import sys

from optimbench import config as study_config
from optimbench import figure_files
from optimbench import study

# Validate before any job: unknown keys, wrong types, unknown names and bad values stop here.
_validated = study_config.validate(config)
config.clear()
config.update(_validated)
# Every run of the study, its result spec and its files: the one plan all stages read.
PLAN = study.plan(config)

PY = sys.executable
BASE = workflow.basedir  # the project folder: scripts/ and report/ are found from here, whatever the workdir
SCRIPTS = os.path.join(BASE, "scripts")
R = PLAN.results_dir
TRAIN = config["train"]
PLAN_FILE = PLAN.plan_file
TABLES = PLAN.tables_dir
FIGURES = PLAN.figures_dir
REPORT_HTML = PLAN.report_html
RUN_DIR = study.pattern(study.TRAIN_DIR, R)
TRAIN_LOG = study.pattern(study.TRAIN_LOG, R)
TRAIN_BENCHMARK = study.pattern(study.TRAIN_BENCHMARK, R)
DESCENT_DIR = study.pattern(study.DESCENT_DIR, R)
DESCENT_LOG = study.pattern(study.DESCENT_LOG, R)
TUNE = PLAN.tune or {}
TRIAL_DIR = study.pattern(study.TRIAL_DIR, R)
TUNED_DIR = study.pattern(study.TUNED_DIR, R)


wildcard_constraints:
    seed=r"\d+",
    trial=r"\d+",
    problem=study.NAME_RULE,
    # Only the study's own data files (a validation split's .json must never match a data summary).
    stem="|".join(re.escape(stem) for stem in PLAN.data) or "no-data",
    optimizer=study.NAME_RULE,
    group=study.NAME_RULE,
    function=study.NAME_RULE,
    method=study.NAME_RULE,
    gradient=study.NAME_RULE,


def train_gres():
    """`gres="gpu:G"` for jobs that need GPUs; nothing on CPU-only setups (train.gpus = 0)."""
    return {"gres": f"gpu:{TRAIN['gpus']}"} if TRAIN["gpus"] else {}


def train_spec(wildcards):
    """The run's result spec: a rerun trigger (a change reruns the run)."""
    return json.dumps(PLAN.train_run(wildcards.problem, wildcards.optimizer, wildcards.seed).spec, sort_keys=True)


def problem_data(wildcards):
    """The problem's canonical data file."""
    return PLAN.data_file(wildcards.problem)


def problem_split(wildcards):
    """The problem's validation split file (none for a data set with its own validation stream)."""
    return PLAN.split_file(wildcards.problem)


def train_execution(wildcards, threads):
    """How a run executes (compile mode). Taking `threads` makes it a derived param: never a rerun trigger."""
    return json.dumps(study.execution_settings(TRAIN), sort_keys=True)


def descent_spec(wildcards):
    return json.dumps(PLAN.descent_run(wildcards.group, wildcards.function, wildcards.method,
                                       wildcards.gradient).spec, sort_keys=True)


def trial_spec(wildcards):
    """The trial's result spec (a rerun trigger): the base run with the trial's setting."""
    return json.dumps(PLAN.trial(wildcards.problem, wildcards.optimizer, wildcards.trial)["spec"], sort_keys=True)


def tuned_spec(wildcards):
    """A final run's result spec; the selected setting comes from its selection file (an input)."""
    return json.dumps(PLAN.tuned_run(wildcards.problem, wildcards.optimizer, wildcards.seed).spec, sort_keys=True)
