"""A researcher's own optimizer from a file in a scratch study (README, "Compare your own optimizer"): its runs
are planned, trained and rerun exactly when its file changes; two studies share a run store, and the second
trains only what the first did not. (The same file through profiles/slurm: tests/slurm/test_slurm.py.)"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import tiny_config

from helpers import PYTHON, ROOT, job_counts, run_env, snakemake, write_config
from workflow_study import PROBLEM

pytestmark = pytest.mark.workflow
LION = ROOT / "examples" / "optimizers" / "lion.py"
# One problem, one seed, one short epoch: each run is one training job of seconds.
TRAIN = {"seeds": [0], "epochs": 1, "train_subset": 300, "test_subset": 200}


def own_study(folder, trained, descent, **changes):
    """A study folder: opt/lion.py (the example, copied) and own.yaml naming it relative to itself."""
    (folder / "opt").mkdir(parents=True)
    shutil.copy(LION, folder / "opt" / "lion.py")
    sections = tiny_config(problems=[PROBLEM], train={**TRAIN, "optimizers": trained}, tune={"enabled": False},
                           descent={"max_epochs": 20, "groups": [
                               {"name": "own", "functions": ["ackley"], "methods": descent,
                                "gradients": ["autograd"], "early_stop": False}]}, **changes)
    sections["optimizers"] = {"Lion": {"class": "opt/lion.py:Lion", "kwargs": {"lr": 1e-3}},
                              **sections.get("optimizers", {})}
    return write_config(folder / "own.yaml", **sections)


def targets(optimizers, descent) -> list[str]:
    """The study's run files: its training runs and descent runs (the report is the SLURM test's)."""
    return ([f"results/train/{PROBLEM}/{o}/seed0/metrics.csv" for o in optimizers]
            + (["results/descent/own/ackley/summary.csv"] if descent else []))


def dry_run(folder, config, wanted) -> tuple[dict[str, int], str]:
    """(job counts, output) of a dry run for `wanted`; {} when nothing is to be done."""
    result = snakemake(folder, config, "-n", *wanted)
    out = result.stdout + result.stderr
    return ({} if "Nothing to be done" in out else job_counts(out)), out


def test_a_file_optimizer_trains_reruns_exactly_its_runs_and_two_studies_share_one_store(tmp_path):
    store = str(tmp_path / "store")
    a, b = tmp_path / "a", tmp_path / "b"
    config_a = own_study(a, ["SGD", "Lion"], ["SGD", "Lion"], store=store)
    wanted = targets(["SGD", "Lion"], ["SGD", "Lion"])
    run = snakemake(a, config_a, "--cores", "2", *wanted)
    counts = job_counts(run.stdout + run.stderr)
    assert (counts["train"], counts["descent"]) == (2, 1)  # the file's optimizer has its runs (one descent job)
    assert json.loads((a / f"results/train/{PROBLEM}/Lion/seed0/run.json").read_text())["spec"]["optimizer"][
        "code"]["file"] == "lion.py"

    (a / "opt" / "notes.py").write_text("# another file of the study\n")
    (a / "own.yaml").write_text((a / "own.yaml").read_text() + "# a comment\n")
    assert dry_run(a, config_a, wanted)[0] == {}  # nothing reruns
    (a / "opt" / "lion.py").write_text((a / "opt" / "lion.py").read_text() + "# an edit of the update rule\n")
    counts, out = dry_run(a, config_a, wanted)
    # Lion's training run, and the descent job holding Lion's run (with SGD's: one job per group and function)
    assert (counts["train"], counts["descent"]) == (1, 1) and "total" in counts
    assert "optimizer=Lion" in out and "optimizer=SGD" not in out

    # A second study in another folder: the same baselines and Lion (its own copy), plus Adam. Only Adam trains.
    config_b = own_study(b, ["SGD", "Lion", "Adam"], ["Lion"], store=store)
    wanted_b = targets(["SGD", "Lion", "Adam"], [])
    entries = sorted(p.relative_to(store) for p in Path(store).rglob("*"))
    # Issue 37.3: a dry run, --unlock and --list-rules published and fetched; now they touch neither the store
    # nor a run folder (each job of the store's runs is planned: it copies the entry when it runs).
    counts, out = dry_run(b, config_b, wanted_b)
    assert counts["train"] == 3 and "Run store" not in out
    for args in (["--unlock"], ["--list-rules"]):
        snakemake(b, config_b, *args)
    assert sorted(p.relative_to(store) for p in Path(store).rglob("*")) == entries
    assert not (b / "results" / "train").exists()
    run = snakemake(b, config_b, "--cores", "2", *wanted_b)
    # Issue 37.5: one line says what this invocation's jobs did with the store.
    assert "Run store: fetched 2, published 1, skipped 0" in run.stderr, run.stderr[-3000:]
    stored = b / f"results/train/{PROBLEM}/SGD/seed0"
    for name in ("metrics.csv", "run.json", "events.out.tfevents.000001.optimbench"):
        assert (stored / name).read_bytes() == (a / "results" / stored.relative_to(b / "results") / name).read_bytes()
    assert json.loads((stored / "run.json").read_text())["job_seconds"] > 0  # the cost table's job time too
    # Issue 37.4/37.5/37.7: status marks the fetched runs and calls none stale (Lion's folder is another).
    shown = subprocess.run([PYTHON, "-m", "optimbench.status", str(ROOT / "config.yaml"), str(config_b),
                            "--workdir", str(b)], env=run_env(), capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "2 finished run(s) came from the run store" in shown.stdout and "are stale" not in shown.stdout
    assert dry_run(b, config_b, wanted_b)[0] == {}

    # A changed setting of a baseline: that baseline trains again; changed back, it comes from the store.
    changed = own_study(tmp_path / "b2", ["SGD", "Lion", "Adam"], ["Lion"], store=store,
                        optimizers={"SGD": {"class": "SGD", "kwargs": {"lr": 0.05, "momentum": 0.9}}})
    original = (b / "own.yaml").read_text()
    shutil.copy(changed, b / "own.yaml")
    counts, out = dry_run(b, b / "own.yaml", wanted_b)
    assert counts["train"] == 1 and "optimizer=SGD" in out and "optimizer=Lion" not in out
    run = snakemake(b, b / "own.yaml", "--cores", "2", *wanted_b)
    assert "Run store: fetched 0, published 1, skipped 0" in run.stderr
    (b / "own.yaml").write_text(original)
    run = snakemake(b, config_b, "--cores", "2", *wanted_b)
    assert "Run store: fetched 1, published 0, skipped 0" in run.stderr  # edit and revert: no training
    assert (stored / "metrics.csv").read_bytes() == (a / "results" / stored.relative_to(b / "results") /
                                                     "metrics.csv").read_bytes()


def test_a_bad_optimizer_file_stops_the_workflow_before_any_job(tmp_path):
    config = own_study(tmp_path, ["SGD", "Lion"], ["SGD"])
    (tmp_path / "opt" / "lion.py").write_text("import torch\n\nclass Lion(torch.optim.Optimizer)\n    pass\n")
    result = snakemake(tmp_path, config, "-n", check=False)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert f"optimizers.Lion.class = '{tmp_path / 'opt' / 'lion.py'}:Lion': {tmp_path / 'opt' / 'lion.py'}:3: " \
           "syntax error (expected ':'); fix the file" in out
    assert "Job stats" not in out and not (tmp_path / "results").exists()


def test_make_finds_a_study_module_and_names_the_report_without_a_traceback(tmp_path):
    """The Makefile's results line imports the config's classes from the study's folder, as every job does."""
    shutil.copy(LION, tmp_path / "my_opt.py")
    config = write_config(tmp_path / "own.yaml", optimizers={"Mine": {"class": "my_opt.Lion"}},
                          train={"optimizers": ["SGD", "Mine"]})
    venv = Path(PYTHON).parent.parent
    result = subprocess.run(["make", "-n", "-C", str(ROOT), "study", f"CONFIG={config}", f"WORKDIR={tmp_path}",
                             f"VENV={venv}"], env=run_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert f'echo "Report: {tmp_path}/results/report/study.html"' in result.stdout
