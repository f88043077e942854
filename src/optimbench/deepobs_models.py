"""DeepOBS's test-problem models (Schneider, Balles & Hennig, ICLR 2019), as DeepOBS v1.1 defines them in
TensorFlow, written here in PyTorch: layer for layer, TF's "same" padding (asymmetric where TF pads more at the
end), TF's initialisers, and the L2 regulariser each model adds to its loss.

| name (`build`)    | DeepOBS source (github fsschneider/DeepOBS, deepobs/tensorflow/testproblems/)  | parameters |
|-------------------|--------------------------------------------------------------------------------|-----------:|
| deepobs_quadratic | quadratic_deep.py (Hessian), _quadratic.py (loss, θ initialised to 1)            |        100 |
| deepobs_vae       | _vae.py (encoder/decoder), mnist_vae.py / fmnist_vae.py (loss)                   | 10,151,489 |
| deepobs_2c2d      | _2c2d.py; fmnist_2c2d.py                                                         |  3,274,634 |
| deepobs_3c3d      | _3c3d.py; cifar10_3c3d.py (weight decay 0.002)                                   |    895,210 |
| deepobs_allcnnc   | cifar100_allcnnc.py (weight decay 5e-4, dropout 0.2 / 0.5)                       |  1,387,108 |
| deepobs_wrn       | _wrn.py; svhn_wrn164.py (WRN-16-4, weight decay 5e-4; no SVHN reader yet)         |  2,748,890 |

Every model's `forward(x)` returns `(outputs, penalty)`: logits N×classes, or for quadratic_deep and the VAE the
per-example losses (N,) DeepOBS defines inside the model; `penalty` is the scalar L2 regulariser DeepOBS adds to
the mean loss (`tf.contrib.layers.l2_regularizer(wd)` = wd · Σ w² / 2 over conv and dense kernels, not biases),
0 where the problem has none. optimbench.problems' DeepOBS tasks turn these into DeepOBS's loss.

Not reproduced (TF-only details, documented deviations): TF's random streams (initial weights, dropout masks and
the VAE's noise are drawn from torch's generator, so a seed does not give DeepOBS's weights), and the order of
float32 reductions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ZOO = ("deepobs_quadratic", "deepobs_vae", "deepobs_2c2d", "deepobs_3c3d", "deepobs_allcnnc", "deepobs_wrn")
QUADRATIC_DIM = 100
TF_TRUNCATED_STD = 0.87962566103423978  # std of a unit normal truncated at ±2: TF's glorot_normal divides by it


# ---------------------------------------------------------------- quadratic_deep
def random_rotation(dim: int, rng: np.random.RandomState) -> np.ndarray:
    """A Haar-random rotation (dim × dim, float64) by Diaconis & Shahshahani's subgroup algorithm, drawing from
    `rng` exactly as DeepOBS's `random_rotation` does (quadratic_deep.py): one uniform for the 2-D start, then
    per dimension d = 2 … dim-1 a normal vector of d+1 entries whose Householder reflection embeds the rotation
    so far; DeepOBS returns the negated matrix."""
    angle = 2 * np.pi * rng.uniform()
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    for d in range(2, dim):
        v = rng.normal(size=(d + 1, 1))
        v = v / np.sqrt(v.T @ v)
        e = np.zeros((d + 1, 1))
        e[0, 0] = 1.0
        x = (e - v) / np.sqrt((e - v).T @ (e - v))
        embedded = np.zeros((d + 1, d + 1))
        embedded[0, 0] = 1.0
        embedded[1:, 1:] = rotation
        rotation = embedded - 2 * np.outer(x, x.T @ embedded)
    return -rotation


def quadratic_hessian() -> np.ndarray:
    """quadratic_deep's Hessian Q (100 × 100, float64): eigenvalues 90 × U(0, 1) and 10 × U(30, 60) (the deep-
    learning spectrum of Chaudhari et al. 2017, arXiv:1611.01838), rotated by random_rotation; Q = Rᵀ diag(λ) R.
    Drawn from one RandomState(42) in DeepOBS's order (quadratic_deep.py: module-level `rng`, eigenvalues first):
    a fixed property of the problem, the same for every seed."""
    rng = np.random.RandomState(42)
    eigenvalues = np.concatenate((rng.uniform(0.0, 1.0, 90), rng.uniform(30.0, 60.0, 10)))
    rotation = random_rotation(QUADRATIC_DIM, rng)
    return rotation.T @ np.diag(eigenvalues) @ rotation


class QuadraticDeep(nn.Module):
    """DeepOBS's noisy quadratic (_quadratic.py, `_quadratic_base.set_up`): θ (1 × 100, initialised to 1.0) and
    per-example loss ½ (θ − x)ᵀ Q (θ − x) with Q = quadratic_hessian() (float32, a buffer) and x a data point.

    Input N × 100 float32; output (losses (N,), penalty 0)."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.ones(1, QUADRATIC_DIM))
        self.register_buffer("hessian", torch.tensor(quadratic_hessian(), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        diff = self.theta - x
        return 0.5 * ((diff @ self.hessian) * diff).sum(1), diff.new_zeros(())


# ---------------------------------------------------------------- TF's padding and initialisers
def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF's "same" padding (before, after) of one spatial axis: output ceil(size / stride), the odd pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def pad_same(x: torch.Tensor, kernel: int, stride: int, value: float = 0.0) -> torch.Tensor:
    """x (N×C×H×W) padded as TF's "same" does for this kernel and stride (value -inf for max-pooling)."""
    top, bottom = same_padding(x.shape[2], kernel, stride)
    left, right = same_padding(x.shape[3], kernel, stride)
    return F.pad(x, (left, right, top, bottom), value=value)


def truncated_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """TF's truncated_normal_initializer: N(0, std²) redrawn outside ±2 std."""
    return nn.init.trunc_normal_(tensor, 0.0, std, -2 * std, 2 * std)


def glorot_normal_(tensor: torch.Tensor) -> torch.Tensor:
    """TF 1.x's glorot_normal (VarianceScaling, fan_avg, truncated normal): std √(2 / (fan_in + fan_out)) / 0.8796."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(tensor)
    return truncated_normal_(tensor, math.sqrt(2.0 / (fan_in + fan_out)) / TF_TRUNCATED_STD)


def init_layer(layer: nn.Module, weight: str, bias: float) -> nn.Module:
    """Initialise a conv or dense layer as its DeepOBS definition says: weight "glorot_uniform" (TF's default),
    "glorot_normal" or "normal0.05" (truncated normal, std 0.05); bias a constant."""
    if weight == "glorot_uniform":
        nn.init.xavier_uniform_(layer.weight)
    elif weight == "glorot_normal":
        glorot_normal_(layer.weight)
    else:
        truncated_normal_(layer.weight, 0.05)
    nn.init.constant_(layer.bias, bias)
    return layer


class SameConv(nn.Module):
    """TF's conv2d with "same" or "valid" padding (no padding for valid)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: str = "same",
                 weight: str = "glorot_uniform", bias: float = 0.0):
        super().__init__()
        self.conv = init_layer(nn.Conv2d(cin, cout, kernel, stride), weight, bias)
        self.kernel, self.stride, self.same = kernel, stride, padding == "same"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(pad_same(x, self.kernel, self.stride) if self.same else x)


def max_pool_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TF's max_pooling2d with "same" padding (padded cells never win)."""
    return F.max_pool2d(pad_same(x, kernel, stride, -math.inf), kernel, stride)


def l2_penalty(model: nn.Module, weight_decay: float) -> torch.Tensor:
    """wd · Σ w² / 2 over the conv and dense kernels (TF's l2_regularizer; biases are not regularised)."""
    kernels = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d))]
    return weight_decay * sum((w ** 2).sum() for w in kernels) / 2


# ---------------------------------------------------------------- classifiers
class TwoC2D(nn.Module):
    """DeepOBS's 2c2d (_2c2d.py): conv5×5(32, same) ReLU, max-pool 2, conv5×5(64, same) ReLU, max-pool 2,
    dense 1024 ReLU, dense classes; kernels truncated normal (std 0.05), biases 0.05; no weight decay
    (fmnist_2c2d.py). Input N×1×28×28; output (logits N×classes, penalty 0)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        conv = dict(weight="normal0.05", bias=0.05)
        self.conv1, self.conv2 = SameConv(in_channels, 32, 5, **conv), SameConv(32, 64, 5, **conv)
        self.fc1 = init_layer(nn.Linear(7 * 7 * 64, 1024), "normal0.05", 0.05)
        self.fc2 = init_layer(nn.Linear(1024, num_classes), "normal0.05", 0.05)

    def forward(self, x):
        x = max_pool_same(F.relu(self.conv1(x)), 2, 2)
        x = max_pool_same(F.relu(self.conv2(x)), 2, 2)
        # TF flattens H×W×C; the order only permutes fc1's rows, the function class is the same
        return self.fc2(F.relu(self.fc1(x.flatten(1)))), x.new_zeros(())


class ThreeC3D(nn.Module):
    """DeepOBS's 3c3d (_3c3d.py): conv5×5(64, valid), conv3×3(96, valid), conv3×3(128, same), each ReLU and a
    3×3 max-pool of stride 2 (same); dense 512, 256 (ReLU), classes. Conv kernels glorot normal, dense glorot
    uniform, biases 0; L2 weight decay on the kernels (cifar10_3c3d.py: 0.002). Input N×3×32×32; output
    (logits, penalty)."""

    def __init__(self, num_classes: int = 10, weight_decay: float = 0.002):
        super().__init__()
        self.convs = nn.ModuleList([SameConv(3, 64, 5, padding="valid", weight="glorot_normal"),
                                    SameConv(64, 96, 3, padding="valid", weight="glorot_normal"),
                                    SameConv(96, 128, 3, weight="glorot_normal")])
        self.fcs = nn.ModuleList([init_layer(nn.Linear(3 * 3 * 128, 512), "glorot_uniform", 0.0),
                                  init_layer(nn.Linear(512, 256), "glorot_uniform", 0.0),
                                  init_layer(nn.Linear(256, num_classes), "glorot_uniform", 0.0)])
        self.weight_decay = weight_decay

    def forward(self, x):
        for conv in self.convs:
            x = max_pool_same(F.relu(conv(x)), 3, 2)
        x = F.relu(self.fcs[1](F.relu(self.fcs[0](x.flatten(1)))))
        return self.fcs[2](x), l2_penalty(self, self.weight_decay)


class AllCNNC(nn.Module):
    """All-CNN-C (Springenberg et al. 2015) as DeepOBS defines it (cifar100_allcnnc.py): dropout 0.2 on the
    input; 3 × conv3×3(96) (the third of stride 2), dropout 0.5; 3 × conv3×3(192) (the third of stride 2),
    dropout 0.5; conv3×3(192, valid), conv1×1(192), conv1×1(classes); every conv ReLU, "same" unless said;
    global mean → logits. Kernels glorot normal, biases 0.1, L2 weight decay 5e-4 on the kernels. Input
    N×3×32×32; output (logits, penalty)."""

    def __init__(self, num_classes: int = 100, weight_decay: float = 5e-4):
        super().__init__()
        conv = dict(weight="glorot_normal", bias=0.1)
        self.block1 = nn.ModuleList([SameConv(3, 96, 3, **conv), SameConv(96, 96, 3, **conv),
                                     SameConv(96, 96, 3, 2, **conv)])
        self.block2 = nn.ModuleList([SameConv(96, 192, 3, **conv), SameConv(192, 192, 3, **conv),
                                     SameConv(192, 192, 3, 2, **conv)])
        self.head = nn.ModuleList([SameConv(192, 192, 3, padding="valid", **conv), SameConv(192, 192, 1, **conv),
                                   SameConv(192, num_classes, 1, **conv)])
        self.weight_decay = weight_decay

    def forward(self, x):
        x = F.dropout(x, 0.2, self.training)
        for block in (self.block1, self.block2):
            for conv in block:
                x = F.relu(conv(x))
            x = F.dropout(x, 0.5, self.training)
        for conv in self.head:
            x = F.relu(conv(x))
        return x.mean((2, 3)), l2_penalty(self, self.weight_decay)


# ---------------------------------------------------------------- the wide residual network (svhn_wrn164)
class WideUnit(nn.Module):
    """One residual unit of DeepOBS's _wrn.py: BN-ReLU, then conv3×3 (stride) - BN-ReLU - conv3×3, plus the
    shortcut: the pre-activated input through a 1×1 conv (stride) where the channels change, else the input
    (max-pooled where a stride applies to equal channels: not the case for WRN-16-4)."""

    def __init__(self, cin: int, cout: int, stride: int, bn_momentum: float, first: bool):
        super().__init__()
        norm = dict(eps=1e-5, momentum=1 - bn_momentum)  # TF's momentum m keeps m of the old: torch's is 1 − m
        self.bn1, self.bn2 = nn.BatchNorm2d(cin, **norm), nn.BatchNorm2d(cout, **norm)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, bias=False)
        self.project = nn.Conv2d(cin, cout, 1, stride, bias=False) if cin != cout else None
        for conv in (self.conv1, self.conv2, self.project):
            if conv is not None:
                nn.init.xavier_uniform_(conv.weight)
        self.stride, self.first = stride, first

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        if self.project is not None:
            shortcut = self.project(pad_same(pre, 1, self.stride))
        elif self.stride != 1:
            shortcut = F.max_pool2d(pre, self.stride, self.stride)
        else:  # _wrn.py: a first unit's shortcut is the pre-activated input, a further unit's the input itself
            shortcut = pre if self.first else x
        h = F.relu(self.bn2(self.conv1(pad_same(pre, 3, self.stride))))
        return self.conv2(pad_same(h, 3, 1)) + shortcut


class WideResNet(nn.Module):
    """DeepOBS's wide residual network (_wrn.py; svhn_wrn164.py: 2 units per block (WRN-16), widening 4, weight
    decay 5e-4, batch-norm momentum 0.9): conv3×3(16), three blocks of 16k, 32k, 64k channels (strides 1, 2, 2),
    BN-ReLU, global mean, dense classes. Convs have no bias, glorot uniform; L2 on conv and dense kernels.
    Input N×3×32×32; output (logits, penalty). Its data set (SVHN) has no reader here yet."""

    def __init__(self, num_classes: int = 10, units: int = 2, widening: int = 4, weight_decay: float = 5e-4,
                 bn_momentum: float = 0.9):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, bias=False)
        nn.init.xavier_uniform_(self.stem.weight)
        widths, strides, layers, cin = [16 * widening, 32 * widening, 64 * widening], [1, 2, 2], [], 16
        for width, stride in zip(widths, strides):
            layers += [WideUnit(cin, width, stride, bn_momentum, first=True)]
            layers += [WideUnit(width, width, 1, bn_momentum, first=False) for _ in range(units - 1)]
            cin = width
        self.units = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin, eps=1e-5, momentum=1 - bn_momentum)
        self.fc = init_layer(nn.Linear(cin, num_classes), "glorot_uniform", 0.0)
        self.weight_decay = weight_decay

    def forward(self, x):
        x = F.relu(self.bn(self.units(self.stem(pad_same(x, 3, 1)))))
        return self.fc(x.mean((2, 3))), l2_penalty(self, self.weight_decay)


# ---------------------------------------------------------------- the VAE
def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """DeepOBS's lrelu: max(x, 0.3 x)."""
    return torch.maximum(x, 0.3 * x)


class SameConvTranspose(nn.Module):
    """TF's conv2d_transpose with "same" padding: output = input × stride, cropping what TF's padding of the
    matching forward conv (same_padding) adds."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.conv = init_layer(nn.ConvTranspose2d(cin, cout, kernel, stride), "glorot_uniform", 0.0)
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        out = self.conv(x)
        size = x.shape[2] * self.stride
        before, _ = same_padding(size, self.kernel, self.stride)
        return out[:, :, before:before + size, before:before + size]


class DeepOBSVAE(nn.Module):
    """DeepOBS's VAE (_vae.py) with its loss (mnist_vae.py, fmnist_vae.py). Encoder: three conv4×4(64) of strides
    2, 2, 1 (same, leaky ReLU 0.3, dropout 0.2 each), dense → mean (8) and dense × 0.5 → log std; z = mean +
    ε · exp(log std). Decoder: dense 24 and 49 (leaky ReLU), reshape 1×7×7, conv-transpose 4×4(64) of strides
    2, 1, 1 (same, ReLU; dropout 0.2 after the first two), dense 784 with sigmoid. TF defaults: glorot uniform
    kernels, zero biases. Per-example loss: Σ (image − x)² over pixels + −½ Σ (1 + 2 log σ − μ² − σ²).

    Input N×1×28×28 in [0, 1]; output (losses (N,), penalty 0)."""

    def __init__(self, latent: int = 8):
        super().__init__()
        self.enc = nn.ModuleList([SameConv(1, 64, 4, 2), SameConv(64, 64, 4, 2), SameConv(64, 64, 4, 1)])
        self.mean = init_layer(nn.Linear(7 * 7 * 64, latent), "glorot_uniform", 0.0)
        self.log_std = init_layer(nn.Linear(7 * 7 * 64, latent), "glorot_uniform", 0.0)
        self.dec_fc = nn.ModuleList([init_layer(nn.Linear(latent, 24), "glorot_uniform", 0.0),
                                     init_layer(nn.Linear(24, 49), "glorot_uniform", 0.0)])
        self.dec = nn.ModuleList([SameConvTranspose(1, 64, 4, 2), SameConvTranspose(64, 64, 4, 1),
                                  SameConvTranspose(64, 64, 4, 1)])
        self.out = init_layer(nn.Linear(14 * 14 * 64, 28 * 28), "glorot_uniform", 0.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images N×784 in (0, 1) of latent codes z (N×latent)."""
        h = leaky_relu(self.dec_fc[1](leaky_relu(self.dec_fc[0](z)))).view(-1, 1, 7, 7)
        for i, layer in enumerate(self.dec):
            h = F.relu(layer(h))
            h = F.dropout(h, 0.2, self.training) if i < 2 else h
        return torch.sigmoid(self.out(h.flatten(1)))

    def forward(self, x):
        h = x
        for layer in self.enc:
            h = F.dropout(leaky_relu(layer(h)), 0.2, self.training)
        mean, log_std = self.mean(h.flatten(1)), 0.5 * self.log_std(h.flatten(1))
        image = self.decode(mean + torch.randn_like(mean) * log_std.exp())
        recon = ((image - x.flatten(1)) ** 2).sum(1)
        latent = -0.5 * (1.0 + 2.0 * log_std - mean ** 2 - (2.0 * log_std).exp()).sum(1)
        return recon + latent, x.new_zeros(())


def build(name: str, **kwargs) -> nn.Module:
    """The named DeepOBS model (ZOO) with its keyword arguments (num_classes, weight_decay, latent).

    Raises:
        KeyError: naming the unknown model and ZOO.
    """
    builders = {"deepobs_quadratic": QuadraticDeep, "deepobs_vae": DeepOBSVAE, "deepobs_2c2d": TwoC2D,
                "deepobs_3c3d": ThreeC3D, "deepobs_allcnnc": AllCNNC, "deepobs_wrn": WideResNet}
    if name not in builders:
        raise KeyError(f"unknown DeepOBS model {name!r}; known: {', '.join(ZOO)}")
    return builders[name](**kwargs)
