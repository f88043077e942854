"""What a job pays before its first step because its study is large (issue 38): Snakemake re-parses the
Snakefile inside every job it submits (a SLURM job, a job's subprocess), as

    python -m snakemake --target-jobs train:problem=...,optimizer=...,seed=0 --allowed-rules train --mode remote ...

This times exactly that re-parse (with -n, so the trainer itself is not started) for one training job of a
study of each size, side by side and alternately, best of --repeats:

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/job_startup.py --runs 20 5000 --repeats 3

--snakefile and --src time another checkout (e.g. the code before issue 38) the same way.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from large_study import PROBLEMS, large_config

ROOT = Path(__file__).resolve().parent.parent


def job_parse(snakefile: Path, src: Path, workdir: Path, config: Path) -> tuple[float, float]:
    """(wall-clock, CPU) seconds of one job's re-parse (Snakemake in remote mode, one target job, dry run). The
    CPU seconds (user + system) hardly depend on what else the machine runs."""
    target = f"train:problem={PROBLEMS[0]},optimizer=SGD-0000,seed=0"
    env = {**os.environ, "PYTHONPATH": str(src)}
    start, used = time.perf_counter(), cpu_seconds()
    done = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory",
                           str(workdir), "--configfile", str(config), "--target-jobs", target, "--allowed-rules",
                           "train", "--mode", "remote", "--cores", "1", "-n", "--quiet"],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"the job's re-parse failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, cpu_seconds() - used


def cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[20, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--snakefile", type=Path, default=ROOT / "Snakefile")
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--root", type=Path)
    args = parser.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="job-startup-"))
    studies = {}
    for runs in args.runs:
        workdir = root / f"study-{runs}"
        workdir.mkdir(parents=True, exist_ok=True)
        studies[runs] = workdir, workdir / "large.yaml"
        studies[runs][1].write_text(yaml.safe_dump(large_config(runs), sort_keys=False))
    print(f"{args.snakefile} with {args.src}; load average before: {os.getloadavg()[0]:.2f}")
    times = {runs: [] for runs in args.runs}
    for _ in range(args.repeats):
        for runs, (workdir, config) in studies.items():
            times[runs].append(job_parse(args.snakefile, args.src, workdir, config))
    for runs, found in times.items():
        print(f"{runs:>7,} runs: a job's re-parse {min(w for w, _ in found):.2f} s wall, "
              f"{min(c for _, c in found):.2f} s CPU (best of {args.repeats}; all: "
              f"{', '.join(f'{w:.1f}/{c:.1f}' for w, c in found)})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
