"""The model's own bound on the CPU: images/s of a bare training step (forward, backward, SGD step) on
random data already in memory — no data pipeline, augmentation or metrics — for each precision (fp32,
bf16 autocast), memory format (contiguous, channels-last) and torch.compile (off, on).

No trainer can beat this number, so it says how far `benchmarks/throughput.py`'s ratios can go on this
CPU. Record `lscpu`'s model name with the numbers.

    .venv/bin/python benchmarks/model_bound.py --width 8 --threads 2
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch
import torch.nn.functional as F

from optimbench.resnet import build_model


def timed_steps(width: int, batch: int, steps: int, bf16: bool, channels_last: bool, compiled: bool,
                device: str = "cpu") -> tuple[float, float]:
    """(seconds of the 5 warm-up steps, where compilation happens; images/s of `steps` timed steps after them)."""
    torch.manual_seed(0)
    model = build_model("resnet18_cifar", width, 10).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    forward = torch.compile(model) if compiled else model
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,), device=device)
    device_type = torch.device(device).type

    def step() -> None:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device_type == "cuda":
            torch.cuda.synchronize()

    tic = time.perf_counter()
    for _ in range(5):
        step()
    sync()
    warmup, tic = time.perf_counter() - tic, time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return warmup, batch * steps / (time.perf_counter() - tic)


def images_per_second(width: int, batch: int, steps: int, bf16: bool, channels_last: bool, compiled: bool) -> float:
    """Images/s of `steps` training steps timed after 5 warm-up steps (compilation happens there)."""
    return timed_steps(width, batch, steps, bf16, channels_last, compiled)[1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"CIFAR ResNet18 width {args.width}, batch {args.batch_size}, {args.threads} threads; "
          "images/s of a bare step")
    for bf16, channels_last, compiled in itertools.product((False, True), repeat=3):
        rate = images_per_second(args.width, args.batch_size, args.steps, bf16, channels_last, compiled)
        print(f"{'bf16' if bf16 else 'fp32'}  {'channels-last' if channels_last else 'contiguous   '}  "
              f"compile {'on ' if compiled else 'off'}  {rate:8.0f}")


if __name__ == "__main__":
    main()
