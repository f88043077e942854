"""A job's start-up against `python -c "import torch"`, whole processes side by side (issue 31).

    .venv/bin/python benchmarks/startup.py --repeats 5          # CIFAR-10-sized synthetic data, width 8
    .venv/bin/python benchmarks/startup.py --data results/demo/../resources/data/cifar10-digits-....npz

Times, as new processes started from here and alternating round by round (so a busy machine slows each
alike), best of --repeats:
  torch       python -c "import torch": the floor every job pays
  train       a training job (optimbench.train's entry point, the spec the workflow passes) up to the end
              of its first optimizer step: imports, the data file read once, the model built once, the
              first step's one-off costs (the interpreter's exit not included)
  trial       the same job as a tuning trial (validation split, no test set, no model.pt)
  descent     a descent job (optimbench.descent's entry point; the demo's Adam on Rosenbrock: a job's first
              step is its first run's, and one run's spec is what an older descent job took) up to the end
              of its first optimizer step
and each one's excess over `torch` (issue 31's budget: 1.5 s for train, trial and descent). Prints the load
average before and after and the CPU's model name: the figures are only comparable on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from optimbench import split
from optimbench.formats import canonical

# A job that stops right after its first optimizer step, stamping the wall clock there.
FIRST_STEP = """
import os, sys, time
from optimbench import train
step = train.optimizer_step
def first_step(*args, **kwargs):
    step(*args, **kwargs)
    print(time.time(), flush=True)
    os._exit(0)
train.optimizer_step = first_step
train.main(sys.argv[1:])
"""
FIRST_DESCENT_STEP = FIRST_STEP.replace("train", "descent")
DESCENT_SPEC = {"function": "rosenbrock", "gradient": "autograd", "group": "optimizers", "h": 0.001,
                "kind": "optimizer", "kwargs": {}, "lr": None, "max_epochs": 300, "method": "Adam",
                "optimizer": {"class": "Adam", "demon": False, "kwargs": {}}, "start": [-1.5, 2.0], "tol": 0.0}


def synthetic_file(folder: Path, n_train: int, n_test: int) -> Path:
    """A canonical data file (formats.canonical) of random 32×32×3 images, CIFAR-10's size by default."""
    rng = np.random.default_rng(0)
    path = folder / "synthetic.npz"
    canonical.save_npz(path, {"x_train": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
                              "y_train": rng.integers(0, 10, n_train), "classes": np.array([str(i) for i in range(10)]),
                              "x_test": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
                              "y_test": rng.integers(0, 10, n_test)})
    return path


def commands(args, data: Path, folder: Path) -> dict[str, list[str]]:
    """Each timed process's command line."""
    spec = {"problem": "cifar10-resnet18", "dataset": "cifar10", "data": str(data), "model": "resnet18_cifar",
            "width": args.width, "epochs": 3, "batch_size": 64, "eval_batch_size": 500, "seed": 0,
            "optimizer_name": "SGD", "optimizer": {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}},
            "device": "cpu"}
    split_file = folder / "split.json"
    split.write_split(data, 300, 0, split_file)
    trial = {**spec, "validation": str(split_file), "test": "never"}
    job = [sys.executable, "-c", FIRST_STEP]
    return {"torch": [sys.executable, "-c", "import torch"],
            "train": [*job, "--spec", json.dumps(spec), "--out", str(folder / "train")],
            "trial": [*job, "--spec", json.dumps(trial), "--out", str(folder / "trial"), "--no-model"],
            "descent": [sys.executable, "-c", FIRST_DESCENT_STEP, "--spec", json.dumps(DESCENT_SPEC),
                        "--trajectory", str(folder / "trajectory.csv"), "--summary", str(folder / "summary.csv")]}


def seconds(command: list[str], pythonpath: str | None = None) -> float:
    """Wall seconds from starting the process to its first-step stamp (its last output line), or to its end."""
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    start = time.time()
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()
    end = time.time()
    try:
        return float(out[-1]) - start
    except (IndexError, ValueError):
        return end - start


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="rounds; each process's best is printed")
    parser.add_argument("--data", type=Path, help="a canonical CIFAR-format .npz (default: synthetic, CIFAR-10's size)")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--before", help="also time train, trial and descent with this package source folder "
                                         "first on PYTHONPATH (e.g. a checkout of the previous commit's src)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores; load average before {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = args.data or synthetic_file(folder, 50_000, 10_000)
        cmds = {name: (command, None) for name, command in commands(args, data, folder).items()}
        if args.before:
            cmds.update({f"{name} (before)": (command, args.before) for name, (command, _) in cmds.items()
                         if name != "torch"})
        times = {name: [] for name in cmds}
        for _ in range(args.repeats):
            for name, (command, pythonpath) in cmds.items():
                times[name].append(seconds(command, pythonpath))
    print(f"load average after {os.getloadavg()}; best of {args.repeats} rounds, side by side; "
          f"data {args.data or 'synthetic, 50,000 + 10,000 images'}")
    floor = min(times["torch"])
    for name, values in times.items():
        best = min(values)
        excess = "" if name == "torch" else f"   {best - floor:+6.2f} s over import torch"
        print(f"{name:17s} {best:6.2f} s (median {sorted(values)[len(values) // 2]:6.2f} s){excess}")


if __name__ == "__main__":
    main()
