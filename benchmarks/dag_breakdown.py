"""Where a Snakemake run's wall-clock went (issue 31): job-seconds per rule, and for training jobs their
start-up and compute, from Snakemake's log and the runs' own records.

    snakemake ... 2> snake.err    # then:
    .venv/bin/python benchmarks/dag_breakdown.py snake.err --results results/demo

Reads each job's start ("[date]" then "rule X:" ... "jobid: N") and end ("[date]" then "Finished jobid: N")
from the log (1 s resolution), and from every run.json under --results its `startup_seconds` and from its
metrics.csv the training compute (epoch_seconds + eval_seconds, as the cost table counts it). Prints the
DAG's wall-clock, job-seconds per rule (a rule's jobs run two at a time on 2 cores), and the training jobs'
job-seconds split into start-up, compute and the rest (writing files, the interpreter's exit).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
from collections import defaultdict
from pathlib import Path

STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


def job_spans(log: Path) -> dict[int, tuple[str, float, float]]:
    """{jobid: (rule, start, end)} in seconds since the log's first stamp."""
    stamp, first, rule, started, spans = None, None, None, {}, {}
    for line in log.read_text().splitlines():
        match = STAMP.match(line.strip())
        if match:
            stamp = dt.datetime.strptime(" ".join(match.group(1).split()), "%a %b %d %H:%M:%S %Y").timestamp()
            first = first if first is not None else stamp
            continue
        line = line.strip()
        if re.match(r"^(local)?rule \w+:$", line):
            rule = line.split()[-1].rstrip(":")
        elif line.startswith("jobid:") and rule:
            started[int(line.split()[1])] = (rule, stamp - first)
            rule = None
        elif line.startswith("Finished jobid:"):
            jobid = int(line.split()[2])
            if jobid in started:
                spans[jobid] = (*started[jobid], stamp - first)
    return spans


def training_records(results: Path) -> tuple[float, float, int]:
    """(sum of startup_seconds, sum of epoch + eval seconds, runs) over the run.json/metrics.csv under results."""
    startup = compute = 0.0
    runs = 0
    for run_json in results.rglob("run.json"):
        startup += json.loads(run_json.read_text()).get("startup_seconds") or 0.0
        with open(run_json.parent / "metrics.csv") as fh:
            compute += sum(float(r["epoch_seconds"]) + float(r["eval_seconds"] or 0) for r in csv.DictReader(fh))
        runs += 1
    return startup, compute, runs


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", type=Path, help="Snakemake's log (its stderr, or .snakemake/log/*.log)")
    parser.add_argument("--results", type=Path, help="the study's results_dir (run.json, metrics.csv)")
    args = parser.parse_args(argv)
    spans = job_spans(args.log)
    wall = max(end for _, _, end in spans.values())
    per_rule = defaultdict(lambda: [0, 0.0])
    for rule, start, end in spans.values():
        per_rule[rule][0] += 1
        per_rule[rule][1] += end - start
    print(f"DAG wall-clock {wall / 60:.1f} min ({wall:.0f} s), {len(spans)} jobs finished; job-seconds per rule:")
    for rule, (count, seconds) in sorted(per_rule.items(), key=lambda kv: -kv[1][1]):
        print(f"  {rule:18s} {count:4d} jobs {seconds:8.0f} s   {seconds / count:6.1f} s per job")
    if args.results:
        startup, compute, runs = training_records(args.results)
        total = sum(per_rule[r][1] for r in ("train", "trial", "tuned_train"))
        rest = total - startup - compute
        print(f"training jobs (train, trial, tuned_train: {runs} runs): {total:.0f} job-seconds = start-up "
              f"{startup:.0f} s + compute {compute:.0f} s (the cost table's) + the rest {rest:.0f} s")


if __name__ == "__main__":
    main()
