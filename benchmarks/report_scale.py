"""How status, aggregation, figures and the report grow with a study (issue 38), on synthetic finished runs
(benchmarks/synthetic_runs.py: the trainer's files in the real layout) of 2 problems × N SGD variants × 10
seeds, at each size given:

    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/report_scale.py --runs 200 1000 5000

Per size: the plan's check and cache (`python -m optimbench.plan --check`, what `make study` runs first);
`make status` (python -m optimbench.status) while the study runs (half of the runs finished, a tenth started,
the plan file not yet written: it reads the cached plan), best of 3; then, every run finished, each stage as
its rule runs it (scripts/aggregate.py train and descent, scripts/figures.py train and descent,
scripts/report.py): wall-clock, CPU seconds and peak memory (GNU time's maximum resident set), and the report's size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from large_study import large_config
from synthetic_runs import write_runs

from optimbench.config import load_yaml_files, validate
from optimbench.plan import cache_file, cached_plan, write_plan

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall-clock seconds, CPU seconds, peak resident MB) of a command run under GNU time, which must
    succeed."""
    out = cwd / "time.txt"
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(out), *cmd], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    peak, user, system = out.read_text().split()[-3:]
    return seconds, float(user) + float(system), int(peak) / 1024


def measure(runs: int, root: Path, epochs: int, status_only: bool = False) -> dict:
    workdir = root / f"study-{runs}"
    workdir.mkdir(parents=True, exist_ok=True)
    override = workdir / "large.yaml"
    override.write_text(yaml.safe_dump(large_config(runs, epochs=epochs), sort_keys=False))
    configs = [str(ROOT / "config.yaml"), str(override)]
    py = sys.executable
    found = {"plan check": timed([py, "-m", "optimbench.plan", "--check", *configs], workdir)}
    config = validate(load_yaml_files(configs), build=False)
    plan, _ = cached_plan(config, cache_file(config, workdir))
    write_runs(plan, workdir, finished=0.5, started=0.1)
    status = [timed([py, "-m", "optimbench.status", *configs, "--brief"], workdir) for _ in range(3)]
    found["status (running)"] = min(status)
    if status_only:
        return found
    write_runs(plan, workdir)
    results = workdir / plan.results_dir
    write_plan(plan.to_json(), results / "plan.json")
    tables, figures = results / "tables", results / "figures"
    stages = {
        "aggregate train": [py, str(SCRIPTS / "aggregate.py"), "train", "--plan", str(results / "plan.json"),
                            "--out", str(tables)],
        "aggregate descent": [py, str(SCRIPTS / "aggregate.py"), "descent", "--plan", str(results / "plan.json"),
                              "--out", str(tables)],
        "figures train": [py, str(SCRIPTS / "figures.py"), "train", "--plan", str(results / "plan.json"),
                          "--tables", str(tables), "--out", str(figures / "train")],
        "figures descent": [py, str(SCRIPTS / "figures.py"), "descent", "--plan", str(results / "plan.json"),
                            "--out", str(figures / "descent")],
        "report": [py, str(SCRIPTS / "report.py"), "--notebook", str(ROOT / "report" / "study.ipynb"),
                   "--executed", str(results / "report" / "study.ipynb"),
                   "--html", str(results / "report" / "study.html"),
                   "--parameters", json.dumps({"plan_file": str(results / "plan.json"), "tables_dir": str(tables),
                                               "figures_dir": str(figures), "report_dir": str(results / "report")})],
    }
    for name, cmd in stages.items():
        found[name] = timed(cmd, workdir)
    found["report MB"] = (results / "report" / "study.html").stat().st_size / 1e6
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every synthetic run")
    parser.add_argument("--root", type=Path)
    parser.add_argument("--status-only", action="store_true", help="the plan check and status only")
    args = parser.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="report-scale-"))
    print(f"folders under {root}; load average before: {os.getloadavg()[0]:.2f}")
    found = {runs: measure(runs, root, args.epochs, args.status_only) for runs in args.runs}
    print(f"{'stage':20}" + "".join(f"{runs:>27,} runs" for runs in args.runs))
    for stage in found[args.runs[0]]:
        cells = [found[runs][stage] for runs in args.runs]
        if stage == "report MB":
            print(f"{'report size':20}" + "".join(f"{c:>29.1f} MB" for c in cells))
        else:
            print(f"{stage:20}" + "".join(f"{s:>7.1f} s {c:>6.1f} CPU s {m:>5.0f} MB" for s, c, m in cells))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
