"""Test problems (SPEC §1.3): a problem is a data set + a model + a loss + metrics, each metric with its
direction, and a primary metric with a target (the threshold of "time to target").

    problem = get("mnist-vae")
    model = problem.build_model(width=32)                  # the paper's size when width is None
    outputs = problem.task.forward(model, x, y)            # x, y from problem.inputs(...) / the labels
    loss = problem.task.loss(outputs, x, y)                # scalar to minimise
    sums = problem.task.batch_sums(outputs, x, y)          # device tensors; add them up over an epoch
    problem.task.metrics(sums)                             # {"neg_elbo": ..., ...}: one host sync
    problem.metric("test_neg_elbo").higher_is_better       # False

Metric names in tables are `{split}_{name}` (train_loss, test_acc, test_perplexity, test_neg_elbo, ...).
Targets are this project's choice (the Demon paper reports final values, not targets): a value a
well-tuned optimizer reaches within the paper's budget, so time-to-target separates optimizers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from optimbench import deepobs_models, paper_models, resnet
from optimbench.metrics import Metric

INF = math.inf
METRIC_SPLITS = ("train", "test")  # the splits of a problem's `metrics` (the tables' columns)


# ---------------------------------------------------------------- tasks: loss and per-batch sums
class Classification:
    """Softmax cross-entropy on logits N×classes; metrics loss (nats per example) and acc."""

    kind = "classification"
    metric_defs = (Metric("loss", False), Metric("acc", True, 0.0, 1.0))

    def forward(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
        return model(x)

    def loss(self, outputs, x, y) -> torch.Tensor:
        return F.cross_entropy(outputs, y)

    def batch_sums(self, outputs, x, y) -> dict[str, torch.Tensor]:
        return {"loss": F.cross_entropy(outputs.float(), y, reduction="sum").detach(),
                "correct": (outputs.argmax(1) == y).sum(), "count": torch.tensor(len(y), device=y.device)}

    def metrics(self, sums: dict) -> dict[str, float]:
        count = float(sums["count"])
        return {"loss": float(sums["loss"]) / count, "acc": float(sums["correct"]) / count}


class CapsuleClassification(Classification):
    """CapsNet's loss (Sabour et al. 2017): margin loss (eq. 4: m+ 0.9, m- 0.1, λ 0.5, summed over classes)
    plus 0.0005 × the sum of squared reconstruction errors (§4.1), per example. Outputs are (capsule
    lengths N×classes, reconstructions N×pixels); the label masks the decoder input in training only.
    Metrics: loss (that total, per example) and acc (longest capsule)."""

    kind = "capsule"
    M_PLUS, M_MINUS, LAMBDA, RECON_WEIGHT = 0.9, 0.1, 0.5, 0.0005

    def forward(self, model, x, y):
        return model(x, y if model.training else None)

    def per_example(self, outputs, x, y) -> torch.Tensor:
        lengths, recon = outputs
        present = F.one_hot(y, lengths.shape[1]).to(lengths.dtype)
        margin = (present * F.relu(self.M_PLUS - lengths) ** 2
                  + self.LAMBDA * (1 - present) * F.relu(lengths - self.M_MINUS) ** 2).sum(1)
        return margin + self.RECON_WEIGHT * ((recon - x.flatten(1)) ** 2).sum(1)

    def loss(self, outputs, x, y):
        return self.per_example(outputs, x, y).mean()

    def batch_sums(self, outputs, x, y):
        return {"loss": self.per_example(outputs, x, y).float().sum().detach(),
                "correct": (outputs[0].argmax(1) == y).sum(), "count": torch.tensor(len(y), device=y.device)}


class LanguageModel:
    """Next-word cross-entropy on logits T×B×vocab against targets T×B (paper_models.bptt_windows); metrics loss
    (nats per token) and perplexity = exp(loss) (Zaremba et al. 2014, §4). `forward` takes and returns
    the recurrent state: outputs = (logits, state); detach the state between windows."""

    kind = "language_model"
    metric_defs = (Metric("loss", False), Metric("perplexity", False, 1.0, INF))

    def forward(self, model, x, y, state=None):
        return model(x, state)

    def loss(self, outputs, x, y):
        logits = outputs[0]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def batch_sums(self, outputs, x, y):
        logits = outputs[0].float()
        return {"loss": F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").detach(),
                "count": torch.tensor(y.numel(), device=y.device)}

    def metrics(self, sums):
        loss = float(sums["loss"]) / float(sums["count"])
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}


class VariationalAutoEncoder:
    """The negative ELBO of Kingma & Welling 2014 (eq. 10), per example in nats: the Bernoulli decoder's
    cross-entropy against pixel intensities x in [0, 1] (summed over pixels) plus the closed-form
    KL(q(z|x) ‖ N(0, I)) = -½ Σ (1 + log σ² - μ² - σ²) (their Appendix B). Outputs are (pixel logits,
    mu, logvar). Metrics: neg_elbo, recon, kl (all per example; lower is better)."""

    kind = "vae"
    metric_defs = (Metric("neg_elbo", False), Metric("recon", False), Metric("kl", False))

    def forward(self, model, x, y):
        return model(x)

    def parts(self, outputs, x) -> tuple[torch.Tensor, torch.Tensor]:
        logits, mu, logvar = outputs
        recon = F.binary_cross_entropy_with_logits(logits.float(), x.flatten(1).float(), reduction="none").sum(1)
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).float().sum(1)
        return recon, kl

    def loss(self, outputs, x, y):
        recon, kl = self.parts(outputs, x)
        return (recon + kl).mean()

    def batch_sums(self, outputs, x, y):
        recon, kl = (part.sum().detach() for part in self.parts(outputs, x))
        return {"neg_elbo": recon + kl, "recon": recon, "kl": kl, "count": torch.tensor(len(x), device=x.device)}

    def metrics(self, sums):
        count = float(sums["count"])
        return {name: float(sums[name]) / count for name in ("neg_elbo", "recon", "kl")}


class DeepOBSLoss:
    """DeepOBS's loss (deepobs/tensorflow/runners/standard_runner.py: `tf.reduce_mean(losses) + regularizer`) for
    models that compute their per-example losses themselves (optimbench.deepobs_models: quadratic_deep, the VAE):
    outputs are (losses (N,), penalty); the metric `loss` is the per-example mean plus the penalty."""

    kind = "deepobs_loss"
    metric_defs = (Metric("loss", False),)

    def forward(self, model, x, y):
        return model(x)

    def loss(self, outputs, x, y):
        losses, penalty = outputs
        return losses.mean() + penalty

    def batch_sums(self, outputs, x, y):
        losses, penalty = outputs
        return {"loss": (losses.float().sum() + penalty.float() * len(losses)).detach(),
                "count": torch.tensor(len(losses), device=losses.device)}

    def metrics(self, sums):
        return {"loss": float(sums["loss"]) / float(sums["count"])}


class DeepOBSClassification(Classification):
    """Softmax cross-entropy plus the model's L2 penalty, as DeepOBS's classification problems define their loss
    (e.g. cifar10_3c3d.py: `losses` + `regularizer`); outputs are (logits N×classes, penalty). Metrics loss
    (cross-entropy per example + penalty, DeepOBS's reported loss) and acc."""

    kind = "deepobs_classification"

    def loss(self, outputs, x, y):
        logits, penalty = outputs
        return F.cross_entropy(logits, y) + penalty

    def batch_sums(self, outputs, x, y):
        logits, penalty = outputs
        return {"loss": (F.cross_entropy(logits.float(), y, reduction="sum") + penalty.float() * len(y)).detach(),
                "correct": (logits.argmax(1) == y).sum(), "count": torch.tensor(len(y), device=y.device)}


TASKS = {task.kind: task for task in (Classification(), CapsuleClassification(), LanguageModel(),
                                      VariationalAutoEncoder(), DeepOBSLoss(), DeepOBSClassification())}


# ---------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """One test problem.

    dataset: key of optimbench.formats.FORMATS; source: a source the problem is pinned to (the offline
    digits problems), else None (the config chooses download / archive / synthetic).
    model: "resnet18_cifar" (optimbench.resnet) or an optimbench.paper_models name; model_kwargs: its paper size.
    inputs: "standardize" (per-channel mean/std of the training images), "unit" (pixels / 255), "per_image"
    (each image standardised by its own mean and std, TF's per_image_standardization), "tokens", or "vectors"
    (float feature vectors, as they are).
    augment: pixels of zero padding for the random crop + horizontal flip (CIFAR-style), 0 for none.
    grad_clip: the gradient-norm clip of the problem's reference training (Zaremba et al. 2014, §4: 5 for
    the PTB LSTM), applied to every optimizer alike; None for none.
    mem_mb: host memory (MB) a training job of the problem asks the scheduler for unless the config says
    (problem_settings.<problem>.mem_mb, train.mem_mb): its peak at the real data set size plus a margin
    (MEMORY_MEASURED).
    drop_last: every pass uses only whole batches of the training batch size, as DeepOBS's data sets do
    (`batch(batch_size, drop_remainder=True)`): training drops the shuffled remainder, and the test set is
    evaluated on its first ⌊N / batch_size⌋ · batch_size examples.
    reshuffle: a new order of the training examples every epoch; False: one order per run (its seed), every
    epoch the same, as DeepOBS v1.1's TensorFlow pipeline behaves: it re-initialises its data iterator every
    epoch (runners/standard_runner.py: `sess.run(tproblem.train_init_op)`), which replays the shuffle's first
    order under the run's graph-level seed. The calibration on quadratic_deep shows it (README: Published
    baselines): reshuffling gave 6-36× the published runs' spread across seeds of the final test loss.
    """

    name: str
    dataset: str
    model: str
    kind: str
    primary: str
    target: float
    model_kwargs: dict = field(default_factory=dict)
    test_width: int = 8
    inputs: str = "standardize"
    augment: int = 0
    source: str | None = None
    grad_clip: float | None = None
    paper: str = ""
    mem_mb: int = 4000
    drop_last: bool = False
    reshuffle: bool = True

    @property
    def task(self):
        return TASKS[self.kind]

    @property
    def metrics(self) -> tuple[Metric, ...]:
        """Every metric of the tables, `{split}_{name}`, train then test."""
        return tuple(Metric(f"{split}_{m.name}", m.higher_is_better, m.low, m.high)
                     for split in METRIC_SPLITS for m in self.task.metric_defs)

    def metric(self, name: str) -> Metric:
        """The named metric. Raises KeyError listing this problem's metrics."""
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"problem {self.name} has no metric {name!r}; it has {[m.name for m in self.metrics]}")

    @property
    def primary_metric(self) -> Metric:
        return self.metric(self.primary)

    def build_model(self, width: int | None = None, **overrides) -> nn.Module:
        """The problem's model; `width` is its size knob (None: the paper's size); overrides replace
        model_kwargs (e.g. num_classes or vocab_size from the data)."""
        kwargs = {**self.model_kwargs, **overrides}
        if self.model == "resnet18_cifar":
            return resnet.build_model("resnet18_cifar", width or 64, kwargs.get("num_classes", 10))
        if self.model in deepobs_models.ZOO:  # DeepOBS's models have one size: width is not theirs
            return deepobs_models.build(self.model, **kwargs)
        return paper_models.build(self.model, width, **kwargs)


STATS_CHUNK = 2**22  # pixel values per channel counted at once by input_stats (32 MB of int64 indices)


def input_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std, pixel units 0..255, of uint8 images N×H×W×C, for inputs
    "standardize": float64 arrays (C,). From each channel's histogram of its 256 values, counted in chunks of
    images, so no float copy of the images is made (a float64 one was 1.2 GB for CIFAR-100's 50,000 images)."""
    channels = images.shape[-1]
    per_image = max(1, images[0].size // channels)
    counts = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(images), max(1, STATS_CHUNK // per_image)):
        chunk = images[start:start + max(1, STATS_CHUNK // per_image)].reshape(-1, channels)
        for c in range(channels):
            counts[c] += np.bincount(chunk[:, c], minlength=256)
    values = np.arange(256, dtype=np.float64)
    total = counts.sum(1)
    mean = counts @ values / total
    var = (counts * (values - mean[:, None]) ** 2).sum(1) / total
    return mean, np.sqrt(var)


# MEMORY_MEASURED: each problem's default mem_mb (host MB a training job asks the scheduler for). Measured with
# benchmarks/peak_memory.py (random data at the published data set sizes, the trainer's data loading, model,
# Adam, training steps at the preset's batch size, one evaluation batch of 100; CPU, 1 thread, AMD EPYC):
# peak RSS mnist-vae 946, ptb-lstm 1402, fmnist-capsnet 1360, cifar10-resnet18 1697, cifar100-vgg16 1568,
# stl10-wrn16-8 5540 MB (one step, evaluation batch 20; its activations at batch 64 and 96x96 dominate).
# Default = (peak + 2500) x 1.2, rounded up to 500 MB. The 2,500 MB are an estimate, not a measurement (no GPU
# was lent), of what a CUDA job adds on the host (CUDA context and libraries, torch.compile's graphs in the
# process). A CPU-only study of the large models at eval_batch_size 1000 needs more (activations live on the
# host): set problem_settings.<problem>.mem_mb from run.json's peak_host_mb. The offline digits problems
# (1,797 images) keep Problem's default, 4,000 MB.
_DEMON = "Chen, Wolfe, Li & Kyrillidis, Demon: Improved Neural Network Training with Momentum Decay (arXiv:1910.04952)"
PROBLEMS = {p.name: p for p in (
    Problem("cifar10-resnet18", "cifar10", "resnet18_cifar", "classification", "test_acc", 0.80,
            {"num_classes": 10}, augment=4, paper=_DEMON + "; the study's problem (SPEC §1)", mem_mb=5500),
    Problem("cifar100-vgg16", "cifar100", "vgg16_bn", "classification", "test_acc", 0.60,
            {"num_classes": 100}, augment=4, paper=_DEMON, mem_mb=5000),
    Problem("stl10-wrn16-8", "stl10", "wrn", "classification", "test_acc", 0.70,
            {"depth": 16, "num_classes": 10}, test_width=1, augment=12, paper=_DEMON, mem_mb=10000),
    Problem("fmnist-capsnet", "fashion_mnist", "capsnet", "capsule", "test_acc", 0.90,
            {"num_classes": 10, "in_shape": (1, 28, 28)}, inputs="unit", paper=_DEMON, mem_mb=5000),
    Problem("ptb-lstm", "ptb", "lstm_lm", "language_model", "test_perplexity", 100.0,
            {"vocab_size": 10000, "layers": 2, "dropout": 0.5}, test_width=16, inputs="tokens", grad_clip=5.0,
            paper=_DEMON, mem_mb=5000),
    Problem("mnist-vae", "mnist", "vae", "vae", "test_neg_elbo", 110.0,
            {"pixels": 784, "latent": 20}, test_width=16, inputs="unit", paper=_DEMON, mem_mb=4500),
    # Offline demo problems on real data that ships with scikit-learn; targets from the demo's budget
    # (3 epochs, 1 CPU thread): digits-vae at width 64 with Adam (lr 1e-3, batch 64) reached 368 nats
    # after 3 epochs, digits-capsnet at width 16 with Adam 0.78 accuracy.
    Problem("digits-resnet18", "cifar10", "resnet18_cifar", "classification", "test_acc", 0.50,
            {"num_classes": 10}, augment=4, source="digits", paper="the offline demo (SPEC §3)"),
    Problem("digits-vae", "mnist", "vae", "vae", "test_neg_elbo", 400.0,
            {"pixels": 784, "latent": 20}, test_width=16, inputs="unit", source="digits",
            paper="the offline demo (SPEC §3)"),
    Problem("digits-capsnet", "mnist", "capsnet", "capsule", "test_acc", 0.60,
            {"num_classes": 10, "in_shape": (1, 28, 28)}, test_width=16, inputs="unit", source="digits",
            paper="the offline demo (SPEC §3)"),
)}
# DeepOBS's test problems (Schneider, Balles & Hennig 2019), named as DeepOBS names them, each as DeepOBS v1.1
# defines it (github fsschneider/DeepOBS, deepobs/tensorflow/testproblems/<name>.py and datasets/<data>.py). Targets
# are DeepOBS's own (DeepOBS_Baselines v1.1, convergence_performance.json: the final performance the baselines'
# best optimizer reaches, the convergence criterion of DeepOBS's speed metric). Documented deviations: the CIFAR
# problems' colour jitter (random brightness, saturation, contrast; datasets/cifar10.py, cifar100.py) is not
# reproduced, only the 2-pixel pad-and-crop (resize_image_with_crop_or_pad to 36, random_crop 32) and the flip.
_DEEPOBS = "Schneider, Balles & Hennig, DeepOBS: A Deep Learning Optimizer Benchmark Suite (ICLR 2019), v1.1"


def _deepobs(name: str, dataset: str, model: str, kind: str, primary: str, target: float, **fields) -> Problem:
    """A DeepOBS problem: whole batches only, one training order per run (Problem), its source file cited."""
    return Problem(name, dataset, model, kind, primary, target, drop_last=True, reshuffle=False,
                   paper=f"{_DEEPOBS}; deepobs/tensorflow/testproblems/{name}.py", **fields)


DEEPOBS_PROBLEMS = {p.name: p for p in (
    _deepobs("quadratic_deep", "quadratic", "deepobs_quadratic", "deepobs_loss", "test_loss", 87.70315464772136,
             inputs="vectors", source="download", mem_mb=2000),
    _deepobs("mnist_vae", "mnist", "deepobs_vae", "deepobs_loss", "test_loss", 73.49819796869767, inputs="unit"),
    _deepobs("fmnist_vae", "fashion_mnist", "deepobs_vae", "deepobs_loss", "test_loss", 92.97764997362836,
             inputs="unit"),
    _deepobs("fmnist_2c2d", "fashion_mnist", "deepobs_2c2d", "deepobs_classification", "test_acc",
             0.9198093278634639, model_kwargs={"num_classes": 10}, inputs="unit"),
    _deepobs("cifar10_3c3d", "cifar10", "deepobs_3c3d", "deepobs_classification", "test_acc", 0.8283307079578206,
             model_kwargs={"num_classes": 10}, inputs="per_image", augment=2),
    _deepobs("cifar100_allcnnc", "cifar100", "deepobs_allcnnc", "deepobs_classification", "test_acc",
             0.5256043511573971, model_kwargs={"num_classes": 100}, inputs="per_image", augment=2, mem_mb=5000),
)}
PROBLEMS.update(DEEPOBS_PROBLEMS)
# DeepOBS's budget per problem (epochs, batch size): its baselines' folder names (DeepOBS_Baselines v1.1) and the
# problems' docstrings.
DEEPOBS_BUDGETS = {"quadratic_deep": (100, 128), "mnist_vae": (50, 64), "fmnist_vae": (100, 64),
                   "fmnist_2c2d": (100, 128), "cifar10_3c3d": (100, 128), "cifar100_allcnnc": (350, 256)}
DEMON_PAPER = ("cifar10-resnet18", "cifar100-vgg16", "stl10-wrn16-8", "fmnist-capsnet", "ptb-lstm", "mnist-vae")
DEMO = ("digits-resnet18", "digits-vae")


def get(name: str) -> Problem:
    """The named problem.

    Raises:
        KeyError: naming the unknown problem and the known ones.
    """
    if name not in PROBLEMS:
        raise KeyError(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}")
    return PROBLEMS[name]


def table(names=None):
    """One row per problem (all, or `names` in order) for tables and the report: problem, dataset, source,
    model, kind, primary, higher_is_better, target, paper."""
    import pandas as pd

    return pd.DataFrame([{"problem": p.name, "dataset": p.dataset, "source": p.source, "model": p.model,
                          "kind": p.kind, "primary": p.primary, "higher_is_better": p.primary_metric.higher_is_better,
                          "target": p.target, "paper": p.paper} for p in map(get, names or PROBLEMS)])
