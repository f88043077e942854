"""A job's start-up (issue 31): what a training or descent job imports, and metrics.csv written without pandas.

Start-up itself is timed by benchmarks/startup.py, not here: these tests check its causes, which hold on any
machine. A new process each (sys.modules of this test process holds whatever other tests imported).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from optimbench import io

# Tenths of seconds to seconds of every job's start-up each, and nothing a training job needs: torchvision,
# pandas, matplotlib, SciPy (scikit-learn imports it), and CUDA graphs' bookkeeping (an eager run never
# needs it; torch.compiler.cudagraph_mark_step_begin imports it). torch._dynamo (and the triton and sympy
# it imports) is not among them: torch imports it itself when the first optimizer is built (torch.optim's
# `_disable_dynamo` decorator), so every job pays it, whatever it imports.
HEAVY = ("torchvision", "pandas", "matplotlib", "scipy", "sklearn", "torch._inductor.cudagraph_trees")


def loaded_after(code: str, heavy=HEAVY) -> set[str]:
    """The modules of `heavy` (or their submodules) loaded after running `code` in a new interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    modules = json.loads(out.strip().splitlines()[-1])
    return {h for h in heavy for m in modules if m == h or m.startswith(h + ".")}


def test_the_training_entry_point_imports_nothing_heavy():
    # scripts/train.py imports optimbench.train, which imports the rest (device_data, checkpoints, problems,
    # resnet, paper_models, split, specs).
    assert loaded_after("import optimbench.train") == set()


def test_a_whole_descent_job_imports_nothing_heavy(tmp_path):
    # A job runs every run of a group on a function (here an article update, a tuned and a plain optimizer)
    # and writes its two tables without pandas (0.4 s of its start-up).
    common = {"group": "g", "function": "rosenbrock", "gradient": "autograd", "h": 1e-3, "tol": 0.0,
              "max_epochs": 5, "start": [-1.5, 2.0]}
    specs = [{**common, "method": "article-vanilla", "kind": "article", "lr": 1e-4},
             {**common, "method": "Adam", "kind": "optimizer", "optimizer": {"class": "Adam"}},
             {**common, "method": "SGD", "kind": "optimizer", "optimizer": {"class": "SGD"},
              "tune": {"trials": 2, "low": 1e-4, "high": 1e-3}}]
    argv = ["--spec", json.dumps(specs), "--trajectory", str(tmp_path / "t.csv"), "--summary", str(tmp_path / "s.csv")]
    assert loaded_after(f"from optimbench import descent\ndescent.main({argv!r})") == set()
    summary = pd.read_csv(tmp_path / "s.csv")
    assert summary["method"].tolist() == ["article-vanilla", "Adam", "SGD"] and summary["tuned"].tolist() == [
        False, False, True]
    assert pd.read_csv(tmp_path / "t.csv").groupby("method", sort=False).size().tolist() == [6, 6, 6]


@pytest.mark.parametrize("stage", ["tune", "aggregate", "plots", "render", "sections", "status"])
def test_the_stages_that_read_tables_import_no_torch(stage):
    # select, aggregate_*, figures_* and report (and the notebook, which calls sections) read the plan
    # through optimbench.runs: torch would be 1.5 s of each of their jobs, on the study's serial tail.
    assert loaded_after(f"import optimbench.{stage}", ("torch",)) == set()


@pytest.mark.parametrize("problem", ["cifar10-resnet18", "digits-vae"])
def test_a_whole_training_job_imports_nothing_heavy(tiny_spec, tmp_path, problem):
    # The job as the workflow runs it (train.main), to its end: the model, its steps, its evaluation,
    # metrics.csv and run.json; a VAE on CIFAR-format data is enough to build and step it.
    spec = {**tiny_spec, "epochs": 1, "problem": problem,
            "model": "resnet18_cifar" if problem == "cifar10-resnet18" else "vae", "width": 8}
    if problem == "digits-vae":
        pytest.importorskip("sklearn")
        from optimbench import formats

        formats.prepare("mnist", {"source": "digits", "digits": {"seed": 0, "test_fraction": 0.25}},
                        tmp_path / "digits.npz", tmp_path / "digits.json")
        spec = {**spec, "data": str(tmp_path / "digits.npz"), "dataset": "mnist", "train_subset": 128}
    code = (f"from optimbench import train\n"
            f"train.main(['--spec', {json.dumps(json.dumps(spec))}, '--out', {str(tmp_path / 'run')!r}])")
    assert loaded_after(code) == set()
    assert (tmp_path / "run" / "metrics.csv").exists()


def test_write_rows_writes_what_pandas_to_csv_writes(tmp_path):
    # A training job writes metrics.csv without pandas; aggregation reads it with pandas: same bytes.
    columns = ["epoch", "loss", "acc", "lr", "diverged", "note"]
    rows = [{"epoch": 1, "loss": 0.30000000000000004, "acc": np.float64(0.5), "lr": 1e-20, "diverged": False},
            {"epoch": np.int64(2), "loss": math.nan, "acc": math.inf, "lr": np.float32(0.1), "diverged": np.bool_(True),
             "note": "a, \"quoted\" word"},
            {"epoch": 3, "loss": -2.5e300, "acc": None, "lr": 3.0, "diverged": True, "note": None}]
    io.write_rows(tmp_path / "ours.csv", rows, columns)
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "ours.csv").read_text() == (tmp_path / "pandas.csv").read_text()
