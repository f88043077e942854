"""Several training runs share one GPU: the train rule's gpu_percent resource (workstation) and gres (SLURM)."""

import datetime as dt
import json
import re

import pytest

from helpers import ROOT, job_counts, snakemake, write_config

pytestmark = pytest.mark.workflow
RUNS = ("SGD", "Adam", "Adagrad")


def train_resources(output: str) -> list[str]:
    """The `resources:` line of each train job in a (dry) run's output: one per train job of the job stats
    (the article's 7 optimizers × 1 seed), so a format the pattern no longer matches fails here."""
    lines = re.findall(r"rule train:.*?resources: ([^\n]*)", output, flags=re.S)
    assert len(lines) == job_counts(output)["train"] == 7, output[-3000:]
    return lines


def test_each_train_job_holds_its_share_of_a_gpu_and_asks_slurm_for_gres(tmp_path):
    shared = snakemake(tmp_path, write_config(tmp_path / "c.yaml", train={"runs_per_gpu": 4}), "-n")
    assert all("gpu_percent=25" in line and "gres=gpu:1" in line for line in train_resources(shared.stdout))

    alone = snakemake(tmp_path, write_config(tmp_path / "d.yaml", train={"runs_per_gpu": 3, "gpus": 2}), "-n")
    assert all("gpu_percent=66" in line and "gres=gpu:2" in line for line in train_resources(alone.stdout))

    cpu = snakemake(tmp_path, write_config(tmp_path / "e.yaml", train={"gpus": 0}), "-n")
    assert all("gpu_percent=0" in line and "gres" not in line for line in train_resources(cpu.stdout))


def test_runs_per_gpu_jobs_run_side_by_side_and_no_more(tmp_path):
    """Three runs, two per GPU, cores for three: the local profile's gpu_percent=100 starts exactly two at once."""
    config = write_config(tmp_path / "c.yaml", results_dir="results", data={"source": "synthetic",
                          "synthetic": {"train_size": 512, "test_size": 128}},
                          train={"model": "resnet18_cifar", "width": 8, "epochs": 3, "seeds": [0],
                                 "optimizers": list(RUNS), "threads": 1, "device": "cpu", "gpus": 1,
                                 "runs_per_gpu": 2})
    targets = [f"results/train/cifar10-resnet18/{o}/seed0/run.json" for o in RUNS]
    result = snakemake(tmp_path, config, "--profile", str(ROOT / "profiles" / "local"), "--cores", "3", *targets)
    log = result.stdout + result.stderr
    assert job_counts(log)["train"] == 3
    # The scheduling round after the data is ready starts two train jobs; the third waits for a share.
    after_data = log.split("(Rule: prepare_data)")[1]
    first_round = after_data.split("Finished jobid")[0]
    assert first_round.count("rule train:") == 2, first_round

    spans = []
    for optimizer in RUNS:
        info = json.loads((tmp_path / f"results/train/cifar10-resnet18/{optimizer}/seed0/run.json").read_text())
        spans.append((dt.datetime.fromisoformat(info["started"]), dt.datetime.fromisoformat(info["finished"])))
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, spans  # two runs really trained at the same time
    assert max(start for start, _ in spans) >= min(end for _, end in spans)  # never all three at once
