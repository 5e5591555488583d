"""Layers and the ``Module`` base class, in PyTorch's vocabulary."""

from minprune.nn.layers import (
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    LocalResponseNorm,
    MaxPool2d,
    ReLU,
    Sequential,
)
from minprune.nn.module import Module, Parameter, copy_model

__all__ = [
    "Module",
    "Parameter",
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "LocalResponseNorm",
    "ReLU",
    "Dropout",
    "Flatten",
    "Sequential",
    "copy_model",
]
