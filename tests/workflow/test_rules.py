"""The one list of the rules downstream of the results (workflow/report-rules.txt): it names every rule but
the jobs that compute results, and it is what runs locally and what `make report` runs (all of it, forced)."""

import json
import shlex
import subprocess

import pytest

from helpers import PYTHON, ROOT, run_env

pytestmark = pytest.mark.workflow
# The jobs that compute results (import_published: the published runs), and `select`, which writes what
# tuned_train reads: `make report` runs none.
COMPUTING = {"prepare_data", "validation_split", "train", "descent", "trial", "select", "tuned_train",
             "import_published"}
TRAINING = {"train", "trial", "tuned_train"}  # the jobs a cluster runs; every other rule runs locally
# The workflow's rules and local rules, from Snakemake's own parse of the Snakefile (no DAG, no jobs).
RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings(quiet=None)) as api:
    workflow = api.workflow(ResourceSettings(cores=1), snakefile=Path(sys.argv[1]), workdir=Path(sys.argv[2]))._workflow
    print(json.dumps({"rules": sorted(r.name for r in workflow.rules), "local": sorted(workflow._localrules)}))
"""


def report_rules() -> list[str]:
    """workflow/report-rules.txt's names, in order (a '#' starts a comment)."""
    lines = (ROOT / "workflow/report-rules.txt").read_text().splitlines()
    return [name for name in (line.split("#")[0].strip() for line in lines) if name]


def option_values(command: str, option: str) -> list[str]:
    """The words after `option` in a command line, up to the next option."""
    words = shlex.split(command)
    values = words[words.index(option) + 1:]
    return values[:next((i for i, w in enumerate(values) if w.startswith("-")), len(values))]


@pytest.fixture(scope="module")
def workflow_rules(tmp_path_factory) -> dict:
    result = subprocess.run([PYTHON, "-c", RULES, str(ROOT / "Snakefile"), str(tmp_path_factory.mktemp("rules"))],
                            env=run_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_every_rule_but_the_computing_jobs_is_in_the_report_rules(workflow_rules):
    rules = set(workflow_rules["rules"])
    assert COMPUTING <= rules
    assert sorted(rules - COMPUTING) == sorted(report_rules())


def test_the_report_rules_and_the_cheap_jobs_run_locally_training_on_the_cluster(workflow_rules):
    assert set(report_rules()) <= set(workflow_rules["local"])
    assert set(workflow_rules["local"]) == set(workflow_rules["rules"]) - TRAINING


def test_make_report_runs_and_forces_exactly_the_report_rules(tmp_path):
    result = subprocess.run(["make", "-n", "-C", str(ROOT), "report", f"WORKDIR={tmp_path}"], env=run_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    command = next(line for line in result.stdout.splitlines() if "--allowed-rules" in line)
    assert option_values(command, "--allowed-rules") == report_rules()
    assert "--forceall" in shlex.split(command)  # every job of the allowed rules (no rule is a target by itself)
    assert "--forcerun" not in command
    assert "report-rules.txt" in (ROOT / "Makefile").read_text()


def test_make_study_creates_its_working_directory_and_report_and_status_name_a_missing_one(tmp_path):
    """`make demo WORKDIR=/tmp/new` stopped at `cd: can't cd to /tmp/new`: the study creates its folder (here
    the config check then runs in it and names the bad file); report and status need a study's folder."""
    new = tmp_path / "new" / "study"
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  seeds: [0, 1\n")
    study = subprocess.run(["make", "-C", str(ROOT), "study", f"WORKDIR={new}", f"CONFIG={bad}"], env=run_env(),
                           capture_output=True, text=True, timeout=300)
    assert new.is_dir()
    assert study.returncode != 0 and f"config file {bad}, line 3, column 1: not valid YAML" in study.stderr
    for target in ("report", "status"):
        missing = tmp_path / target
        result = subprocess.run(["make", "-C", str(ROOT), target, f"WORKDIR={missing}"], env=run_env(),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode != 0 and not missing.exists()
        assert f"WORKDIR={missing}: no such folder (make study WORKDIR={missing} creates it" in result.stderr
        assert "can't cd" not in result.stderr
