"""The Demon paper's models beyond ResNet18 (SPEC §1.3), each at its paper's standard size with one size knob.

| model      | paper                                   | knob `width` means            | standard |
|------------|-----------------------------------------|-------------------------------|----------|
| vgg16_bn   | Simonyan & Zisserman 2015, CIFAR form   | channels of the first stage   | 64       |
| wrn        | Zagoruyko & Komodakis 2016 (WRN-d-k)    | widening factor k             | 8        |
| capsnet    | Sabour, Frosst & Hinton 2017            | channels of Conv1 and Primary | 256      |
| lstm_lm    | Zaremba, Sutskever & Vinyals 2014       | embedding and hidden units    | 650      |
| vae        | Kingma & Welling 2014                   | hidden units                  | 500      |

Each module's `forward` documents its inputs and outputs; `optimbench.problems` pairs each with its loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ZOO = ("vgg16_bn", "wrn", "capsnet", "lstm_lm", "vae")


# ---------------------------------------------------------------- VGG16 with batch norm, CIFAR form
# Simonyan & Zisserman (2015)'s configuration D: conv3×3 output channels, "M" a 2×2 max-pool. Written here
# as torchvision.models.vgg's `cfgs["D"]` and `make_layers` (tests/test_paper_models.py checks both against
# torchvision) rather than imported: importing torchvision imports torch._dynamo, about 1.2 s of every
# training job's start-up (issue 31), a VAE's or an LSTM's included.
VGG16_CONFIG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def make_layers(config: list, batch_norm: bool = True) -> nn.Sequential:
    """torchvision's VGG feature extractor: for each entry, conv3×3 (padding 1) [+ BatchNorm] + ReLU, or
    "M" a 2×2 max-pool; 3 input channels."""
    layers, in_channels = [], 3
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        conv = nn.Conv2d(in_channels, v, kernel_size=3, padding=1)
        layers += [conv, nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if batch_norm else [conv, nn.ReLU(inplace=True)]
        in_channels = v
    return nn.Sequential(*layers)


class VGG16(nn.Module):
    """VGG16 (configuration D) with batch norm after every conv, for 32×32 inputs: the 13 conv layers of
    torchvision's `vgg16_bn` (built as torchvision's `make_layers` does, its channels scaled by width/64),
    five 2×2 max-pools down to 1×1, and one Linear(8·width → classes) head as in the usual CIFAR variant
    (e.g. Liu & Deng 2015) instead of ImageNet's three 4096-unit layers.

    Input N×3×32×32 float; output N×num_classes logits. At width 64 and 100 classes: 14,774,436 parameters.
    """

    def __init__(self, width: int = 64, num_classes: int = 100):
        super().__init__()
        config = [v if v == "M" else v * width // 64 for v in VGG16_CONFIG]
        self.features = make_layers(config, batch_norm=True)
        self.classifier = nn.Linear(8 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# ---------------------------------------------------------------- wide residual network
class WideBlock(nn.Module):
    """Pre-activation basic block (BN-ReLU-conv3×3, twice) of Zagoruyko & Komodakis 2016, §2, with an
    optional dropout between the convs and a 1×1 conv shortcut where the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(in_planes), nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(planes), nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = (None if stride == 1 and in_planes == planes
                         else nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv2(self.dropout(F.relu(self.bn2(self.conv1(pre)))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    """WRN-depth-k (Zagoruyko & Komodakis 2016, Table 1): conv 16, three groups of (depth - 4) / 6 blocks
    of widths 16k, 32k, 64k (strides 1, 2, 2), BN-ReLU, global average pool, linear head.

    `width` is k. Input N×3×H×W float (any H, W ≥ 8: the pool is global, so STL-10's 96×96 works);
    output N×num_classes logits. WRN-16-8 with 10 classes: 10,961,370 parameters (the paper: 11.0M).
    """

    def __init__(self, depth: int = 16, width: int = 8, num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4 (10, 16, 22, 28, 40, ...), not {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        blocks, in_planes = [], widths[0]
        for planes, stride in zip(widths[1:], (1, 2, 2)):
            for i in range(n):
                blocks.append(WideBlock(in_planes, planes, stride if i == 0 else 1, dropout))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(in_planes)
        self.fc = nn.Linear(in_planes, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.blocks(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ---------------------------------------------------------------- capsule network
def squash(s: torch.Tensor, dim: int = -1, eps: float = 1e-8) -> torch.Tensor:
    """v = |s|² / (1 + |s|²) · s / |s| (Sabour et al. 2017, eq. 1); eps keeps the gradient finite at s = 0."""
    norm2 = (s * s).sum(dim, keepdim=True)
    return norm2 / (1 + norm2) * s / torch.sqrt(norm2 + eps)


class CapsNet(nn.Module):
    """CapsNet of Sabour et al. 2017, §4: Conv1 (width 9×9 ReLU), PrimaryCaps (32 maps of 8-D capsules,
    9×9 stride 2), DigitCaps (one 16-D capsule per class, 3 routing iterations, eq. 2-3, routing logits
    reset per example) and the reconstruction decoder (FC 512-1024-pixels, sigmoid), fed the class
    capsule of the label in training and of the longest capsule otherwise (§4.1).

    `width` is the channels of Conv1 and of PrimaryCaps (256 in the paper; PrimaryCaps keeps 8-D
    capsules, so width must be a multiple of 8). Input N×C×H×W in [0, 1] (28×28 MNIST: 1152 primary
    capsules). forward(x, y=None) returns (lengths N×classes, reconstructions N×(C·H·W)).
    At the paper's size on 28×28×1 with 10 classes: 8,215,568 parameters (the paper, §5: 8.2M; 6.8M
    without the decoder).
    """

    def __init__(self, width: int = 256, num_classes: int = 10, in_shape=(1, 28, 28), routing: int = 3):
        super().__init__()
        if width % 8:
            raise ValueError(f"CapsNet width must be a multiple of 8 (8-D primary capsules), not {width}")
        channels, height, breadth = in_shape
        self.conv1 = nn.Conv2d(channels, width, 9)
        self.primary = nn.Conv2d(width, width, 9, stride=2)
        side_h, side_w = (height - 8 - 9) // 2 + 1, (breadth - 8 - 9) // 2 + 1
        self.n_primary = width // 8 * side_h * side_w
        self.W = nn.Parameter(0.01 * torch.randn(self.n_primary, num_classes, 16, 8))
        self.routing, self.num_classes = routing, num_classes
        pixels = channels * height * breadth
        self.decoder = nn.Sequential(nn.Linear(16 * num_classes, 512), nn.ReLU(inplace=True),
                                     nn.Linear(512, 1024), nn.ReLU(inplace=True), nn.Linear(1024, pixels))

    def digit_capsules(self, x: torch.Tensor) -> torch.Tensor:
        """N×classes×16 output capsules by routing-by-agreement."""
        p = self.primary(F.relu(self.conv1(x)))  # N×(8·maps)×h×w
        n = p.shape[0]
        u = squash(p.view(n, -1, 8, p.shape[-2], p.shape[-1]).permute(0, 1, 3, 4, 2).reshape(n, -1, 8))
        u_hat = torch.einsum("icdk,nik->nicd", self.W, u)  # predictions N×primary×classes×16
        b = torch.zeros(u_hat.shape[:3], device=x.device, dtype=u_hat.dtype)
        for iteration in range(self.routing):
            c = b.softmax(dim=2)
            v = squash((c.unsqueeze(-1) * u_hat).sum(1))  # N×classes×16
            if iteration < self.routing - 1:
                b = b + (u_hat * v.unsqueeze(1)).sum(-1)
        return v

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None):
        v = self.digit_capsules(x)
        lengths = v.norm(dim=-1)
        chosen = y if y is not None else lengths.argmax(1)
        mask = F.one_hot(chosen, self.num_classes).to(v.dtype).unsqueeze(-1)
        return lengths, torch.sigmoid(self.decoder((v * mask).flatten(1)))


# ---------------------------------------------------------------- word-level LSTM language model
class LSTMLanguageModel(nn.Module):
    """Zaremba et al. 2014's PTB model: embedding → dropout → LSTM layers (dropout between) → dropout →
    linear decoder over the vocabulary; weights uniform in ±init_range (0.05 medium, 0.04 large).

    `width` is the embedding and hidden size (200 small, 650 medium, 1500 large); `dropout` 0, 0.5, 0.65.
    forward(tokens T×B int64, state or None) returns (logits T×B×vocab, state); detach the state between
    truncated-BPTT windows (`batchify`, `bptt_windows`). Medium on PTB's 10,000 words: 19,780,400
    parameters (torch's LSTM has two bias vectors per gate; Zaremba's one-bias model has 19,775,200:
    the papers' "20M", e.g. Press & Wolf 2017, Table 2).
    """

    def __init__(self, vocab_size: int = 10000, width: int = 650, layers: int = 2, dropout: float = 0.5,
                 init_range: float = 0.05):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width)
        self.lstm = nn.LSTM(width, width, layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(width, vocab_size)
        for p in self.parameters():
            nn.init.uniform_(p, -init_range, init_range)

    def forward(self, tokens: torch.Tensor, state=None):
        out, state = self.lstm(self.drop(self.embedding(tokens)), state)
        return self.decoder(self.drop(out)), state


def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """A token stream cut into batch_size parallel streams: T×B (the tail that does not fill a row is
    dropped), as Zaremba et al.'s reader."""
    rows = len(tokens) // batch_size
    if rows < 2:
        raise ValueError(f"{len(tokens)} tokens are too few for batch_size {batch_size}")
    return tokens[: rows * batch_size].view(batch_size, rows).t().contiguous()


def bptt_windows(streams: torch.Tensor, bptt: int):
    """Truncated-BPTT windows of a T×B batch: yields (inputs, targets), each ≤bptt×B, targets shifted by one."""
    for start in range(0, len(streams) - 1, bptt):
        length = min(bptt, len(streams) - 1 - start)
        yield streams[start:start + length], streams[start + 1:start + 1 + length]


# ---------------------------------------------------------------- variational auto-encoder
class VAE(nn.Module):
    """Kingma & Welling 2014 (§3, Appendix C.2): a Gaussian MLP encoder (tanh hidden layer → mean and
    log-variance of a diagonal Gaussian q(z|x)) and a Bernoulli MLP decoder (tanh hidden layer → pixel
    logits), one hidden layer of `width` units each (500 for MNIST in the paper), latent size 20.

    forward(x N×… in [0, 1]) returns (pixel logits N×pixels, mu N×latent, logvar N×latent), drawing
    z = mu + exp(logvar / 2)·ε in training and z = mu in eval mode. MNIST, width 500, latent 20:
    815,824 parameters (no published figure; see tests for the count from the layer sizes).
    """

    def __init__(self, pixels: int = 784, width: int = 500, latent: int = 20):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(pixels, width), nn.Tanh())
        self.mu, self.logvar = nn.Linear(width, latent), nn.Linear(width, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, width), nn.Tanh(), nn.Linear(width, pixels))

    def forward(self, x: torch.Tensor):
        h = self.encoder(x.flatten(1))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        return self.decoder(z), mu, logvar


def build(name: str, width: int | None = None, **kwargs) -> nn.Module:
    """The named zoo model; `width` is its size knob (module table), None for the paper's size.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    classes = {"vgg16_bn": VGG16, "wrn": WideResNet, "capsnet": CapsNet, "lstm_lm": LSTMLanguageModel, "vae": VAE}
    if name not in classes:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(ZOO)}")
    return classes[name](**({} if width is None else {"width": width}), **kwargs)
