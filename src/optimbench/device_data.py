"""A run's data as it sits on the device, and the batches the training loop reads from it (SPEC §1.2).

Images stay uint8 N×C×H×W on the device (a quarter of float32's memory) with int64 labels; random flips and
zero-padded crops happen there per batch; normalisation to float is the last step before the model. A
language model's data is one int64 token stream, read in Zaremba et al. (2014)'s truncated-BPTT windows.
The loaders read a problem's canonical .npz (optimbench.formats) into a `Dataset`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from optimbench.formats import canonical
from optimbench.paper_models import batchify, bptt_windows
from optimbench.problems import Problem, input_stats
from optimbench.split import read_split

# The article's per-channel normalisation (SPEC §1.2), in pixel units (0..255): the CIFAR-10-format ResNet18
# problems keep it. The values are the widely copied CIFAR-100 training-set statistics, mean (0.5071, 0.4865,
# 0.4409) and std (0.2673, 0.2564, 0.2762) × 255, not CIFAR-10's own: kept as the article has them.
MEAN = (129.3, 124.1, 112.4)
STD = (68.2, 65.4, 70.4)
BPTT = 35  # truncated-BPTT window (tokens) of Zaremba et al. 2014's medium and large PTB models


class DeviceData:
    """Images and labels resident on the device: the canonical uint8 N×H×W×C images and int64 labels (N,) as
    read, and optionally `index` (int64 (M,)), the rows this set holds (a validation split or what remains of
    the training set). Batches gather their rows and view them N×C×H×W (`batch`): no transposed or indexed
    copy of the whole set is made, so a job's start-up does not pay one (CIFAR-10's training set is 150 MB),
    and a training set and its validation split share one array on the device (`subset`)."""

    def __init__(self, images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, device: torch.device,
                 index: np.ndarray | torch.Tensor | None = None):
        self.images = torch.as_tensor(images).to(device)
        self.labels = torch.as_tensor(labels).to(device=device, dtype=torch.int64)
        self.index = None if index is None else torch.as_tensor(index).to(device=device, dtype=torch.int64)
        self.drop_last = False  # training passes use whole batches only (Problem.drop_last)
        self.reshuffle = True  # a new order every training pass, else one order per run (Problem.reshuffle)
        self.order: torch.Tensor | None = None  # that one order, once drawn

    def subset(self, index: np.ndarray) -> DeviceData:
        """The rows `index` (int64, positions in the array as read) of the same images and labels, sharing them."""
        return DeviceData(self.images, self.labels, self.device, index)

    def __len__(self) -> int:
        return len(self.labels) if self.index is None else len(self.index)

    def pass_size(self, batch_size: int) -> int:
        """Examples a training pass uses: all, or with drop_last the whole batches' (DeepOBS's drop_remainder)."""
        return len(self) - len(self) % batch_size if self.drop_last else len(self)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def batch(self, rows: slice | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images (uint8 len(rows)×C×H×W, a view of the gathered rows; feature vectors len(rows)×D as
        stored) and labels (int64 (len(rows),)) of `rows`, a slice or an int64 tensor of positions in this set."""
        if self.index is not None:
            rows = self.index[rows]
        images = self.images[rows]
        return (images.permute(0, 3, 1, 2) if images.dim() == 4 else images), self.labels[rows]

    @property
    def x(self) -> torch.Tensor:
        """Every image of the set, uint8 N×C×H×W (a copy when the set has an index)."""
        return self.batch(slice(None))[0]

    @property
    def y(self) -> torch.Tensor:
        """Every label of the set, int64 (N,)."""
        return self.batch(slice(None))[1]

    def steps(self, batch_size: int, bptt: int = BPTT) -> int:
        """Batches of batch_size images per training pass (the last one partial, or dropped with drop_last);
        bptt is unused."""
        return math.ceil(self.pass_size(batch_size) / batch_size)


class TokenData:
    """A token stream (int64 word ids, shape (T,)) resident on the device; its length counts tokens."""

    def __init__(self, tokens: np.ndarray, device: torch.device):
        self.tokens = torch.from_numpy(tokens.astype(np.int64)).to(device)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def steps(self, batch_size: int, bptt: int = BPTT) -> int:
        """Truncated-BPTT windows of bptt tokens per pass over batch_size parallel streams (paper_models.batchify,
        paper_models.bptt_windows)."""
        return math.ceil((len(self) // batch_size - 1) / bptt)


@dataclass
class Dataset:
    """A run's data on the device and what the model and the inputs take from it."""

    train: DeviceData | TokenData
    validation: DeviceData | TokenData | None
    test: DeviceData | TokenData
    sizes: dict  # model sizes read from the data: num_classes, in_shape (C, H, W), pixels; or vocab_size
    normalisation: tuple | None  # per-channel (mean, std) in pixel units; None for tokens


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random horizontal flip and random H×W crop of the image zero-padded by `pad` pixels, per image (the
    CIFAR augmentation of He et al. 2016, §4.2: pad 4). x: N×C×H×W; returns the same shape and dtype.
    Draws from gen: N flips, then 2×N offsets."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=gen, device=x.device)
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (offsets[1][:, None] + torch.arange(w, device=x.device))[:, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


class Normalize:
    """uint8 N×C×H×W → float32 (x - mean) / std per channel (pixel units: the article's MEAN/STD by default,
    a problem's input_stats, or 0/255 for inputs in [0, 1]), in the model's memory format."""

    def __init__(self, device: torch.device, channels_last: bool, mean=MEAN, std=STD):
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / self.std).contiguous(memory_format=self.format)


class PerImageStandardize:
    """uint8 N×C×H×W → float32, each image standardised by its own mean and std over all its pixels and channels,
    the std at least 1/√(pixels·channels) (TF's tf.image.per_image_standardization, which DeepOBS's CIFAR data
    sets apply: deepobs/tensorflow/datasets/cifar10.py), in the model's memory format."""

    def __init__(self, channels_last: bool):
        self.format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        mean = x.mean((1, 2, 3), keepdim=True)
        floor = 1.0 / math.sqrt(x[0].numel())
        std = x.std((1, 2, 3), keepdim=True, correction=0).clamp_min(floor)
        return ((x - mean) / std).contiguous(memory_format=self.format)


def input_transform(problem: Problem, normalisation: tuple | None, device: torch.device, channels_last: bool):
    """What turns a batch as stored into the model's inputs: per-image standardisation ("per_image"), the
    per-channel Normalize of `normalisation` (input_normalisation), or nothing (tokens, feature vectors)."""
    if problem.inputs == "per_image":
        return PerImageStandardize(channels_last)
    return tokens_as_is if normalisation is None else Normalize(device, channels_last, *normalisation)


def tokens_as_is(x: torch.Tensor) -> torch.Tensor:
    """The inputs of a language model: word ids (bptt×batch_size int64), unchanged."""
    return x


def training_order(data: DeviceData, gen: torch.Generator) -> torch.Tensor:
    """A training pass's order of the rows: a new permutation from gen, or with data.reshuffle False the run's one
    permutation, drawn from a generator seeded with gen's initial seed (so a resumed run draws the same)."""
    if data.reshuffle:
        return torch.randperm(len(data), generator=gen, device=data.device)
    if data.order is None:
        once = torch.Generator(device=data.device)
        once.manual_seed(gen.initial_seed())
        data.order = torch.randperm(len(data), generator=once, device=data.device)
    return data.order


def batches(problem: Problem, data, normalize, batch_size: int, gen: torch.Generator | None = None, bptt: int = BPTT):
    """(inputs, targets) per step. Images: in the order of a permutation drawn from gen (given: training)
    or in order, flipped and cropped when gen is given and problem.augment > 0, normalised; inputs
    ≤batch_size×C×H×W as `normalize` returns them, targets the int64 labels. Tokens: Zaremba et al.'s
    truncated-BPTT windows (≤bptt×batch_size int64 inputs, targets shifted by one token), in order."""
    if isinstance(data, TokenData):
        yield from bptt_windows(batchify(data.tokens, batch_size), bptt)
        return
    order = None if gen is None else training_order(data, gen)
    for start in range(0, data.pass_size(batch_size) if gen is not None else len(data), batch_size):
        images, labels = data.batch(slice(start, start + batch_size) if order is None
                                    else order[start:start + batch_size])
        if gen is not None and problem.augment:
            images = augment(images, gen, problem.augment)
        yield normalize(images), labels


# ---------------------------------------------------------------- loading a problem's canonical file
def needs_input_stats(problem: Problem) -> bool:
    """Whether input_normalisation reads the training images (input_stats): a "standardize" problem other
    than the CIFAR-10-format ResNet18 ones, which keep the article's constants."""
    return problem.inputs == "standardize" and not (problem.dataset == "cifar10" and problem.model == "resnet18_cifar")


def input_normalisation(problem: Problem, x_train: np.ndarray) -> tuple | None:
    """Per-channel (mean, std) on the 0..255 scale for the problem's inputs: the article's constants for the
    CIFAR-10-format ResNet18 problems (the article's study, SPEC §1.2), input_stats of the training images
    (uint8 N×H×W×C) for other "standardize" problems, (0, 255) for "unit" (inputs in [0, 1]); None for
    tokens."""
    if problem.inputs in ("tokens", "vectors", "per_image"):  # per_image: each image's own statistics
        return None
    channels = x_train.shape[-1]
    if problem.inputs == "unit":
        return (0.0,) * channels, (255.0,) * channels
    if not needs_input_stats(problem):
        return MEAN, STD
    mean, std = input_stats(x_train)
    return tuple(mean.tolist()), tuple(std.tolist())


def require_arrays(spec: dict, problem: Problem, arrays: dict, keys: tuple) -> None:
    """Raises ValueError when the canonical file lacks what the problem's data set has."""
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"spec['data'] {spec['data']} has no {missing}: not a canonical file of problem "
                         f"{problem.name}'s data set {problem.dataset!r} (it has {sorted(arrays)})")


def load_tokens(spec: dict, problem: Problem, arrays: dict, device) -> Dataset:
    """PTB-format token streams (1-D word ids); spec["validation"] "valid" evaluates the data set's
    validation stream; train_subset and test_subset count tokens."""
    require_arrays(spec, problem, arrays, ("tokens_train", "tokens_valid", "tokens_test", "vocab"))
    validation = spec.get("validation")
    if validation not in (None, "valid"):
        raise ValueError(f"spec['validation'] = {validation!r}: a token data set ({problem.dataset}) has its own "
                         f"validation stream, named by the string 'valid' (or none)")
    return Dataset(TokenData(arrays["tokens_train"][:spec.get("train_subset")], device),
                   TokenData(arrays["tokens_valid"], device) if validation else None,
                   TokenData(arrays["tokens_test"][:spec.get("test_subset")], device),
                   {"vocab_size": len(arrays["vocab"])}, None)


def load_images(spec: dict, problem: Problem, arrays: dict, device) -> Dataset:
    """Images N×H×W×C. With spec["validation"] (a split file, optimbench.split), the validation images are
    held out of the training set; train_subset applies to what remains; input statistics are the
    training images'."""
    require_arrays(spec, problem, arrays, ("x_train", "y_train", "x_test", "y_test", "classes"))
    x_train, y_train, n_train, validation = arrays["x_train"], arrays["y_train"], spec.get("train_subset"), None
    if spec.get("validation"):  # both sets index the one array read (no copy of the training images)
        train_idx, val_idx = read_split(spec["validation"], spec["data"])
        train = DeviceData(x_train, y_train, device, train_idx[:n_train])
        validation = train.subset(val_idx)
        stats_images = x_train[train_idx[:n_train]] if needs_input_stats(problem) else x_train[:0]
    else:
        train = DeviceData(x_train[:n_train], y_train[:n_train], device)  # views of the array read
        stats_images = x_train[:n_train]
    train.drop_last, train.reshuffle = problem.drop_last, problem.reshuffle
    n_test = test_size(spec, problem, len(arrays["y_test"]))
    shape = x_train.shape[1:]
    sizes = ({"in_shape": shape} if len(shape) == 1 else  # feature vectors
             {"num_classes": len(arrays["classes"]), "in_shape": (shape[2], shape[0], shape[1]),
              "pixels": int(np.prod(shape))})
    return Dataset(train, validation, DeviceData(arrays["x_test"][:n_test], arrays["y_test"][:n_test], device),
                   sizes, input_normalisation(problem, stats_images))


def test_size(spec: dict, problem: Problem, n_test: int) -> int:
    """Test examples evaluated: spec["test_subset"] (else all); with problem.drop_last the first whole batches
    of spec["batch_size"] of them, as DeepOBS evaluates its unshuffled test set (drop_remainder)."""
    n = min(n_test, spec.get("test_subset") or n_test)
    return n - n % spec["batch_size"] if problem.drop_last else n


def load_data(spec: dict, problem: Problem, device: torch.device) -> Dataset:
    """The problem's data (spec["data"], a canonical .npz of optimbench.formats) on the device.

    Raises:
        ValueError: the file is not the format of the problem's data set, or spec["validation"] is not
            one the data set takes.
    """
    arrays = canonical.load_canonical(spec["data"])
    loader = load_tokens if problem.inputs == "tokens" else load_images
    return loader(spec, problem, arrays, device)
