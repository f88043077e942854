# The study's plan (optimbench.plan), every name the rule files share, and the rules' input functions. No rules.
import hashlib
import inspect
import itertools
import json
import os
import re
import sys
import time
from pathlib import Path

from snakemake.common import overwrite_function_params
from snakemake.target_jobs import parse_target_jobs_cli_args

from optimbench import files, published, runs, specs, store
from optimbench.config import absolute_class_files, validate
from optimbench.plan import cache_file, cached_plan, job_config, plan_changes, read_plan
from optimbench.plan import plan as study_plan
from optimbench.plan import write_plan


def job_targets():
    """The wildcards of the jobs this process runs when Snakemake re-parses the Snakefile inside a job (a SLURM
    job, a job's subprocess: not the main process), read from its --target-jobs; [] in the main process (a
    run, a dry run, --unlock, --list). Snakemake sets the targets after parsing, so they are read from argv."""
    if workflow.is_main_process or "--target-jobs" not in sys.argv:
        return []
    given = sys.argv[sys.argv.index("--target-jobs") + 1 :]
    return [
        spec.wildcards_dict
        for spec in parse_target_jobs_cli_args(list(itertools.takewhile(lambda arg: not arg.startswith("-"), given)))
    ]


# Validate before any job: unknown keys, wrong types, unknown names and bad values stop here.
# A `class: file.py:Class` counts from the config file that names it (Snakemake merged the files already).
JOB_TARGETS = job_targets()
_merged = absolute_class_files(config, workflow.configfiles)
if JOB_TARGETS:
    # A job's re-parse plans only its own runs, unchecked: the main process checked the study (issue 38).
    _validated = validate(job_config(_merged, JOB_TARGETS), build=False)
    PLAN, PLAN_DIGEST = study_plan(_validated, checks=False), None
else:
    # Every run of the study, its result spec and its files: the one plan all stages read. Checked and built
    # once per config and code (`make study` builds it first), then read from its cache file.
    _validated = validate(_merged, build=False)
    PLAN, PLAN_DIGEST = cached_plan(_validated, cache_file(_validated))
config.clear()
config.update(_validated)


def print_plan_changes():
    """What changed since the plan the last run wrote (its plan.json), one line per change with the runs it
    reruns (plan.plan_changes): a dry run's reasons in a few lines. Nothing when the plan is unchanged."""
    last = Path(PLAN.plan_file)
    if JOB_TARGETS or not last.is_file():
        return
    text = last.read_text().rstrip("\n")
    if hashlib.sha256(text.encode()).hexdigest()[:16] != PLAN_DIGEST:
        lines = plan_changes(read_plan(last), PLAN)
        print(f"The plan changed since {last}:", *lines, sep="\n  ", file=sys.stderr)


print_plan_changes()
# The run store (optimbench.store; config `store`, else $OPTIMBENCH_STORE) is touched only inside a training job
# (optimbench.train.run, under its run folder's lock): never here, so parsing, dry runs, --unlock and --list
# neither publish nor fetch. Each job records what it did; a real run's end prints one line of it.
STORE = store.location(config["store"])
# This invocation's id: its jobs record it with what they did (a derived param of theirs: never a rerun trigger).
INVOCATION = f"{os.uname().nodename}-{os.getpid()}-{time.time():.3f}"


def store_log():
    """Where the study's training jobs record their store actions (JSON lines)."""
    return f"{PLAN.results_dir}/logs/store.jsonl"


def store_summary():
    """Print what this invocation's jobs did with the store (fetched, published, skipped), if anything."""
    line = store.summary(store_log(), INVOCATION) if STORE else None
    if line:
        print(line, file=sys.stderr)


onsuccess:
    store_summary()


onerror:
    store_summary()


PY = sys.executable
BASE = workflow.basedir  # the project folder: scripts/ and report/ are found from here, whatever the workdir
SCRIPTS = os.path.join(BASE, "scripts")
R = PLAN.results_dir
TRAIN = config["train"]
PLAN_FILE = PLAN.plan_file
TABLES = PLAN.tables_dir
PUBLISHED_CACHE = published.CACHE_DIR  # verified downloads of published runs, shared by a workdir's studies
FIGURES = PLAN.figures_dir
REPORT_HTML = PLAN.report_html
RUN_DIR = runs.pattern(runs.TRAIN_DIR, R)
TRAIN_LOG = runs.pattern(runs.TRAIN_LOG, R)
DESCENT_DIR = runs.pattern(runs.DESCENT_DIR, R)
DESCENT_LOG = runs.pattern(runs.DESCENT_LOG, R)
TUNE = PLAN.tune  # None without tuning
TRIAL_DIR = runs.pattern(runs.TRIAL_DIR, R)
TRIAL_LOG = runs.pattern(runs.TRIAL_LOG, R)
SELECTION = runs.pattern(runs.SELECTION, R)
SELECTION_LOG = runs.pattern(runs.SELECTION_LOG, R)
TUNED_DIR = runs.pattern(runs.TUNED_DIR, R)
TUNED_LOG = runs.pattern(runs.TUNED_LOG, R)
# A validation split's seed is not a run's seed: its own wildcard, with its own constraint (rule validation_split).
SPLIT_FILE = runs.SPLIT_FILE.replace("{seed}", "{split_seed}")
SPLIT_LOG = runs.SPLIT_LOG.replace("{seed}", "{split_seed}")
PROBLEMS = list(PLAN.settings["problems"])

# The tables each aggregate job writes (optimbench.aggregate), and what the jobs downstream read of them.
TRAIN_TABLES = list(files.TRAIN_TABLES)
DESCENT_TABLES = list(files.DESCENT_TABLES)
TUNE_TABLES = list(files.TUNE_TABLES)
# What the figures jobs and the report read (optimbench.files names them; the readers read exactly these).
TRAIN_FIGURE_TABLES = list(files.TRAIN_FIGURE_TABLES)
TUNE_FIGURE_TABLES = list(files.TUNE_FIGURE_TABLES)
REPORT_TABLES = list(files.report_tables(TUNE is not None))

# The figures each figures job writes (optimbench.files names them); the report embeds the PNGs.
TRAIN_FIGURES = [str(f) for f in files.train_figure_files(PROBLEMS, f"{FIGURES}/train", ("png",))]
TRAIN_FIGURES_SVG = [str(f) for f in files.train_figure_files(PROBLEMS, f"{FIGURES}/train", ("svg",))]
TUNE_FIGURES = [str(f) for f in files.tune_figure_files(PROBLEMS, f"{FIGURES}/tune")]
DESCENT_FIGURE_FILES = files.descent_figure_paths(PLAN.descent_functions(), f"{FIGURES}/descent")
DESCENT_VIEWS = str(DESCENT_FIGURE_FILES[None, files.ACKLEY_VIEWS])
DESCENT_ALL_RUNS = [str(path) for (_, figure), path in DESCENT_FIGURE_FILES.items() if figure == "all_runs"]
DESCENT_3D = [str(path) for (_, figure), path in DESCENT_FIGURE_FILES.items() if figure == "interactive"]


def rule_list(path):
    """The rule names a list file holds, one a line ('#' starts a comment)."""
    with open(path) as lines:
        return [name for name in (line.split("#")[0].strip() for line in lines) if name]


# The rules that re-render everything downstream of the results (`make report` reads the same file).
REPORT_RULES = rule_list(os.path.join(BASE, "workflow", "report-rules.txt"))
# On a cluster only training is submitted; the rest is cheap and runs where Snakemake runs.
workflow.localrules(*REPORT_RULES, "prepare_data", "descent", "validation_split", "select", "import_published")


wildcard_constraints:
    seed=r"\d+",
    trial=r"\d+",
    problem=specs.NAME_RULE,
    # Only the study's own data files (a validation split's .json must never match a data summary).
    stem="|".join(re.escape(stem) for stem in PLAN.data) or "no-data",
    optimizer=specs.NAME_RULE,
    group=specs.NAME_RULE,
    function=specs.NAME_RULE,
    method=specs.NAME_RULE,
    gradient=specs.NAME_RULE,


def train_gres():
    """`gres="gpu:G"` for jobs that need GPUs; nothing on CPU-only setups (train.gpus = 0)."""
    return {"gres": f"gpu:{TRAIN['gpus']}"} if TRAIN["gpus"] else {}


def signed(func):
    """`func` with its parameters attached where Snakemake looks for them first (snakemake.common's
    overwrite_function_params). Snakemake otherwise calls inspect.signature on every call of an input, params
    or resources function: about 9 per training job, an eighth of a 5,000-run dry run (issue 38)."""
    overwrite_function_params(func, inspect.signature(func).parameters)
    return func


# How every training job (train, trial, tuned_train) runs, defined once: its threads, resources and software,
# each from that job's own result spec (specs.job_resources: its problem's epochs, a trial's epochs; × attempt).
# Not inherited from train (`use ... with`), as a trial would then keep train's model.pt (a new output, so
# every finished trial would rerun) and one shell command for all three would change their command text
# (Snakemake's `code` rerun trigger, so every finished run would train again). Snakemake benchmarks none of
# them: the trainer records its job's wall time and peak memory in run.json (job_seconds, peak_host_mb), and
# Snakemake's benchmark thread read /proc/<pid>/smaps_rollup of every job twice a second (11-19 s of CPU in
# the demo).
def job_run(job):
    """The run of a training job from its wildcards: PLAN.train_run, PLAN.trial or PLAN.tuned_run."""
    if job == "trial":
        return lambda wildcards: PLAN.trial(wildcards.problem, wildcards.optimizer, wildcards.trial)
    find = PLAN.tuned_run if job == "tuned_train" else PLAN.train_run
    return lambda wildcards: find(wildcards.problem, wildcards.optimizer, wildcards.seed)


def train_threads(job):
    """A training job's threads: its spec's (a result setting: the trainer uses the spec's, whatever Snakemake
    scales this to). One number when every problem runs with the same threads (no function to call per job)."""
    threads = {specs.problem_train(config, problem)["threads"] for problem in config["problems"]}
    if len(threads) == 1:
        return int(threads.pop())
    run = job_run(job)
    return signed(lambda wildcards: specs.job_resources(config, run(wildcards).spec)["threads"])


def train_resources(job):
    """A training job's resources: mem_mb and runtime from its own spec (× attempt), its GPU share and gres."""
    run = job_run(job)
    return {
        "mem_mb": signed(
            lambda wildcards, attempt: specs.job_resources(config, run(wildcards).spec, attempt)["mem_mb"]
        ),
        "runtime": signed(
            lambda wildcards, attempt: specs.job_resources(config, run(wildcards).spec, attempt)["runtime"]
        ),
        # One GPU share: `--resources gpu_percent=100` runs train.runs_per_gpu jobs side by side per GPU.
        "gpu_percent": TRAIN["gpus"] * (100 // TRAIN["runs_per_gpu"]),
        # The GPU request as SLURM gres (sbatch --gres=gpu:G); a profile may ask for GPU shards instead.
        **train_gres(),
    }


TRAIN_ENV = "../../envs/torch.yaml"  # relative to the rule files


def stage_log(stage):
    """The log of a job of the whole study (plan, aggregate_*, figures_*, report)."""
    return runs.pattern(runs.STAGE_LOG, R).replace("{stage}", stage)


def table_files(tables):
    """The parquet files of `tables`, as the jobs downstream of aggregation read them."""
    return expand(f"{TABLES}/{{table}}.parquet", table=tables)


def spec_params(job):
    """A training job's result spec as params, rendered so that a dry run's reason shows what changed, not the
    whole spec: `spec`, the trainer's --spec (derived: a function of `output`, so never a rerun trigger by itself;
    not of `threads`, which would make a dry run evaluate every job's resources: a third of its DAG time), and
    the spec in two halves as the rerun triggers: `optimizer` (its name, entry and code fingerprint) and
    `setting` (the rest: problem, data, seed, epochs, ...). Together the halves are the whole spec, so exactly
    the runs whose spec changed rerun; Snakemake's reason lists only the half that changed. And `out`, the
    run's folder (a wildcard pattern: no function to call per job)."""
    run = job_run(job)
    return {
        "spec": signed(lambda wildcards, output: json.dumps(run(wildcards).spec, sort_keys=True)),
        "optimizer": signed(lambda wildcards: spec_half(run(wildcards).spec, optimizer=True)),
        "setting": signed(lambda wildcards: spec_half(run(wildcards).spec, optimizer=False)),
        "out": {"train": RUN_DIR, "trial": TRIAL_DIR, "tuned_train": TUNED_DIR}[job],
    }


def spec_half(spec, optimizer):
    """`name: {entry}` of a spec's optimizer, or the JSON of the rest of the spec."""
    if optimizer:
        return f"{spec['optimizer_name']}: {json.dumps(spec['optimizer'], sort_keys=True)}"
    return json.dumps({k: v for k, v in spec.items() if k != "optimizer"}, sort_keys=True)


@signed
def problem_data(wildcards):
    """The problem's canonical data file."""
    return PLAN.data_file(wildcards.problem)


@signed
def problem_split(wildcards):
    """The problem's validation split file (none for a data set with its own validation stream)."""
    return PLAN.split_file(wildcards.problem)


@signed
def trial_data(wildcards):
    """A trial's data and validation split files."""
    return [problem_data(wildcards), *problem_split(wildcards)]


@signed
def tuned_data(wildcards):
    """A tuned run's data, validation split and selection files."""
    run = job_run("tuned_train")(wildcards)
    return {
        "data": problem_data(wildcards),
        "split": problem_split(wildcards),
        "selection": PLAN.tune.selections[run.problem][run.optimizer],
    }


class Unrecorded:
    """A params value that Snakemake puts in the job's command but never records, so never a rerun trigger:
    Snakemake records only values of builtin types (its persistence's _serialize_param). Unlike a derived
    param (a function of `threads`), no function is called per job."""

    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


# How every run executes (compile mode) and the run store its job uses (its folder, where the job records what
# it did, and this invocation's id): the same for every job of this invocation, and never a rerun trigger.
_STORE_USE = {"store": str(STORE), "store_log": store_log(), "store_invocation": INVOCATION} if STORE else {}
TRAIN_EXECUTION = Unrecorded(json.dumps({**specs.execution_settings(TRAIN), **_STORE_USE}, sort_keys=True))


@signed
def descent_specs(wildcards):
    """The result specs of a descent job's runs (every run of a group on a function), as one JSON list."""
    return json.dumps([run.spec for run in PLAN.descent_job(wildcards.group, wildcards.function)], sort_keys=True)
