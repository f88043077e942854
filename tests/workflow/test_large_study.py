"""A study's invocations that do no study-wide work (issue 38): a dry run, --unlock and --list-rules write into
no run folder and no store; a job's re-parse plans and checks only its own runs; a changed run's dry-run reason
shows what changed, not the whole plan or spec."""

import json
import re
import subprocess

import pytest

from helpers import PYTHON, ROOT, run_env, snakemake, write_config

pytestmark = pytest.mark.workflow
STUDY = {"problems": ["digits-vae"], "data": {"source": "digits"}, "descent": {"groups": []},
         "tune": {"enabled": False},
         "train": {"optimizers": ["SGD", "Adam"], "seeds": [0, 1], "epochs": 1, "threads": 1, "gpus": 0,
                   "train_subset": 128, "test_subset": 64}}


def planned(workdir, config) -> dict:
    """The study's plan as `python -m optimbench.plan` prints it (the config's own, in the workdir)."""
    printed = subprocess.run([PYTHON, "-m", "optimbench.plan", str(ROOT / "config.yaml"), str(config)], cwd=workdir,
                             env=run_env(), capture_output=True, text=True, check=True)
    return json.loads(printed.stdout)


def snapshot(*folders) -> dict:
    """Every file under `folders` with its size and mtime, every folder by name; a plan cache left out."""
    found = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")] if folder.exists() else []:
            if ".cache" not in path.parts:
                found[str(path)] = (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else "folder"
    return found


def test_a_dry_run_unlock_and_list_write_into_no_run_folder_and_no_store(tmp_path):
    store = tmp_path / "store"
    config = write_config(tmp_path / "c.yaml", **STUDY, store=str(store))
    plan = planned(tmp_path, config)
    finished, started = (tmp_path / run["dir"] for run in plan["train_runs"][:2])
    finished.mkdir(parents=True)  # a run finished here with the plan's spec: what a sync would publish
    (finished / "run.json").write_text(json.dumps({"spec": plan["train_runs"][0]["spec"]}))
    (finished / "metrics.csv").write_text("epoch\n1\n")
    (finished / "model.pt").write_bytes(b"weights")
    started.mkdir(parents=True)  # a run half-way: what a fetch would write into
    (started / "checkpoint.pt").write_bytes(b"state")
    before = snapshot(tmp_path / "results", store)
    for args in (["-n"], ["--unlock"], ["--list-rules"]):
        snakemake(tmp_path, config, *args)
        assert snapshot(tmp_path / "results", store) == before, args


def test_a_jobs_reparse_plans_and_checks_only_its_own_runs(tmp_path):
    """A SLURM job (or a job's subprocess) re-parses the Snakefile as `--mode remote --target-jobs ...`: with
    SGD's settings broken, the study refuses to plan, and Adam's job still starts (it never builds SGD), and
    it writes no plan cache (it planned no study)."""
    config = write_config(tmp_path / "c.yaml", **{**STUDY, "optimizers": {"SGD": {"kwargs": {"lr": -1.0}}}})
    refused = snakemake(tmp_path, config, "-n", check=False)
    assert refused.returncode != 0 and "optimizers.SGD.kwargs.lr = -1.0" in refused.stderr + refused.stdout
    job = snakemake(tmp_path, config, "-n", "--mode", "remote", "--target-jobs",
                    "train:problem=digits-vae,optimizer=Adam,seed=1", "--allowed-rules", "train", "--cores", "1")
    assert "rule train:" in job.stdout and "optimizer=Adam, seed=1" in job.stdout
    assert not (tmp_path / "results" / ".cache").exists()


def test_a_changed_optimizer_reruns_its_runs_and_the_reason_shows_only_what_changed(tmp_path):
    config = write_config(tmp_path / "c.yaml", **{**STUDY, "train": {**STUDY["train"], "seeds": [0]}})
    snakemake(tmp_path, config, "--cores", "2", "--allowed-rules", "plan", "prepare_data", "train", "--",
              "results/plan.json", *[f"results/train/digits-vae/{o}/seed0/metrics.csv" for o in ("SGD", "Adam")])
    changed = write_config(tmp_path / "c.yaml", **{**STUDY, "train": {**STUDY["train"], "seeds": [0]},
                                                   "optimizers": {"SGD": {"kwargs": {"lr": 0.5}}}})
    result = snakemake(tmp_path, changed, "-n")
    dry = result.stdout
    # the workflow's own summary: what changed since the last plan, and the runs it reruns
    assert "optimizer.kwargs.lr: 0.01 -> 0.5 (1 run(s) of SGD)" in result.stderr
    blocks = {m.group(1): m.group(0) for m in re.finditer(r"rule train:\n(?:    .*\n)*?    wildcards: (.*)\n", dry)}
    assert list(blocks) == ["problem=digits-vae, optimizer=SGD, seed=0"], dry[-3000:]  # Adam's run stays
    reason = re.search(r"reason: (.*)", blocks["problem=digits-vae, optimizer=SGD, seed=0"]).group(1)
    assert '"lr": 0.5' in reason and '"lr": 0.01' in reason  # the optimizer's half, before and now
    assert '"epochs"' not in reason and '"data"' not in reason  # the rest of the spec did not change
    assert '"train_runs"' not in dry  # the plan job's reason: a digest, never the whole plan
