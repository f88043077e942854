"""What planning a large study costs (issue 38): `snakemake -n` on the study's Snakefile against a bare Snakefile
(one rule, a wildcard path, a params lambda) with the same number of jobs, side by side, at two sizes.

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/dag_scale.py --runs 200 5000 --repeats 2

Per size and Snakefile it prints the CPU seconds (user + system: on a shared machine far steadier than the
wall-clock) of `snakemake -n --quiet` (the whole dry run), of
`snakemake --list-rules` (the parse alone: everything before the DAG), and, from the two sizes, the
fixed cost (the dry run's intercept) and the per-run cost (its slope), with the ratio of the study's per-run
cost to the bare Snakefile's. The study's first dry run at a size (cold) builds and checks the plan and
writes its cache (optimbench.plan.cached_plan); the others (warm) read it. Each figure is the best of
--repeats, the two Snakefiles measured alternately so that a machine's load falls on both alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from large_study import PROBLEMS, SEEDS, large_config, variants

ROOT = Path(__file__).resolve().parent.parent
BARE = '''
PROBLEMS = {problems!r}
OPTIMIZERS = [f"SGD-{{k:04d}}" for k in range({variants})]
SEEDS = {seeds!r}


rule all:
    input:
        expand("results/train/{{problem}}/{{optimizer}}/seed{{seed}}/metrics.csv", problem=PROBLEMS,
               optimizer=OPTIMIZERS, seed=SEEDS),


rule train:
    output:
        "results/train/{{problem}}/{{optimizer}}/seed{{seed}}/metrics.csv",
    params:
        spec=lambda wildcards: f"{{wildcards.problem}} {{wildcards.optimizer}} {{wildcards.seed}}",
    shell:
        "echo {{params.spec}} > {{output}}"
'''


def snakemake(snakefile: Path, workdir: Path, *args: str) -> float:
    """CPU seconds (user + system; they hardly depend on what else the machine runs, unlike the wall-clock)
    of one `snakemake` call (this interpreter's), which must succeed."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = usage.ru_utime + usage.ru_stime
    done = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory",
                           str(workdir), "--cores", "1", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{snakefile} in {workdir} failed:\n{done.stderr[-3000:]}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime - start


def prepare(runs: int, root: Path) -> tuple[Path, Path, Path]:
    """(study workdir, its config file, bare workdir with its Snakefile) for a study of `runs` runs."""
    study, bare = root / f"study-{runs}", root / f"bare-{runs}"
    study.mkdir(parents=True, exist_ok=True)
    bare.mkdir(parents=True, exist_ok=True)
    config = study / "large.yaml"
    config.write_text(yaml.safe_dump(large_config(runs), sort_keys=False))
    (bare / "Snakefile").write_text(BARE.format(problems=PROBLEMS, variants=variants(runs), seeds=SEEDS))
    return study, config, bare


def measure(runs: int, root: Path, repeats: int) -> dict:
    """{(snakefile, what): seconds} at one size: the study's cold dry run, then warm dry runs, parses."""
    study, config, bare = prepare(runs, root)
    ours = ROOT / "Snakefile"
    found = {("study", "cold"): snakemake(ours, study, "--configfile", str(config), "-n", "--quiet")}
    for what, args in (("dry run", ("-n", "--quiet")), ("parse", ("--list-rules",))):
        times = {"study": [], "bare": []}
        for _ in range(repeats):
            times["study"].append(snakemake(ours, study, "--configfile", str(config), *args))
            times["bare"].append(snakemake(bare / "Snakefile", bare, *args))
        found.update({(name, what): min(t) for name, t in times.items()})
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs=2, default=[200, 5000], help="the two sizes (multiples of 20)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--root", type=Path, help="where the studies are written (default: a temporary folder)")
    args = parser.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="dag-scale-"))
    print(f"CPU: {cpu_model()}; load average before: {os.getloadavg()[0]:.2f}; folders under {root}")
    small, large = args.runs
    found = {n: measure(n, root, args.repeats) for n in (small, large)}
    print(f"{'CPU seconds':24}" + "".join(f"{n:>12,} runs" for n in (small, large)))
    for key in [("study", "cold"), ("study", "dry run"), ("bare", "dry run"), ("study", "parse"), ("bare", "parse")]:
        print(f"{key[0] + ' ' + key[1]:24}" + "".join(f"{found[n][key]:>15.2f} s" for n in (small, large)))
    slope = {name: (found[large][name, "dry run"] - found[small][name, "dry run"]) / (large - small)
             for name in ("study", "bare")}
    for name in ("study", "bare"):
        fixed = found[small][name, "dry run"] - slope[name] * small
        print(f"{name}: fixed cost {fixed:.2f} CPU s (parse alone at {large:,}: {found[large][name, 'parse']:.2f} s), "
              f"per run {slope[name] * 1000:.2f} ms")
    print(f"per-run cost, study / bare: {slope['study'] / slope['bare']:.2f}x; "
          f"load average after: {os.getloadavg()[0]:.2f}")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
