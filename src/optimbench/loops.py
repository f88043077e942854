"""Problem-generic epochs: one training pass and one evaluation for any optimbench.problems.Problem.

What optimbench.train does for CIFAR classification, for every task: the data stays on the device
(uint8 images N×H×W×C, or a token stream), augmentation happens there, each batch's metric sums stay
device tensors, and the metrics are read once per pass (one host sync). Language models run Zaremba et
al.'s truncated BPTT: the token stream cut into batch_size streams, windows of `bptt` steps, the LSTM
state carried from window to window and detached between them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from optimbench.problems import Problem, to_inputs
from optimbench.zoo import batchify, bptt_windows


def crop_flip(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Per image a random horizontal flip and a random H×W crop of the image zero-padded by `pad` pixels
    (the CIFAR augmentation of He et al. 2016, §4.2, pad 4). x: uint8 N×H×W×C; returns the same shape."""
    x = x.permute(0, 3, 1, 2)
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=gen, device=x.device)
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (offsets[1][:, None] + torch.arange(w, device=x.device))[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols]


def _add(total: dict | None, sums: dict) -> dict:
    return dict(sums) if total is None else {k: total[k] + v for k, v in sums.items()}


def _step(problem: Problem, model, optimizer, outputs, inputs, targets) -> None:
    loss = problem.task.loss(outputs, inputs, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if problem.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), problem.grad_clip)
    optimizer.step()


def train_epoch(problem: Problem, model, optimizer, x, y, batch_size: int, gen: torch.Generator, stats=None,
                bptt: int = 35, steppers=()) -> dict[str, float]:
    """One training pass; returns the task's metrics over it (e.g. {"loss", "acc"}). Images: x uint8
    N×H×W×C and y on the device, shuffled with `gen`, augmented if problem.augment; tokens: x the int64
    token stream, y None. `steppers` (schedules) step after every optimizer step."""
    model.train()
    total = None
    for inputs, targets, outputs in _passes(problem, model, x, y, batch_size, gen, stats, bptt):
        _step(problem, model, optimizer, outputs, inputs, targets)
        for stepper in steppers:
            stepper.step()
        total = _add(total, {k: v.detach() for k, v in problem.task.batch_sums(outputs, inputs, targets).items()})
    return problem.task.metrics(total)  # host sync: once per pass


@torch.no_grad()
def evaluate(problem: Problem, model, x, y, batch_size: int, stats=None, bptt: int = 35) -> dict[str, float]:
    """The task's metrics on un-augmented data, in order (arguments as train_epoch)."""
    model.eval()
    total = None
    for inputs, targets, outputs in _passes(problem, model, x, y, batch_size, None, stats, bptt):
        total = _add(total, problem.task.batch_sums(outputs, inputs, targets))
    return problem.task.metrics(total)


def _passes(problem, model, x, y, batch_size, gen, stats, bptt):
    """(inputs, targets, outputs) per batch; shuffled and augmented when a generator is given."""
    if problem.inputs == "tokens":
        state = None
        for inputs, targets in bptt_windows(batchify(x, batch_size), bptt):
            logits, state = problem.task.forward(model, inputs, targets, state)
            state = tuple(s.detach() for s in state)  # truncated BPTT: no gradient into earlier windows
            yield inputs, targets, (logits, state)
        return
    order = torch.randperm(len(y), generator=gen, device=y.device) if gen is not None else None
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
        images = x[idx]
        if gen is not None and problem.augment:
            images = crop_flip(images, problem.augment, gen)
        inputs = to_inputs(problem, images, stats)
        yield inputs, y[idx], problem.task.forward(model, inputs, y[idx])
