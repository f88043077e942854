"""The study through profiles/slurm on a real single-node SLURM cluster (tests/slurm/cluster.sh).

Every SLURM-facing command runs under `timeout -s KILL`: the plugin can hang when accounting is down.
"""

import json
import os
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest

from optimbench import checkpoints, train

from helpers import ROOT, SNAKEMAKE, job_counts, run_env, write_config

pytestmark = pytest.mark.slurm
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
DEMO = ROOT / "config" / "presets" / "demo.yaml"
TIMING = ["epoch_seconds", "eval_seconds", "samples_per_second"]
# Fast status checks for a test (the plugin's defaults wait 40 s before the first one).
FAST = ["--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
        "--latency-wait", "5", "--slurm-keep-successful-logs"]


@pytest.fixture(scope="module")
def cluster():
    up = subprocess.run(["timeout", "-s", "KILL", "600", str(CLUSTER), "up"], capture_output=True, text=True)
    assert up.returncode == 0, up.stdout + up.stderr
    env = run_env()
    env["SLURM_CONF"] = up.stdout.strip().splitlines()[-1].split("=", 1)[1]
    yield env
    subprocess.run(["timeout", "-s", "KILL", "120", str(CLUSTER), "down"], check=False)


def command(workdir, configs, *args, profile=True):
    cmd = ["timeout", "-s", "KILL", "900", SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", *map(str, configs)]
    return cmd + (["--profile", str(ROOT / "profiles" / "slurm"), *FAST] if profile else ["--cores", "2"]) + list(args)


def sacct(env, since: float, *fields) -> list[list[str]]:
    """Accounting rows (one per job, not per step) of the jobs submitted since a time.time()."""
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 1))
    out = subprocess.run(["timeout", "-s", "KILL", "60", "sacct", "-X", "-n", "-P", "-S", start,
                          "-o", ",".join(fields)], env=env, capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def metrics(workdir, optimizer, seed=0):
    path = workdir / f"results/demo/train/digits-resnet18/{optimizer}/seed{seed}/metrics.csv"
    return pd.read_csv(path).drop(columns=TIMING)


def test_demo_study_on_slurm_runs_training_as_gpu_jobs_and_matches_a_local_run(cluster, tmp_path):
    # Lion comes from a file beside the override (a path relative to it): the jobs import it in their own
    # environment, not the shell's, and the report puts it first (report.focus).
    (tmp_path / "opt").mkdir()
    shutil.copy(ROOT / "examples" / "optimizers" / "lion.py", tmp_path / "opt" / "lion.py")
    optimizers = ("SGD", "Adam", "Adagrad", "Lion")
    override = write_config(tmp_path / "quick.yaml", problems=["digits-resnet18"],
                            optimizers={"Lion": {"class": "opt/lion.py:Lion", "kwargs": {"lr": 1e-3}}},
                            train={"epochs": 2, "seeds": [0], "gpus": 1, "optimizers": list(optimizers)},
                            tune={"enabled": False}, report={"focus": "Lion"}, descent={"groups": [
        {"name": "article", "functions": ["ackley"], "methods": ["article-vanilla"], "gradients": ["as-printed"]}]})
    configs = [DEMO, override]
    on_slurm = tmp_path / "slurm"
    tic = time.time()
    result = subprocess.run(command(on_slurm, configs), env=cluster, capture_output=True, text=True)
    print(f"SLURM run: {time.time() - tic:.0f} s")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert job_counts(result.stdout + result.stderr)["train"] == len(optimizers)

    jobs = [row for row in sacct(cluster, tic, "JobID", "Comment", "State", "ReqTRES") if "rule_train" in row[1]]
    names = {row[1] for row in jobs}
    assert names == {f"rule_train_wildcards_digits-resnet18_{o}_0" for o in optimizers}
    assert all(row[2] == "COMPLETED" and "gres/gpu=1" in row[3] for row in jobs), jobs
    assert not [row for row in sacct(cluster, tic, "Comment") if "rule_descent" in row[0] or "rule_report" in row[0]]
    assert (on_slurm / "results/demo/report/study.html").stat().st_size > 100_000

    local = tmp_path / "local"
    targets = [f"results/demo/train/digits-resnet18/{o}/seed0/metrics.csv" for o in optimizers]
    subprocess.run(command(local, configs, *targets, profile=False), env=cluster, check=True, capture_output=True)
    for optimizer in optimizers:
        pd.testing.assert_frame_equal(metrics(on_slurm, optimizer), metrics(local, optimizer), check_exact=True)


def test_training_jobs_share_one_gpu_through_slurm_shards(cluster, tmp_path):
    """gres shard:2 of the cluster's 4 shards per GPU: two training jobs run on the one GPU at once."""
    override = write_config(tmp_path / "shared.yaml", train={"epochs": 2, "seeds": [0], "optimizers": ["SGD", "Adam"],
                                                            "gpus": 1, "runs_per_gpu": 2})
    runs = {o: tmp_path / f"results/demo/train/digits-resnet18/{o}/seed0" for o in ("SGD", "Adam")}
    tic = time.time()
    result = subprocess.run(command(tmp_path, [DEMO, override], *(str(r.relative_to(tmp_path) / "metrics.csv")
                                                                  for r in runs.values()),
                                    "--set-resources", "train:gres='shard:2'"),
                            env=cluster, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    jobs = [row for row in sacct(cluster, tic, "Comment", "State", "ReqTRES", "Start", "End") if "rule_train" in row[0]]
    assert len(jobs) == 2 and all(row[1] == "COMPLETED" and "gres/shard=2" in row[2] for row in jobs), jobs
    (_, _, _, start_a, end_a), (_, _, _, start_b, end_b) = jobs
    assert start_a < end_b and start_b < end_a, jobs  # both held the GPU at the same time
    spans = [json.loads((run / "run.json").read_text()) for run in runs.values()]
    assert spans[0]["started"] < spans[1]["finished"] and spans[1]["started"] < spans[0]["finished"], spans


def wait_for(predicate, seconds, what):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_cancelled_training_job_resumes_from_its_checkpoint_on_rerun(cluster, tmp_path):
    """scancel a training job mid-run, stop Snakemake, run it again: the job resumes where it stopped.

    Snakemake is killed by hand because snakemake-executor-plugin-slurm 2.8.0 does not recognise
    SLURM 22.05's state `CANCELLED by <uid>` as a failure and would wait for the job forever (it
    ignores SIGTERM meanwhile); the rerun first unlocks the folder, as a user would.
    """
    override = write_config(tmp_path / "long.yaml", train={"epochs": 8, "seeds": [0], "optimizers": ["SGD"], "gpus": 1})
    run_dir = tmp_path / "results/demo/train/digits-resnet18/SGD/seed0"
    cmd = command(tmp_path, [DEMO, override], str(run_dir.relative_to(tmp_path) / "metrics.csv"))
    log = tmp_path / "snakemake.log"  # a file, not a pipe: nobody reads a pipe while we wait
    tic = time.time()
    proc = subprocess.Popen(cmd, env=cluster, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: (run_dir / checkpoints.CHECKPOINT).exists(), 300, "the first checkpoint")
        queue = subprocess.run(["timeout", "-s", "KILL", "30", "squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"],
                               env=cluster, capture_output=True, text=True, check=True).stdout
        [job] = [line.split("|")[0] for line in queue.splitlines() if "rule_train" in line]
        subprocess.run(["timeout", "-s", "KILL", "30", "scancel", job], env=cluster, check=True)
        wait_for(lambda: any(row[0] == job and row[1].startswith("CANCELLED")
                             for row in sacct(cluster, tic, "JobID", "State")), 60, "the cancellation")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (run_dir / "metrics.csv").exists() and (run_dir / checkpoints.CHECKPOINT).exists()

    subprocess.run(cmd + ["--unlock"], env=cluster, check=True, capture_output=True)
    rerun = subprocess.run(cmd, env=cluster, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-4000:]
    states = [row[1].split()[0] for row in sacct(cluster, tic, "Comment", "State") if row[0].startswith("rule_train")]
    assert states == ["CANCELLED", "COMPLETED"], states
    info = json.loads((run_dir / "run.json").read_text())
    assert 1 <= info["resumed_after_epoch"] < 8  # at most the epoch in flight was lost
    spec = {**info["spec"], "data": str(tmp_path / info["spec"]["data"])}  # the job's paths are workdir-relative
    uninterrupted = train.run(spec, tmp_path / "uninterrupted", threads=info["threads"])
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "metrics.csv").drop(columns=TIMING),
                                  uninterrupted.drop(columns=TIMING), check_exact=True)
