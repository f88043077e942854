"""optimbench: a reproducible study of deep-learning optimizers (CIFAR-10 ResNet18 and 2-D test functions)."""

__version__ = "0.1.0"
