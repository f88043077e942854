"""One epoch of every problem of a preset at full size, through the trainer, and the study's projected GPU-hours
(issue 31; benchmarks/gpu_check.sh runs it with throughput.py's trainer-against-article comparison).

    python benchmarks/gpu_check.py --out gpu-check                     # a CUDA device: the real check
    python benchmarks/gpu_check.py --dry --out /tmp/gpu-check-dry      # the CPU: tiny sizes, a smoke test

For each problem of --preset (default the Demon paper's), a canonical data file of random data at the data
set's real size (the real files need downloads; the model's cost does not depend on the pixels), and one
training run of the plan's own spec (its model at the paper's size, batch, optimizer, bf16/compile `auto`)
for --epochs epochs: images (or tokens) per second, seconds per epoch, peak GPU memory. Then the projected
GPU-hours of the preset's study and of `make study` (config.yaml alone): every planned run, tuning trial and
tuned run, epochs x the measured seconds per epoch of its problem, one run at a time. With --epochs 1 the epoch
includes compiling (CUDA graphs): an upper bound. Writes summary.json and the runs' metrics under --out.

Without CUDA it stops with an error unless --dry (CPU, sizes / 200, widths small, one epoch).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from optimbench import config as config_mod
from optimbench import plan as plan_mod
from optimbench import train
from optimbench.formats import canonical

ROOT = Path(__file__).resolve().parents[1]
# The real data sets' sizes (train, test) and shapes (H, W, C) or token counts (train, valid, test), vocabulary.
IMAGES = {"cifar10": (50_000, 10_000, (32, 32, 3), 10), "cifar100": (50_000, 10_000, (32, 32, 3), 100),
          "stl10": (5_000, 8_000, (96, 96, 3), 10), "fashion_mnist": (60_000, 10_000, (28, 28, 1), 10),
          "mnist": (60_000, 10_000, (28, 28, 1), 10)}
TOKENS = {"ptb": ((929_589, 73_760, 82_430), 10_000)}


def synthetic_data(dataset: str, path: Path, scale: float) -> Path:
    """A canonical .npz of random data at `scale` x the data set's real size."""
    rng = np.random.default_rng(0)
    if dataset in TOKENS:
        counts, vocab = TOKENS[dataset]
        arrays = {f"tokens_{split}": rng.integers(0, vocab, max(int(n * scale), 400))
                  for split, n in zip(("train", "valid", "test"), counts)}
        arrays["vocab"] = np.array([f"w{i}" for i in range(vocab)])
    else:
        n_train, n_test, shape, classes = IMAGES[dataset]
        n_train, n_test = max(int(n_train * scale), 128), max(int(n_test * scale), 64)
        arrays = {"x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
                  "y_train": rng.integers(0, classes, n_train), "classes": np.array([str(i) for i in range(classes)]),
                  "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
                  "y_test": rng.integers(0, classes, n_test)}
    canonical.save_npz(path, arrays)
    return path


def study_plan(preset: str | None):
    files = [ROOT / "config.yaml"] + ([ROOT / "config" / "presets" / f"{preset}.yaml"] if preset else [])
    return plan_mod.plan(config_mod.load([str(f) for f in files]))


def all_runs(plan) -> list:
    """Every training job of the plan: planned runs, tuning trials, tuned runs (what the projection counts)."""
    tune = plan.tune
    return [*plan.train_runs, *(tune.trials if tune else []), *(getattr(tune, "finals", []) if tune else [])]


def one_epoch(problem: str, spec: dict, data: Path, out: Path, args) -> dict:
    """Train the problem's first planned spec on `data` for args.epochs epochs; its speed and peak memory."""
    spec = {**spec, "data": str(data), "epochs": args.epochs, "device": "cpu" if args.dry else "cuda",
            "train_subset": None, "test_subset": None}
    if args.dry:
        spec = {**spec, "width": 8 if problem != "fmnist-capsnet" else 16}
    if torch.cuda.is_available() and not args.dry:
        torch.cuda.reset_peak_memory_stats()
    tic = time.perf_counter()
    rows = train.run(spec, out / problem, threads=2, save_model=False, as_frame=False)
    last = rows[-1]
    return {"problem": problem, "model": spec["model"], "width": spec["width"], "batch_size": spec["batch_size"],
            "epoch_seconds": last["epoch_seconds"], "eval_seconds": last["eval_seconds"],
            "samples_per_second": last["samples_per_second"], "wall_seconds": time.perf_counter() - tic,
            "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if not args.dry else None,
            "run": json.loads((out / problem / "run.json").read_text())}


def projected_hours(plan, seconds_per_epoch: dict) -> tuple[float, list[str]]:
    """GPU-hours of every training job of the plan, one at a time; the problems it could not project."""
    total, missing = 0.0, set()
    for run in all_runs(plan):
        if run.problem not in seconds_per_epoch:
            missing.add(run.problem)
            continue
        total += run.spec["epochs"] * seconds_per_epoch[run.problem]
    return total / 3600, sorted(missing)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("gpu-check"))
    parser.add_argument("--preset", default="demon-paper")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--problems", nargs="*", help="a subset of the preset's problems")
    parser.add_argument("--dry", action="store_true", help="CPU smoke test: sizes / 200, small widths")
    args = parser.parse_args(argv)
    if not args.dry and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device (torch.cuda.is_available() is False); this check measures a GPU. "
                 "Run it on a GPU machine, or with --dry for a CPU smoke test of the script.")
    scale = 1 / 200 if args.dry else 1.0
    args.out.mkdir(parents=True, exist_ok=True)
    device = "cpu (dry run)" if args.dry else torch.cuda.get_device_name()
    print(f"device: {device}; torch {torch.__version__}; preset {args.preset}; {args.epochs} epoch(s) per problem")
    preset, study = study_plan(args.preset), study_plan(None)
    results, seconds = [], {}
    for problem in args.problems or list(preset.problems):
        run = next(r for r in preset.train_runs if r.problem == problem)
        data = synthetic_data(run.dataset, args.out / f"{run.dataset}.npz", scale)
        result = one_epoch(problem, run.spec, data, args.out / "runs", args)
        results.append(result)
        seconds[problem] = result["epoch_seconds"] + result["eval_seconds"]
        memory = f"{result['peak_gpu_gib']:.2f} GiB" if result["peak_gpu_gib"] is not None else "n/a (CPU)"
        print(f"{problem:18s} {result['model']:10s} width {result['width']}  {result['samples_per_second']:10.0f} "
              f"samples/s  epoch {result['epoch_seconds']:7.1f} s + eval {result['eval_seconds']:5.1f} s  "
              f"peak memory {memory}  (compile: {result['run'].get('compile_mode')}, bf16 {result['run']['bf16']})")
    # `make study`'s problem at its own model (config.yaml's resnet18_article): measured when it differs.
    for problem in study.problems:
        if problem not in seconds or next(r for r in study.train_runs if r.problem == problem).spec["model"] != \
                next(r for r in preset.train_runs if r.problem == problem).spec["model"]:
            run = next(r for r in study.train_runs if r.problem == problem)
            data = synthetic_data(run.dataset, args.out / f"{run.dataset}.npz", scale)
            result = one_epoch(problem, run.spec, data, args.out / "runs-study", args)
            seconds[f"study:{problem}"] = result["epoch_seconds"] + result["eval_seconds"]
            print(f"make study: {problem} {result['model']} width {result['width']}: "
                  f"{result['samples_per_second']:.0f} samples/s, epoch {result['epoch_seconds']:.1f} s")
    preset_hours, preset_missing = projected_hours(preset, seconds)
    study_seconds = {p: seconds.get(f"study:{p}", seconds.get(p)) for p in study.problems}
    study_hours, _ = projected_hours(study, {p: s for p, s in study_seconds.items() if s is not None})
    note = " (epoch 1 includes compiling: an upper bound)" if args.epochs == 1 else ""
    print(f"projected GPU-hours, one run at a time{note}: {args.preset} {preset_hours:.1f} h over "
          f"{len(all_runs(preset))} training jobs" + (f" (not projected: {preset_missing})" if preset_missing else "")
          + f"; make study {study_hours:.1f} h over {len(all_runs(study))} training jobs")
    summary = {"device": device, "epochs": args.epochs, "problems": [{k: v for k, v in r.items() if k != "run"}
                                                                     for r in results],
               "projected_gpu_hours": {args.preset: preset_hours, "study": study_hours}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
