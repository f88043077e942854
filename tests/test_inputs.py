"""Issue 14's inputs outside the package: the SLURM test cluster's apt lock wait, and the docs that were wrong."""

from __future__ import annotations

import re
import subprocess

import yaml

from helpers import ROOT

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
README = (ROOT / "README.md").read_text()

FAKE_APT_GET = """#!/usr/bin/env bash
echo "$*" >> "{calls}"
if [ "$(wc -l < "{calls}")" -le {locked_calls} ]; then
    echo "E: {error}" >&2
    exit 100
fi
echo "fake apt-get done"
"""


def apt_get(tmp_path, locked_calls: int, error: str = "Could not get lock /var/lib/apt/lists/lock. It is held by "
            "process 7 (apt-get)", wait: int = 600):
    """cluster.sh's apt_get against a fake apt-get that finds a lock held for its first `locked_calls` calls."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir(parents=True, exist_ok=True)
    fake = bin_dir / "apt-get"
    fake.write_text(FAKE_APT_GET.format(calls=calls, locked_calls=locked_calls, error=error))
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "OPTIMBENCH_APT_LOCK_POLL": "0.05",
           "OPTIMBENCH_APT_LOCK_WAIT": str(wait), "OPTIMBENCH_SLURM_DIR": str(tmp_path / "state")}
    result = subprocess.run(["bash", "-c", f"source {CLUSTER} && apt_get update -qq"], env=env,
                            capture_output=True, text=True, timeout=60)
    return result, calls.read_text().splitlines()


def test_cluster_script_waits_while_another_apt_get_holds_the_lock(tmp_path):
    result, calls = apt_get(tmp_path, locked_calls=3)
    assert result.returncode == 0, result.stderr
    assert calls == ["-o DPkg::Lock::Timeout=600 update -qq"] * 4  # dpkg's lock waited by apt, the others here
    assert result.stderr.count("apt is locked by another process") == 3 and "fake apt-get done" in result.stdout


def test_cluster_script_fails_at_once_on_other_errors_and_after_the_wait(tmp_path):
    result, calls = apt_get(tmp_path, locked_calls=5, error="Unable to locate package slurmd")
    assert result.returncode == 1 and len(calls) == 1 and "Unable to locate package slurmd" in result.stderr
    result, calls = apt_get(tmp_path / "x", locked_calls=100, wait=0)
    assert result.returncode == 1 and len(calls) == 1 and "Could not get lock" in result.stderr


def test_every_apt_get_of_the_cluster_script_goes_through_the_wait():
    body = CLUSTER.read_text()
    code = [line.split("#")[0] for line in body.splitlines()]
    direct = [line for line in code if re.search(r"(^|\s)apt-get\s", line) and "DPkg::Lock" not in line]
    assert direct == []


# ---------------------------------------------------------------- docs that were wrong (issue 14.12, 14.13)
def test_runs_per_gpu_text_does_not_recommend_job_groups():
    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    text = schema["properties"]["train"]["properties"]["runs_per_gpu"]["description"]
    assert "--groups" not in text and "shard" in text


def test_readme_report_command_names_the_presets_configfile():
    commands = [line for line in README.splitlines() if "snakemake" in line and "--report" in line]
    assert commands and all("--configfile" in line for line in commands)


def test_readme_documents_unlock_after_kill():
    assert "kill -9" in README and "--unlock" in README and "Directory cannot be locked" in README


def test_readme_says_only_the_venv_is_supported():
    assert "only the `.venv`" in README and "--software-deployment-method conda" in README


# ---------------------------------------------------------------- how optimizers step (issue 14.4)
def test_step_kind_is_read_from_the_step_signature():
    import pytorch_optimizer
    import torch

    from optimbench.optim import step_kind

    assert step_kind(torch.optim.LBFGS) == (True, False)  # step(closure): closure required
    assert step_kind(pytorch_optimizer.SophiaH) == (False, True)  # step(closure=None, hessian=None)
    assert step_kind(pytorch_optimizer.AdaHessian) == (False, True)
    for cls in (torch.optim.SGD, torch.optim.Adam, pytorch_optimizer.QHM):
        assert step_kind(cls) == (False, False)
    assert step_kind(torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])) == (True, False)  # instances too
