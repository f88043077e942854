"""Peak host memory of a training job of each Demon-paper problem at its real data set size (issue 29.2):
what `Problem.mem_mb`'s defaults are derived from. Never run as a test.

Per problem, in a fresh process: random data in the canonical format at the published sizes (CIFAR
50,000/10,000 at 32×32×3, STL-10 5,000/8,000 at 96×96×3, (Fashion-)MNIST 60,000/10,000 at 28×28, PTB's
929,589/73,760/82,430 tokens), then the trainer's own steps on the CPU: load the data (optimbench.device_data:
the .npz arrays, the N×C×H×W copy, input statistics), build the model and optimizer (Adam), --steps training
steps at the problem's batch size, one evaluation batch. Printed: the peak resident set (ru_maxrss) after each
phase.

    .venv/bin/python benchmarks/peak_memory.py --eval-batch 100 [--problems cifar10-resnet18 ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from optimbench import formats
from optimbench import problems as registry
from optimbench.formats import canonical

BATCH = {"ptb-lstm": 20, "mnist-vae": 100}  # the demon-paper preset's own batch sizes; 64 elsewhere


def write_data(problem: str, folder: Path) -> Path:
    """A canonical .npz of random data at the problem's published sizes."""
    p = registry.get(problem)
    rng = np.random.default_rng(0)
    path = folder / f"{p.dataset}.npz"
    if p.inputs == "tokens":
        sizes = formats.PUBLISHED_TOKENS[p.dataset]
        arrays = {f"tokens_{split}": rng.integers(0, 10_000, n, dtype=np.int64)
                  for split, n in zip(("train", "valid", "test"), sizes)}
        arrays["vocab"] = np.array([f"w{i}" for i in range(10_000)])
    else:
        n_train, n_test = formats.PUBLISHED_SIZES[p.dataset]
        shape = {"stl10": (96, 96, 3), "mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1)}.get(p.dataset, (32, 32, 3))
        classes = formats.CLASSES[p.dataset]
        arrays = {"x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
                  "y_train": rng.integers(0, classes, n_train), "x_test": rng.integers(0, 256, (n_test, *shape),
                                                                                        dtype=np.uint8),
                  "y_test": rng.integers(0, classes, n_test), "classes": np.array([str(c) for c in range(classes)])}
    canonical.save_npz(path, arrays)
    return path


def measure(problem: str, data: str, eval_batch: int, steps: int = 2) -> dict:
    """The phases' peaks (MB) of one problem, in this process (call it in a fresh one)."""
    import itertools

    import torch

    from optimbench import device_data, memory, train

    torch.set_num_threads(1)
    peaks = {"imports": memory.peak_host_mb()}
    p = registry.get(problem)
    spec = {"problem": problem, "data": data, "model": p.model if p.model != "resnet18_cifar" else "resnet18_cifar",
            "width": None, "epochs": 1, "batch_size": BATCH.get(problem, 64), "eval_batch_size": eval_batch,
            "seed": 0, "optimizer": {"class": "Adam"}, "device": "cpu", "bf16": "off"}
    device = torch.device("cpu")
    data_set = device_data.load_data(spec, p, device)
    peaks["data"] = memory.peak_host_mb()
    training = train.build_training(spec, device, data_set, 10)
    peaks["model"] = memory.peak_host_mb()
    for _ in itertools.islice(train.train_epoch(p, training.forward, training.optimizer, training.steppers,
                                                data_set.train, training.normalize, spec["batch_size"], training.gen,
                                                training.autocast), steps):
        pass
    peaks["train_steps"] = memory.peak_host_mb()
    model = training.forward.eval()
    with torch.no_grad():
        inputs, targets = next(device_data.batches(p, data_set.test, training.normalize, eval_batch))
        train.run_model(p.task, model, inputs, targets, None)
    peaks["eval_batch"] = memory.peak_host_mb()
    peaks["train_bytes_mb"] = sum(getattr(d, "x", getattr(d, "tokens", None)).nbytes
                                  for d in (data_set.train, data_set.test)) / 2**20
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="*", default=list(registry.DEMON_PAPER))
    parser.add_argument("--eval-batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=2, help="training steps at the problem's batch size")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one problem, print JSON
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.data, args.eval_batch, args.steps)))
        return
    with tempfile.TemporaryDirectory() as folder:
        for problem in args.problems:
            data = write_data(problem, Path(folder))
            out = subprocess.run([sys.executable, __file__, "--one", problem, "--data", str(data),
                                  "--eval-batch", str(args.eval_batch), "--steps", str(args.steps)],
                                 capture_output=True, text=True, check=True)
            peaks = json.loads(out.stdout.strip().splitlines()[-1])
            print(problem, " ".join(f"{k}={v:.0f}" for k, v in peaks.items()), flush=True)
            data.unlink()


if __name__ == "__main__":
    main()
