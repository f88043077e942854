"""Where a study stands, read from its plan and its run folders alone (no Snakemake: it works while the study
runs, locally or on a cluster, and on a finished one), and never writing into them.

`python -m optimbench.status config.yaml [override.yaml ...]` (`make status`) prints
- every run: done, diverged, training (epoch k of N, last train loss and primary metric, seconds per epoch),
  stalled (started, no process holds it and nothing written for a while: killed; it resumes when run
  again), failed (its log's last line), or waiting (not started);
- how many runs of each problem and stage (train, trials, tuned, descent) are in each state;
- the results that are stale: a finished run whose recorded spec (run.json) differs from the plan's, compared
  as the run store's key compares them (store.comparable), the plan's code fingerprint taken as the files give
  it now (provenance.code_now: an edited plug-in shows before the next run plans it); runs from the store;
- the study's projected end: the epochs left times each problem's measured seconds per epoch, divided by
  the runs that train at a time (the number training now, or --parallel).

What it reads, per run folder (optimbench.runs' templates): metrics.csv (the trainer's last write: the run
is finished) and run.json; the epoch event files (optimbench.events: epoch k's scalars, written as each
epoch ends); the writer lock (`writer.lock`, held by the trainer while it runs, released by the kernel however
it dies, asked without taking it: a held lock means training, even beside an earlier metrics.csv); stored.json
(a run copied from the run store); the job's log (its last line). Fast: the plan comes from plan.json (the `plan`
rule's file, no torch, no config checks); only when that file is missing or older than a config file is
it built from the config, by `python -m optimbench.plan` in a subprocess (seconds: torch and every check).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

from optimbench import events, provenance
from optimbench.io import lock_held as io_lock_held
from optimbench.runs import (
    CHECKPOINT,
    DESCENT_LOG,
    PLAN_CACHE,
    TRAIN_LOG,
    TRIAL_LOG,
    TUNED_LOG,
    WRITER_LOCK,
    Plan,
    StudyProblem,
    current_cached_plan,
    read_plan,
)
from optimbench.store import comparable, marked_key

STAGES = ("train", "trials", "tuned", "descent")
STATES = ("done", "diverged", "training", "stalled", "failed", "waiting")
# A run not finished, with no failure in its log and no lock held, is stalled (killed: it resumes when run
# again) after this many seconds without a write; at least 3 of its epochs' time. With a lock file (the
# trainer takes its lock seconds after its job starts) the shorter grace covers only the job's start-up.
STALLED_AFTER = 600.0
LOCK_GRACE = 120.0
# A log's last line that ends a failed job: a Python exception, or the kernel's / a scheduler's kill.
FAILURE = re.compile(r"^(Traceback|[\w.]*(Error|Exception|Interrupt|Exit)\b|Killed|Terminated|Aborted|"
                     r"Segmentation fault|slurmstepd: error|.*(CANCELLED|DUE TO TIME LIMIT|oom-kill))")


@dataclass
class RunStatus:
    """One run of the plan as its folder shows it. `epoch` = epochs finished (None for descent runs); `values`
    = the last epoch's {column: value} (metrics.csv's columns); `stale` = what changed in its spec."""

    stage: str
    problem: str  # the problem (descent: the group)
    name: str  # the run's folder below the results folder: TensorBoard's run name
    state: str
    epochs: int | None = None
    epoch: int | None = None
    values: dict | None = None
    seconds_per_epoch: float | None = None  # training + evaluation time of an epoch (the trainer's timing)
    age: float | None = None  # seconds since the run's last write
    last_line: str = ""
    stale: str = ""
    fetched: bool = False  # copied from the run store (optimbench.store), not trained in this study


# ---------------------------------------------------------------- one run folder
def last_line(log: Path) -> str:
    """The log's last non-blank line ('' for no log); tqdm's carriage returns split lines too."""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 8192))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in re.split(r"[\r\n]", tail) if line.strip()]
    return lines[-1] if lines else ""


def lock_held(path: Path) -> bool:
    """Whether a trainer holds the writer lock of `path` (io.lock_held: the kernel is asked about the lock
    itself, not the file's device numbers, so it is found on btrfs and overlay too, and across NFS nodes)."""
    return io_lock_held(path)


def epoch_values(path: Path) -> dict[str, float]:
    """{column: value} of one epoch's event file (optimbench.events: tags `<problem>/<column>`), as written
    (the legacy loader: the newer one moves scalars into tensors)."""
    return {value.tag.split("/", 1)[-1]: value.simple_value
            for event in LegacyEventFileLoader(str(path)).Load() for value in event.summary.value}


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv's rows, numbers as floats (the diverged flag stays 'True'/'False')."""
    with open(path, newline="") as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def epoch_seconds(row: dict) -> float | None:
    """An epoch's training plus evaluation seconds (metrics.csv's epoch_seconds + eval_seconds)."""
    seconds = [row.get(k) for k in ("epoch_seconds", "eval_seconds")]
    return sum(seconds) if all(isinstance(s, float) and math.isfinite(s) for s in seconds) else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _plain(value):
    return json.loads(json.dumps(value, sort_keys=True))


def spec_changes(recorded: dict, expected: dict, ignore=()) -> list[str]:
    """`key: recorded -> expected` for every key of the plan's spec whose value the run did not record (the
    run's own extra keys, execution settings and a tuned run's selection, are not compared). Compared as the
    run store's key sees them (store.comparable: a plug-in file's folder is no change)."""
    recorded, expected = comparable(recorded), comparable(expected)
    return [f"{k}: {json.dumps(recorded.get(k))} -> {json.dumps(expected[k])}" for k in expected
            if k not in ignore and _plain(recorded.get(k)) != _plain(expected[k])]


@functools.cache
def _code_now(code: str, class_name: str) -> str:
    return json.dumps(provenance.code_now(json.loads(code), class_name), sort_keys=True)


def with_current_code(spec: dict) -> dict:
    """The spec with its optimizer's code fingerprint as the files give it now (provenance.code_now, no
    import): a plug-in edited since the plan was written makes its finished runs stale, as the next
    `make study` (which plans anew) reruns them."""
    optimizer = spec.get("optimizer")
    if not isinstance(optimizer, dict) or not optimizer.get("code"):
        return spec
    code = _code_now(json.dumps(optimizer["code"], sort_keys=True), str(optimizer.get("class", "")))
    return {**spec, "optimizer": {**optimizer, "code": json.loads(code)}}


def tuned_changes(recorded: dict, expected: dict, selection: Path) -> list[str]:
    """spec_changes of a tuned run: its optimizer's kwargs and schedule come from its selection, so they are
    compared as the selected trial's number (selected.json's `trial`)."""
    optimizer = {k: v for k, v in expected["optimizer"].items() if k != "kwargs"}
    changes = spec_changes({**recorded, "optimizer": {k: v for k, v in recorded.get("optimizer", {}).items()
                                                      if k != "kwargs"}}, {**expected, "optimizer": optimizer},
                           ignore=("lr_schedule", "selected_trial"))
    try:
        trial = json.loads(selection.read_text())["trial"]
    except (OSError, ValueError, KeyError):
        return changes
    if recorded.get("selected_trial") != trial:
        changes.append(f"selected_trial: {recorded.get('selected_trial')} -> {trial}")
    return changes


def _age(paths, now: float) -> float | None:
    times = [p.stat().st_mtime for p in paths if p.exists()]
    return now - max(times) if times else None


def _unfinished_state(status: RunStatus, lock: str) -> str:
    """training, failed, waiting or stalled, for a run not finished; `lock` is 'held', 'free' (the trainer
    takes locks, none holds this one: the run is starting, or dead) or 'none' (no lock file)."""
    if lock == "held":
        return "training"
    if FAILURE.match(status.last_line):
        return "failed"
    if status.age is None:
        return "waiting"
    quiet = LOCK_GRACE if lock == "free" else max(STALLED_AFTER, 3 * (status.seconds_per_epoch or 0.0))
    return "stalled" if status.age > quiet else "training"


def _lock(folder: Path) -> str:
    path = folder / WRITER_LOCK
    return "held" if lock_held(path) else "free" if path.exists() else "none"


def train_status(status: RunStatus, folder: Path, log: Path, now: float) -> RunStatus:
    """Fill in `status` (stage, problem, name, epochs set) of a training, trial or tuned run from its folder.
    A folder whose writer lock a trainer holds is training, whatever it holds (never done: an earlier run's
    metrics.csv may still be there); a run copied from the run store is marked `fetched`."""
    metrics = folder / "metrics.csv"
    lock = _lock(folder)
    if metrics.exists() and lock != "held":
        status.fetched = marked_key(folder) is not None
        rows = read_metrics(metrics)
        status.epoch, status.values = len(rows), rows[-1] if rows else {}
        status.seconds_per_epoch = _mean(epoch_seconds(row) for row in rows)
        status.state = "diverged" if str(status.values.get("diverged")) == "True" else "done"
        return status
    files = events.epoch_files(folder)
    if files:
        status.epoch, status.values = max(files), epoch_values(files[max(files)])
        status.seconds_per_epoch = epoch_seconds(status.values)
    status.epoch = status.epoch or 0
    written = [log, folder / CHECKPOINT, *list(files.values())[-1:]]
    status.age, status.last_line = _age(written, now), last_line(log)
    status.state = _unfinished_state(status, lock)
    return status


def descent_status(status: RunStatus, folder: Path, log: Path, now: float) -> RunStatus:
    """A descent run: done (summary.csv), failed (its log's last line), running, stalled or waiting."""
    if (folder / "summary.csv").exists():
        status.state = "done"
        return status
    status.age, status.last_line = _age([log], now), last_line(log)
    status.state = _unfinished_state(status, "none")
    return status


# ---------------------------------------------------------------- the study
def study_status(plan: Plan, workdir=".", now: float | None = None) -> list[RunStatus]:
    """Every run of the plan, in the plan's order: training runs, trials, tuned runs, descent runs."""
    now, root, results = time.time() if now is None else now, Path(workdir), plan.results_dir
    name = lambda run: run.dir.removeprefix(f"{results}/")  # noqa: E731
    found = []
    for run in plan.train_runs:
        status = RunStatus("train", run.problem, name(run), "waiting", epochs=run.spec["epochs"])
        log = TRAIN_LOG.format(results=results, problem=run.problem, optimizer=run.optimizer, seed=run.seed)
        found.append(train_status(status, root / run.dir, root / log, now))
        found[-1].stale = "; ".join(recorded_changes(root / run.dir, run.spec))
    for trial in plan.trials_of():
        status = RunStatus("trials", trial.problem, name(trial), "waiting", epochs=trial.spec["epochs"])
        log = TRIAL_LOG.format(results=results, problem=trial.problem, optimizer=trial.optimizer, trial=trial.trial)
        found.append(train_status(status, root / trial.dir, root / log, now))
        found[-1].stale = "; ".join(recorded_changes(root / trial.dir, trial.spec))
    for run in plan.tune.finals if plan.tune else []:
        status = RunStatus("tuned", run.problem, name(run), "waiting", epochs=run.spec["epochs"])
        log = TUNED_LOG.format(results=results, problem=run.problem, optimizer=run.optimizer, seed=run.seed)
        found.append(train_status(status, root / run.dir, root / log, now))
        selection = root / plan.tune.selections[run.problem][run.optimizer]
        found[-1].stale = "; ".join(recorded_changes(root / run.dir, run.spec, selection))
    for run in plan.descent_runs:
        status = RunStatus("descent", run.group, f"{name(run)}/{run.method}/{run.gradient}", "waiting")
        log = DESCENT_LOG.format(results=results, **run.identity)
        found.append(descent_status(status, root / run.dir, root / log, now))
    return found


def recorded_changes(folder: Path, expected: dict, selection: Path | None = None) -> list[str]:
    """What changed in the plan's spec since the finished run in `folder` recorded its own (run.json's
    spec); [] for a run not finished. `selection`: a tuned run's selected.json (tuned_changes)."""
    if not (folder / "metrics.csv").exists():
        return []
    try:
        recorded = json.loads((folder / "run.json").read_text())["spec"]
    except (OSError, ValueError, KeyError):
        return ["run.json is missing or unreadable"]
    expected = with_current_code(expected)
    return tuned_changes(recorded, expected, selection) if selection else spec_changes(recorded, expected)


def counts(statuses: list[RunStatus]) -> dict[tuple[str, str], Counter]:
    """{(problem, stage): Counter of states, plus 'stale'} in the plan's order."""
    table: dict[tuple[str, str], Counter] = {}
    for s in statuses:
        counter = table.setdefault((s.problem, s.stage), Counter())
        counter[s.state] += 1
        counter["stale"] += bool(s.stale)
    return table


@dataclass
class Projection:
    """The study's remaining training time: epochs left of the runs still to train (waiting, training,
    stalled; failed runs are left out until rerun), each at its own measured seconds per epoch when it has
    one, else at the mean of its problem's measured runs, run `parallel` at a time."""

    epochs_left: int
    seconds_left: float
    parallel: int
    unmeasured: list  # problems with runs left and no epoch measured yet: left out of seconds_left
    failed: int

    def end(self, now: float) -> float:
        return now + self.seconds_left / self.parallel


def projection(statuses: list[RunStatus], parallel: int | None = None) -> Projection:
    """Projection of the runs with epochs (descent runs take seconds: left out). `parallel` defaults to the
    number of runs training now (at least 1): the study goes on as it runs now."""
    trained = [s for s in statuses if s.epochs is not None]
    per_problem = {p: _mean(s.seconds_per_epoch for s in trained if s.problem == p)
                   for p in {s.problem for s in trained}}
    left = [s for s in trained if s.state in ("waiting", "training", "stalled")]
    epochs_left, seconds, unmeasured = 0, 0.0, []
    for s in left:
        remaining = s.epochs - (s.epoch or 0)
        rate = s.seconds_per_epoch if s.state == "training" and s.seconds_per_epoch else per_problem[s.problem]
        epochs_left += remaining
        if rate is None:
            unmeasured.append(s.problem)
        else:
            seconds += remaining * rate
    training = sum(s.state == "training" for s in trained)
    return Projection(epochs_left, seconds, parallel or max(1, training), sorted(set(unmeasured)),
                      sum(s.state == "failed" for s in statuses))


# ---------------------------------------------------------------- the plan, and the report
def results_dir(configs) -> str | None:
    """The config files' results_dir (a top-level key: the last file that sets it wins), None if none does."""
    found = None
    for path in configs:
        text = yaml.safe_load(Path(path).read_text()) or {}
        found = text.get("results_dir", found) if isinstance(text, dict) else found
    return found


def load_plan(configs, workdir=".", from_config: bool = False) -> tuple[Plan, str]:
    """(the study's plan, where it came from): its plan.json (`plan` rule) when that is newer than every config
    file, else its plan cache (runs.PLAN_CACHE, written by `make study`'s check) when that is newer than every
    config file and no source file it depends on changed, else the plan the config gives now, built by
    `python -m optimbench.plan` (a subprocess: it loads torch and runs every check, seconds). Reads, never
    writes.

    Raises:
        SystemExit: the config is invalid (optimbench.plan's message, naming the key).
    """
    results, root = results_dir(configs), Path(workdir)
    plan_file = root / results / "plan.json" if results else None
    newest_config = max(Path(c).stat().st_mtime for c in configs)
    if not from_config and plan_file and plan_file.exists() and plan_file.stat().st_mtime >= newest_config:
        return read_plan(plan_file), str(plan_file)
    # Before the `plan` job has run (a study that just started): the plan `make study` checked and cached.
    cache = root / PLAN_CACHE.format(results=results) if results else None
    if not from_config and cache and cache.exists() and cache.stat().st_mtime >= newest_config:
        cached = current_cached_plan(cache)
        if cached is not None:
            return cached, str(cache)
    built = subprocess.run([sys.executable, "-m", "optimbench.plan", *map(os.path.abspath, configs)], cwd=root,
                           capture_output=True, text=True)
    if built.returncode:
        raise SystemExit(built.stderr.strip() or built.stdout.strip())
    why = "--from-config" if from_config else "plan.json is missing or older than a config file"
    return Plan.from_json(built.stdout), f"the config files ({why})"


def duration(seconds: float) -> str:
    """'3 d 4 h', '2 h 05 min', '7 min', '40 s'."""
    seconds = int(round(seconds))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes else f"{seconds} s"


def clock(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(timestamp))


def _finite(values: dict, column: str) -> bool:
    return isinstance(values.get(column), float) and math.isfinite(values[column])


def shown_values(values: dict, problem: StudyProblem) -> str:
    """The last train loss and the primary metric (on the test set, else on the validation split: trials
    evaluate no test set, tuned runs only after their last epoch), e.g. 'train_loss 0.412  test_acc 0.881'."""
    base = problem.primary.name.split("_", 1)[-1]
    primary = next((c for c in (problem.primary.name, f"val_{base}") if _finite(values, c)), None)
    columns = [c for c in problem.columns(("train",))[:1] + [primary] if c and _finite(values, c)]
    return "  ".join(f"{c} {values[c]:.4g}" for c in columns)


def run_line(s: RunStatus, problem: StudyProblem | None) -> str:
    """One run: its state and what its folder shows so far."""
    text = s.state
    if s.epochs is not None and s.state != "waiting":
        text += f"  epoch {s.epoch} of {s.epochs}"
    if s.values and problem is not None:
        text += "  " + shown_values(s.values, problem)
    if s.seconds_per_epoch:
        text += f"  {s.seconds_per_epoch:.3g} s/epoch"
    if s.state == "stalled":
        text += (f"  (no write for {duration(s.age)} and no trainer holds it: killed? run the study again "
                 f"and it resumes from its checkpoint)")
    if s.state == "failed":
        text += f"  log: {s.last_line}"
    if s.fetched:
        text += "  (from the run store)"
    if s.stale:
        text += f"  STALE ({s.stale})"
    return f"  {s.name:<{48}} {text}"


def count_table(statuses: list[RunStatus]) -> list[str]:
    width = max([len("problem")] + [len(s.problem) for s in statuses])
    head = f"  {'problem':<{width}} {'stage':<8}" + "".join(f"{state:>9}" for state in (*STATES, "stale"))
    lines = [head]
    for (problem, stage), counter in counts(statuses).items():
        lines.append(f"  {problem:<{width}} {stage:<8}" + "".join(f"{counter[k]:>9}" for k in (*STATES, "stale")))
    return lines


def report(plan: Plan, statuses: list[RunStatus], source: str, now: float, parallel: int | None = None,
           brief: bool = False) -> str:
    """The status as text: every run (with `brief`, those neither done nor waiting), the counts, the stale
    results and the projected end."""
    problems = plan.problems
    lines = [f"Study {plan.results_dir} (plan from {source}), {clock(now)}"]
    for stage in STAGES:
        shown = [s for s in statuses if s.stage == stage and not (brief and s.state in ("done", "waiting"))]
        if shown:
            lines += [f"{stage}:"] + [run_line(s, problems.get(s.problem)) for s in shown]
    lines += ["", "Runs per problem and stage:", *count_table(statuses)]
    stale = [s for s in statuses if s.stale]
    if stale:
        lines += ["", f"{len(stale)} finished run(s) are stale: the plan's spec changed since they ran "
                      f"(the next `make study` reruns them):"] + [f"  {s.name}: {s.stale}" for s in stale]
    fetched = sum(s.fetched for s in statuses)
    if fetched:
        lines += ["", f"{fetched} finished run(s) came from the run store (not trained in this study)."]
    lines += ["", projection_line(projection(statuses, parallel), now)]
    return "\n".join(lines)


def projection_line(p: Projection, now: float) -> str:
    if p.epochs_left == 0:
        return "Projected end: every run has finished" + (f" ({p.failed} failed)" if p.failed else "") + "."
    if p.seconds_left == 0:
        return (f"Projected end: unknown until an epoch of {', '.join(p.unmeasured)} has been measured "
                f"({p.epochs_left} epochs left).")
    text = (f"Projected end: {clock(p.end(now))} (in {duration(p.seconds_left / p.parallel)}): {p.epochs_left} "
            f"epochs left at the measured seconds per epoch, {p.parallel} run(s) at a time (the number training "
            f"now; --parallel N assumes another)")
    if p.unmeasured:
        text += f"; not counting the runs of {', '.join(p.unmeasured)} (no epoch measured yet)"
    if p.failed:
        text += f"; not counting {p.failed} failed run(s)"
    return text + "."


def main(argv=None) -> None:
    """`python -m optimbench.status config.yaml [override.yaml ...]`: print where the study stands."""
    parser = argparse.ArgumentParser(description="Where a study stands: every run's state, the counts per problem "
                                                 "and stage, stale results and the projected end. Reads only.")
    parser.add_argument("configs", nargs="+", help="config.yaml, then override files (later ones win)")
    parser.add_argument("--workdir", default=".", help="the folder the study runs in")
    parser.add_argument("--parallel", type=int, help="runs that train at a time, for the projected end "
                                                     "(default: the number training now)")
    parser.add_argument("--brief", action="store_true", help="list only the runs neither done nor waiting")
    parser.add_argument("--from-config", action="store_true",
                        help="build the plan from the config files even when plan.json is newer (seconds)")
    args = parser.parse_args(argv)
    plan, source = load_plan(args.configs, args.workdir, args.from_config)
    now = time.time()
    print(report(plan, study_status(plan, args.workdir, now), source, now, args.parallel, args.brief))


if __name__ == "__main__":
    main()
