"""A large study's config (issue 38): 2 problems × N SGD variants × 10 seeds, no descent and no tuning, on the
offline digits data, so `snakemake -n`, `make status` and a job's start-up can be timed at 200 … 50,000 runs
without a download.

    .venv/bin/python benchmarks/large_study.py 5000 /tmp/big/large.yaml   # then
    snakemake --snakefile Snakefile --directory /tmp/big --configfile /tmp/big/large.yaml -n

Each variant is torch's SGD at its own learning rate (`SGD-0001` …), so every run has its own result spec.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

PROBLEMS = ["digits-resnet18", "digits-vae"]
SEEDS = list(range(10))


def variants(runs: int) -> int:
    """How many SGD variants give `runs` runs (2 problems × 10 seeds each); `runs` must be a multiple of 20."""
    if runs <= 0 or runs % (len(PROBLEMS) * len(SEEDS)):
        raise ValueError(f"runs = {runs}: give a positive multiple of {len(PROBLEMS) * len(SEEDS)}")
    return runs // (len(PROBLEMS) * len(SEEDS))


def large_config(runs: int, results_dir: str = "results/large", epochs: int = 1) -> dict:
    """The override config of a study of `runs` training runs (on top of config.yaml), `epochs` each."""
    names = [f"SGD-{k:04d}" for k in range(variants(runs))]
    return {
        "results_dir": results_dir,
        "problems": PROBLEMS,
        "problem_settings": {"digits-resnet18": {"target": 0.5}, "digits-vae": {"width": 64}},
        "data": {"source": "digits"},
        "train": {"model": "resnet18_cifar", "width": 8, "epochs": epochs, "seeds": SEEDS, "optimizers": names,
                  "gpus": 0, "threads": 1, "mem_mb": 2000, "minutes_per_epoch": 1},
        "optimizers": {name: {"class": "SGD", "kwargs": {"lr": round(0.001 * (1 + k), 6), "momentum": 0.9}}
                       for k, name in enumerate(names)},
        "descent": {"groups": []},
        "tune": {"enabled": False},
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=int, help="training runs (a multiple of 20)")
    parser.add_argument("out", type=Path, help="the config file to write")
    parser.add_argument("--results-dir", default="results/large")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(yaml.safe_dump(large_config(args.runs, args.results_dir, args.epochs), sort_keys=False))
    print(f"{args.out}: {args.runs} runs, {variants(args.runs)} SGD variants")


if __name__ == "__main__":
    main()
