"""Samples/s of optimbench's trainer against a faithful article-style loop, same model, data and device.

    python benchmarks/throughput.py --model resnet18_cifar --width 8 --steps 40        # CPU, here
    python benchmarks/throughput.py --model resnet18_cifar --width 64 --steps 200      # on a GPU

(a) trainer: uint8 data resident on the device, flips/crops there, no host sync inside the loop,
    channels-last (and bf16 autocast on CUDA) as the trainer's auto settings choose.
(b) article: torchvision Dataset of PIL images + transforms in the main process, DataLoader(batch 64,
    shuffle), `.cpu().numpy()` of loss and predictions at every step (as the article's loop does).
Prints samples/s of each, their ratio, model FLOPs per image (torch.utils.flop_counter) and, given the
device's peak (--peak-tflops, known for some GPUs), the fraction of peak reached.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from optimbench import train
from optimbench.models import build_model

PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16 tensor-core peaks


def synthetic_arrays(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def trainer_throughput(model, x, y, device, batch_size, steps, bf16, channels_last) -> float:
    data = train.DeviceData(x, y, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    normalize = train.Normalize(device, channels_last)
    gen = torch.Generator(device=device).manual_seed(0)
    autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)  # noqa: E731
    done, tic = 0, None
    while done < steps + 5:
        for _ in train.train_epoch(model, optimizer, [], data, normalize, batch_size, gen, autocast):
            done += 1
            if done == 5:  # warm-up steps excluded
                sync(device)
                tic = time.perf_counter()
            if done == steps + 5:
                break
    sync(device)
    return steps * batch_size / (time.perf_counter() - tic)


class ArticleDataset(torch.utils.data.Dataset):
    """PIL images through torchvision transforms, one at a time (the article's CIFAR10 dataset)."""

    def __init__(self, x, y):
        import torchvision.transforms as T

        self.images, self.labels = [Image.fromarray(img) for img in x], y
        self.transform = T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(32, padding=4), T.ToTensor(),
                                    T.Normalize([m / 255 for m in train.MEAN], [s / 255 for s in train.STD])])

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18_cifar")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40, help="timed steps (after 5 warm-up steps)")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, for the fraction")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = train.resolve_device(args.device)
    channels_last = train.switch("auto", True, args.width >= 8, device)
    bf16 = device.type == "cuda"
    x, y = synthetic_arrays(args.images)
    results = {}
    for name in ("article", "trainer"):
        torch.manual_seed(0)
        model = build_model(args.model, args.width, 10).to(device)
        if name == "trainer" and channels_last:
            model = model.to(memory_format=torch.channels_last)
        results[name] = (trainer_throughput(model, x, y, device, args.batch_size, args.steps, bf16, channels_last)
                         if name == "trainer" else article_throughput(model, x, y, device, args.batch_size, args.steps))
    flops = flops_per_image(build_model(args.model, args.width, 10).to(device), device, False)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {args.threads} threads"
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in device_name), None)
    print(f"device: {device_name}; model {args.model} width {args.width}; batch {args.batch_size}; "
          f"{args.steps} timed steps")
    print(f"model: {flops / 1e9:.3f} GFLOP per training image (forward + backward)")
    for name, rate in results.items():
        line = f"{name:8s} {rate:10.1f} samples/s   {rate * flops / 1e12:8.3f} TFLOP/s"
        if peak:
            line += f"   {rate * flops / 1e12 / peak:6.1%} of {peak:g} TFLOP/s peak"
        print(line)
    print(f"ratio trainer / article: {results['trainer'] / results['article']:.2f}x")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
