"""Samples/s of optimbench's trainer against a faithful article-style loop, same model, data and device.

    python benchmarks/throughput.py --model resnet18_cifar --width 8 --steps 40 --processes 2   # CPU, here
    python benchmarks/throughput.py --model resnet18_cifar --width 64 --steps 200 --processes 2 4 8 \
        --process-threads 2                                                                     # on a GPU

(a) trainer: the project's own (train.build_training + train.train_epoch): uint8 data resident on the
    device, flips/crops there, no host sync inside the loop, channels-last, and on CUDA bf16 autocast
    and CUDA graphs (torch.compile mode reduce-overhead), as the trainer's auto settings choose.
    On the CPU it runs twice, fp32 and bf16 autocast side by side (--bf16 off on), and names the one
    `train.bf16: auto` picks for this CPU, and why (optimbench.hardware).
    --processes N also times N trainer processes side by side (N runs sharing one GPU, or 1-thread
    runs sharing the CPU's cores): their total samples/s picks train.runs_per_gpu.
(b) article: torchvision Dataset of PIL images + transforms in the main process, DataLoader(batch 64,
    shuffle), `.cpu().numpy()` of loss and predictions at every step (as the article's loop does).
(c) start-up: what every training job pays besides its steps (interpreter, imports, data load, model
    build, and the interpreter's exit), timed as a whole new process from outside and split into
    stages by the process's own clock stamps (--startup-repeats, median), on a canonical data file
    (--data) or a synthetic one of CIFAR-10's size.
Prints samples/s of each, their ratio, model FLOPs per image (torch.utils.flop_counter) and, given the
device's peak (--peak-tflops, known for some GPUs), the fraction of peak reached; then the start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from optimbench import device_data, hardware, train
from optimbench.formats import canonical
from optimbench.resnet import build_model

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16 tensor-core peaks


def synthetic_arrays(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def trainer_spec(args, bf16: str = "auto") -> dict:
    """The trainer's settings for this benchmark: its auto choices (channels-last, CUDA graphs on CUDA) and `bf16`."""
    return {"problem": "cifar10-resnet18", "model": args.model, "width": args.width, "seed": 0,
            "channels_last": "auto", "bf16": bf16, "compile": args.compile,
            "optimizer": {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}}}


def precisions(args, device) -> list[str]:
    """The trainer's bf16 settings to time: --bf16, else fp32 and bf16 side by side on the CPU, auto on CUDA."""
    return args.bf16 or (["off", "on"] if device.type == "cpu" else ["auto"])


def label(args, bf16: str, device) -> str:
    """The results' name of a trainer run: its precision, and whether auto chose it."""
    _, precision = train.layout_and_precision(trainer_spec(args, bf16), device)
    return f"trainer {'bf16' if precision.on else 'fp32'}" + (" (auto)" if bf16 == "auto" else "")


def trainer_steps(args, device, x, y, barrier=None, bf16: str = "auto") -> tuple[float, float]:
    """Warm up (5 steps, compiling if configured), wait at the barrier, then time args.steps steps of the
    project's trainer: (start, end) on the wall clock."""
    data = device_data.DeviceData(x, y, device)
    dataset = device_data.Dataset(data, None, data, {"num_classes": 10}, (device_data.MEAN, device_data.STD))
    training = train.build_training(trainer_spec(args, bf16), device, dataset, total_steps=10**9)
    done, start = 0, None
    while True:
        for _ in train.train_epoch(training.problem, training.forward, training.optimizer, training.steppers, data,
                                   training.normalize, args.batch_size, training.gen, training.autocast):
            done += 1
            if done == 5:  # warm-up steps excluded
                sync(device)
                if barrier is not None:
                    barrier.wait()
                start = time.time()
            if done == args.steps + 5:
                sync(device)
                return start, time.time()


def _worker(args, barrier, results, bf16) -> None:
    torch.set_num_threads(args.process_threads)
    device = train.resolve_device(args.device)
    x, y = synthetic_arrays(args.images)
    results.put(trainer_steps(args, device, x, y, barrier, bf16))


def side_by_side(args, processes: int, bf16: str = "auto") -> float:
    """Total samples/s of `processes` trainer processes running at once (one GPU or the CPU's cores shared)."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(args, barrier, results, bf16)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    spans = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return processes * args.steps * args.batch_size / (max(e for _, e in spans) - min(s for s, _ in spans))


class ArticleDataset(torch.utils.data.Dataset):
    """PIL images through torchvision transforms, one at a time (the article's CIFAR10 dataset)."""

    def __init__(self, x, y):
        import torchvision.transforms as T

        self.images, self.labels = [Image.fromarray(img) for img in x], y
        self.transform = T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(32, padding=4), T.ToTensor(),
                                    T.Normalize([m / 255 for m in device_data.MEAN],
                                                [s / 255 for s in device_data.STD])])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def article_throughput(model, x, y, device, batch_size, steps) -> float:
    loader = torch.utils.data.DataLoader(ArticleDataset(x, y), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    done, tic, correct = 0, None, 0
    while done < steps + 5:
        for inputs, targets in loader:
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = F.cross_entropy(outputs, targets)
            loss.backward()
            optimizer.step()
            _ = loss.cpu().detach().numpy()  # the article's per-step host syncs
            correct += (outputs.argmax(1).cpu().numpy() == targets.cpu().numpy()).sum()
            done += 1
            if done == 5:
                tic = time.perf_counter()
            if done == steps + 5:
                break
    return steps * batch_size / (time.perf_counter() - tic)


def flops_per_image(model, device, channels_last) -> float:
    """Forward + backward FLOPs of one training image (FlopCounterMode counts matmuls and convolutions)."""
    x = torch.randn(8, 3, 32, 32, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(8, dtype=torch.long, device=device)).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 8


# ---------------------------------------------------------------- (c) start-up cost of one job
# A training job's start-up in a new interpreter, stamping the wall clock after each stage.
STARTUP_JOB = """
import time
stamps = [time.time()]
import json, sys
from optimbench import device_data, train
stamps.append(time.time())
spec = json.loads(sys.argv[1])
device = train.resolve_device(spec["device"])
dataset = device_data.load_data(spec, train.get_problem(spec), device)
stamps.append(time.time())
train.build_training(spec, device, dataset, total_steps=1)
stamps.append(time.time())
print(json.dumps(stamps))
"""
STARTUP_STAGES = ("interpreter", "imports", "data load", "model build", "exit")


def canonical_file(folder: str, n_train: int, n_test: int) -> str:
    """A canonical data file (optimbench.formats.canonical.save_npz format) of random images,
    CIFAR-10's size by default."""
    rng = np.random.default_rng(0)
    path = f"{folder}/synthetic.npz"
    canonical.save_npz(path, {"x_train": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
                             "y_train": rng.integers(0, 10, n_train), "classes": np.array([str(i) for i in range(10)]),
                             "x_test": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
                             "y_test": rng.integers(0, 10, n_test)})
    return path


def startup_seconds(args, data_path: str) -> dict[str, float]:
    """Median wall seconds of each start-up stage and of the whole process (`total`), over new processes.
    The process is timed from outside; its stamps split that time into stages."""
    spec = {**trainer_spec(args), "data": data_path, "device": args.device, "train_subset": None, "test_subset": None}
    runs = []
    for _ in range(args.startup_repeats):
        start = time.time()
        stamps = json.loads(subprocess.run([sys.executable, "-c", STARTUP_JOB, json.dumps(spec)], check=True,
                                           capture_output=True, text=True).stdout)
        bounds = [start, *stamps, time.time()]
        runs.append([b - a for a, b in zip(bounds, bounds[1:])] + [bounds[-1] - start])
    return {name: statistics.median(run[k] for run in runs) for k, name in enumerate([*STARTUP_STAGES, "total"])}


def print_startup(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = args.data or canonical_file(folder, 50_000, 10_000)
        seconds = startup_seconds(args, path)
    print(f"start-up of one job, timed as a whole process (median of {args.startup_repeats}; "
          f"data {args.data or 'synthetic, 50,000 + 10,000 images'}): {seconds.pop('total'):.2f} s")
    for stage, value in seconds.items():
        print(f"  {stage:12s} {value:6.2f} s")


def throughputs(args, device, x, y) -> dict[str, float]:
    """Samples/s of the article loop, the trainer in each precision, and N trainer processes side by side."""
    torch.manual_seed(0)
    results = {"article": article_throughput(build_model(args.model, args.width, 10).to(device), x, y, device,
                                             args.batch_size, args.steps)}
    for bf16 in precisions(args, device):
        start, end = trainer_steps(args, device, x, y, bf16=bf16)
        results[label(args, bf16, device)] = args.steps * args.batch_size / (end - start)
    for n in args.processes:
        for bf16 in precisions(args, device) if n > 1 else []:
            results[f"{label(args, bf16, device)} x{n} processes"] = side_by_side(args, n, bf16)
    return results


def print_auto_choice(args, device) -> None:
    """What `auto` picks for this device and model, and why."""
    layout, precision = train.layout_and_precision(trainer_spec(args), device)
    if device.type == "cpu":
        summary = hardware.cpu_summary(hardware.cpu_flags())
        print(f"cpu: torch capability {summary['capability']}, native bf16: {summary['native_bf16'] or 'none'}")
    for name, choice in (("bf16", precision), ("channels-last", layout)):
        print(f"{name}: {'on' if choice.on else 'off'} ({choice.reason})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18_cifar")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="timed steps (after 5 warm-up steps)")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the single-process measurements")
    parser.add_argument("--processes", type=int, nargs="*", default=[],
                        help="also time N trainer processes side by side (e.g. 2 4 8: the best runs_per_gpu)")
    parser.add_argument("--process-threads", type=int, default=1, help="CPU threads of each side-by-side process")
    parser.add_argument("--compile", default="auto", choices=["auto", "off", "on", "reduce-overhead", "max-autotune"],
                        help="the trainer's torch.compile mode (auto: CUDA graphs on CUDA, eager on the CPU)")
    parser.add_argument("--bf16", nargs="*", choices=["auto", "on", "off"], default=None,
                        help="the trainer's bf16 settings to time (default: off and on on the CPU, auto on CUDA)")
    parser.add_argument("--startup-repeats", type=int, default=3, help="start-up timings per stage (0: skip them)")
    parser.add_argument("--data", default=None, help="a canonical .npz for the start-up timing (default: synthetic)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for the fraction")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = train.resolve_device(args.device)
    x, y = synthetic_arrays(args.images)
    results = throughputs(args, device, x, y)
    flops = flops_per_image(build_model(args.model, args.width, 10).to(device), device, False)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} threads"
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in device_name), None)
    print(f"device: {device_name}; model {args.model} width {args.width}; batch {args.batch_size}; "
          f"{args.steps} timed steps")
    print_auto_choice(args, device)
    print(f"model: {flops / 1e9:.3f} GFLOP per training image (forward + backward)")
    for name, rate in results.items():
        line = f"{name:32s} {rate:10.1f} samples/s   {rate * flops / 1e12:8.3f} TFLOP/s"
        if peak:
            line += f"   {rate * flops / 1e12 / peak:6.1%} of {peak:g} TFLOP/s peak"
        print(line)
    for name, rate in results.items():
        if name != "article":
            print(f"ratio {name} / article: {rate / results['article']:.2f}x")
    if args.startup_repeats:
        print_startup(args)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
