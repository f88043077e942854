"""envs/*.yaml (for --sdm conda) stay in step with pyproject.toml."""

import tomllib

import yaml

from helpers import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
ENVS = {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "envs").glob("*.yaml"))}


def pip_requirements(env: dict) -> list[str]:
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [r for r in pip if not r.startswith("-e")]


def test_every_env_pins_exactly_what_pyproject_pins():
    for name, env in ENVS.items():
        for requirement in pip_requirements(env):
            assert requirement in PYPROJECT, f"envs/{name}: {requirement!r} differs from pyproject.toml"
        assert "python=3.11" in env["dependencies"]


def test_every_runtime_dependency_is_in_some_env():
    in_envs = {r for env in ENVS.values() for r in pip_requirements(env)}
    # used by the Snakefile, not by jobs
    workflow_only = {r for r in PYPROJECT
                     if r.split(">")[0].split("=")[0] in ("snakemake", "snakemake-executor-plugin-slurm", "jsonschema")}
    assert set(PYPROJECT) - workflow_only - in_envs == set()


def test_every_rule_names_an_existing_env():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for line in smk.read_text().splitlines():
            if line.strip().startswith('"../../envs/'):
                assert (ROOT / "workflow" / "rules" / line.strip().strip('"')).resolve().exists(), line
