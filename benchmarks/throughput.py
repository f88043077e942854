"""The trainer against its model's own bound (issue 31): images/s of the bare training step
(benchmarks/model_bound.py's loop: random data in memory, forward, backward, SGD step) and of the project's
trainer (train.build_training + train.train_epoch: data on the device, augmentation, metric sums), each in the
precision, memory layout and compile mode that `auto` picks on this device, at widths 8 and 64, and the
trainer's share of the bound (goal: at least 0.9 on the CPU).

    .venv/bin/python benchmarks/throughput.py --widths 8 64 --steps 20 --rounds 3      # CPU, here
    .venv/bin/python benchmarks/throughput.py --widths 64 --steps 200 --article --processes 2 4   # a GPU

Each round times the bound and the trainer one after the other; the best round of each is printed, so a busy
machine slows both alike (print `uptime` and `lscpu` with the figures). Also:
  --break-even  (the CPU, where `auto` runs eagerly) the bare step compiled: the seconds compiling costs,
                the seconds it saves per step, and the steps after which it pays (train.compile_mode's rule)
  --article     the article-style loop (torchvision Dataset of PIL images + transforms, DataLoader(batch 64,
                shuffle), a host sync of loss and predictions every step) on the same model and data
  --processes N N trainer processes side by side (runs sharing one GPU): their total picks train.runs_per_gpu
On CUDA it prints the peak GPU memory of the trainer, and the fraction of the device's peak FLOP/s given
--peak-tflops (known for some GPUs). A job's start-up is benchmarks/startup.py's.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import time

import model_bound  # benchmarks/model_bound.py, beside this script
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from optimbench import device_data, hardware, train
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
    device = hardware.resolve_device(args.device)
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


def best_rates(args, device, x, y) -> dict[str, float]:
    """Best images/s over args.rounds rounds of: the bare step and the trainer (auto's settings), and with
    --article the article loop; each round runs them one after the other."""
    layout, precision = train.layout_and_precision(trainer_spec(args), device)
    compiled = train.compile_mode(args.compile, device) is not None
    rates: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        _, bound = model_bound.timed_steps(args.width, args.batch_size, args.steps, precision.on, layout.on,
                                           compiled, str(device))
        rates.setdefault("bare step", []).append(bound)
        start, end = trainer_steps(args, device, x, y, bf16="auto")
        rates.setdefault("trainer", []).append(args.steps * args.batch_size / (end - start))
        if args.article:
            torch.manual_seed(0)
            model = build_model(args.model, args.width, 10).to(device)
            rates.setdefault("article", []).append(article_throughput(model, x, y, device, args.batch_size,
                                                                      args.steps))
    return {name: max(values) for name, values in rates.items()}


def break_even(args, device) -> str:
    """The bare step compiled against eager, in auto's precision and layout: compile seconds (the warm-up's
    excess), seconds saved per step, and the steps after which compiling pays."""
    layout, precision = train.layout_and_precision(trainer_spec(args), device)
    eager_warmup, eager = model_bound.timed_steps(args.width, args.batch_size, args.steps, precision.on, layout.on,
                                                  False, str(device))
    compiled_warmup, compiled = model_bound.timed_steps(args.width, args.batch_size, args.steps, precision.on,
                                                        layout.on, True, str(device))
    compile_seconds = compiled_warmup - eager_warmup
    saved = args.batch_size / eager - args.batch_size / compiled  # seconds per step
    steps = f"pays after {compile_seconds / saved:,.0f} steps" if saved > 0 else "never pays (no faster)"
    return (f"compile: {compile_seconds:.1f} s to compile; step {args.batch_size / eager * 1e3:.1f} ms eager, "
            f"{args.batch_size / compiled * 1e3:.1f} ms compiled ({eager:.0f} vs {compiled:.0f} images/s): {steps}")


def report_width(args, device, x, y) -> None:
    """One width's lines: auto's settings, images/s of each loop, the trainer's share of the bound."""
    layout, precision = train.layout_and_precision(trainer_spec(args), device)
    mode = train.compile_mode(args.compile, device)
    flops = flops_per_image(build_model(args.model, args.width, 10).to(device), device, False)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rates = best_rates(args, device, x, y)
    print(f"width {args.width}: bf16 {'on' if precision.on else 'off'} ({precision.reason}); channels-last "
          f"{'on' if layout.on else 'off'} ({layout.reason}); compile {mode or 'off (eager)'}; "
          f"{flops / 1e9:.3f} GFLOP per training image")
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in device_name(args, device)), None)
    for name, rate in rates.items():
        line = f"  {name:10s} {rate:10.1f} images/s   {rate * flops / 1e12:8.3f} TFLOP/s"
        print(line + (f"   {rate * flops / 1e12 / peak:6.1%} of {peak:g} TFLOP/s peak" if peak else ""))
    print(f"  trainer's share of the bare step: {rates['trainer'] / rates['bare step']:.2f}")
    if "article" in rates:
        print(f"  trainer / article loop: {rates['trainer'] / rates['article']:.2f}x")
    if device.type == "cuda":
        print(f"  peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    if args.break_even:
        print("  " + break_even(args, device))
    for n in args.processes:
        print(f"  trainer x{n} processes side by side: {side_by_side(args, n):.1f} images/s in all")


def device_name(args, device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} threads"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18_cifar")
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps of each loop (after 5 warm-up steps)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best of each loop is printed")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the single-process measurements")
    parser.add_argument("--processes", type=int, nargs="*", default=[],
                        help="also time N trainer processes side by side (e.g. 2 4 8: the best runs_per_gpu)")
    parser.add_argument("--process-threads", type=int, default=1, help="CPU threads of each side-by-side process")
    parser.add_argument("--compile", default="auto", choices=["auto", "off", "on", "reduce-overhead", "max-autotune"],
                        help="the trainer's torch.compile setting (auto: as train.compile_mode decides)")
    parser.add_argument("--article", action="store_true", help="also time the article-style loop")
    parser.add_argument("--break-even", action="store_true", help="also time the bare step compiled (CPU)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for the fraction")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = hardware.resolve_device(args.device)
    x, y = synthetic_arrays(args.images)
    print(f"device: {device_name(args, device)}; model {args.model}; batch {args.batch_size}; {args.steps} timed "
          f"steps, best of {args.rounds} rounds; load average {os.getloadavg()}")
    if device.type == "cpu":
        summary = hardware.cpu_summary(hardware.cpu_flags())
        print(f"cpu: torch capability {summary['capability']}, native bf16: {summary['native_bf16'] or 'none'}")
    for width in args.widths:
        report_width(argparse.Namespace(**{**vars(args), "width": width}), device, x, y)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
