"""ResNet18 in the article's form (ImageNet stem + Linear(1000→classes) head) and the CIFAR form, any width.

Both are torchvision's ResNet18 layer for layer: the same modules, created in the same order (so a seed
gives the same initial weights) and under torchvision's names, so at width 64 the article model's backbone
takes torchvision's ImageNet `resnet18` state_dict unchanged (tests/test_resnet.py checks all three against
torchvision). The BasicBlock is written here rather than imported: importing torchvision imports
torch._dynamo (torchvision.ops), about 1.2 s of every training job's start-up (issue 31).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from optimbench.io import describe_load_error

MODELS = ("resnet18_article", "resnet18_cifar")


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """He et al. (2016)'s basic residual block as torchvision.models.resnet.BasicBlock (groups 1, dilation 1):
    relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut `downsample` or the identity.
    Input N×in_planes×H×W; output N×planes×H/stride×W/stride."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet18 (BasicBlocks [2, 2, 2, 2], widths w-2w-4w-8w) with an ImageNet or a CIFAR stem."""

    def __init__(self, stem: str = "cifar", width: int = 64, num_classes: int = 10):
        super().__init__()
        if stem == "imagenet":  # 7×7 stride-2 conv + max-pool, as torchvision
            self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        elif stem == "cifar":  # 3×3 stride-1 conv, no max-pool
            self.conv1 = nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', not {stem!r}")
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = width
        self.layer1 = self._make_layer(width, stride=1)
        self.layer2 = self._make_layer(2 * width, stride=2)
        self.layer3 = self._make_layer(4 * width, stride=2)
        self.layer4 = self._make_layer(8 * width, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)
        self._init_weights()

    def _make_layer(self, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        blocks = [BasicBlock(self.inplanes, planes, stride, downsample), BasicBlock(planes, planes)]
        self.inplanes = planes
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:  # torchvision's initialisation
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class ArticleResNet18(nn.Module):
    """The article's model: torchvision ResNet18 (1000 ImageNet logits) followed by Linear(1000 → classes)."""

    def __init__(self, width: int = 64, num_classes: int = 10, pretrained: str | None = None):
        super().__init__()
        self.backbone = ResNet18(stem="imagenet", width=width, num_classes=1000)
        self.head = nn.Linear(1000, num_classes)
        if pretrained:
            self.backbone.load_state_dict(load_pretrained(pretrained))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class PretrainedError(FileNotFoundError):
    """train.pretrained names no file, or one that is not torchvision's resnet18 state_dict."""


WEIGHTS_HINT = ("Download torchvision's resnet18 ImageNet weights (resnet18-f37072fd.pth) on a machine with "
                "internet, copy the file here, or set train.pretrained: null to train from scratch.")


def _state_dict_problems(state: dict, reference: dict) -> list[str]:
    """What keeps `state` from loading into a module whose state_dict is `reference` (empty if nothing)."""
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference]
    shapes = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in reference.items()
              if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != v.shape]
    problems = [f"{len(keys)} {what}: {keys[:4]}" + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
                for what, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                   ("shapes differ", shapes)) if keys]
    return problems


def load_pretrained(path) -> dict:
    """torchvision's ImageNet resnet18 state_dict from a local file (hubs are not reached), checked against
    the article model's backbone: a missing, unreadable or incompatible file raises PretrainedError
    naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"train.pretrained = {str(path)!r} does not exist. {WEIGHTS_HINT}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load's errors vary with the damage (RuntimeError, KeyError, EOFError...)
        raise PretrainedError(f"train.pretrained = {str(path)!r} cannot be read as a PyTorch file "
                              f"({describe_load_error(exc)}): it is damaged or not a .pth. {WEIGHTS_HINT}") from None
    if not isinstance(state, dict):
        raise PretrainedError(f"train.pretrained = {str(path)!r} holds a {type(state).__name__}, not a state_dict. "
                              f"{WEIGHTS_HINT}")
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        reference = ResNet18(stem="imagenet", width=64, num_classes=1000).state_dict()
    problems = _state_dict_problems(state, reference)
    if problems:
        raise PretrainedError(f"train.pretrained = {str(path)!r} is not torchvision's resnet18 state_dict: "
                              f"{'; '.join(problems)}. {WEIGHTS_HINT}")
    return state


def build_model(name: str, width: int = 64, num_classes: int = 10, pretrained: str | None = None) -> nn.Module:
    """The named model at the given width."""
    if name == "resnet18_article":
        return ArticleResNet18(width, num_classes, pretrained)
    if name == "resnet18_cifar":
        return ResNet18("cifar", width, num_classes)
    raise ValueError(f"unknown model {name!r}; known: {MODELS}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
