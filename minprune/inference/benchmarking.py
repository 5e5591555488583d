"""What the speed benchmarks (`benchmarks/`) and ``minprune bench`` share: a pruned LeNet to time,
the dense NumPy forward it is timed against, and a median timer.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from minprune.autograd.ops.conv import Conv2d as ConvFunction
from minprune.autograd.tensor import Tensor, no_grad
from minprune.base.paper import PAPER_KEEP_RATIOS
from minprune.base.random import manual_seed
from minprune.kernels.training.pool import max_pool_forward
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from minprune.nn.models import build
from minprune.prune.criteria import keep_ratio_prune
from minprune.training.checkpoint import load_model_checkpoint

__all__ = [
    "PAPER_KEEP_RATIOS",
    "benchmark_model",
    "dense_logits",
    "dense_numpy_forward",
    "seconds_per_call",
]

def benchmark_model(name: str, checkpoint: str | Path | None = None, seed: int = 0):
    """(model in eval mode, a sentence saying where its weights come from).

    With ``checkpoint`` (a minprune checkpoint .npz): its weights and masks, as saved. Without:
    random weights and biases (seeded), pruned by magnitude to `PAPER_KEEP_RATIOS`.
    """
    manual_seed(seed)
    model = build(name)
    if checkpoint is not None:
        load_model_checkpoint(model, checkpoint, name)
        source = f"weights and masks from {checkpoint}"
    else:
        rng = np.random.default_rng(seed)
        for _, parameter in model.named_parameters():
            if parameter.data.ndim == 1:  # biases start at 0; give the bias path some work
                parameter.data[...] = rng.uniform(-0.1, 0.1, parameter.data.shape)
        keep_ratio_prune(model, PAPER_KEEP_RATIOS[name])
        kept = ", ".join(f"{k.split('.')[0]} {v:.0%}" for k, v in PAPER_KEEP_RATIOS[name].items())
        source = f"random weights pruned to the paper's densities ({kept}); speed does not " \
            "depend on the values"
    return model.eval(), source


def dense_logits(model, images: np.ndarray) -> np.ndarray:
    """minprune's own dense forward (weight * weight_mask), eval mode, no graph."""
    model.eval()
    with no_grad():
        return model(Tensor(np.asarray(images, dtype=np.float32))).data


def dense_numpy_forward(model):
    """A dense forward of the masked model, the reference for speed: NumPy ``W @ x`` per Linear
    (a BLAS GEMV at batch 1, a GEMM otherwise); per Conv2d, minprune's Numba im2col, one BLAS GEMM
    and the layout move (as minprune's training forward does, without the autograd); MaxPool2d by
    minprune's Numba pooling kernel. Weights are multiplied by their masks once, here."""
    steps = []
    for layer in model:
        kind = type(layer)
        if kind is Linear:
            steps.append(_dense_linear(layer))
        elif kind is Conv2d:
            steps.append(_dense_conv(layer))
        elif kind is MaxPool2d:
            steps.append(_dense_max_pool(layer))
        elif kind is ReLU:
            steps.append(lambda x: np.maximum(x, np.float32(0.0)))
        elif kind is Flatten:
            steps.append(lambda x: x.reshape(len(x), -1))
        elif kind is not Dropout:
            raise ValueError(f"dense_numpy_forward: cannot run layer '{layer.name}' ({kind})")

    def forward(x):
        for step in steps:
            x = step(x)
        return x

    return forward


def _masked_weight_and_bias(layer):
    weight = (layer.weight.data * layer.weight_mask).astype(np.float32)
    bias = np.zeros(len(weight), np.float32) if layer.bias is None else layer.bias.data
    return weight, bias


def _dense_max_pool(layer):
    return lambda x: max_pool_forward(x, layer.kernel_size, layer.stride)[0]  # (out, argmax)


def _dense_linear(layer):
    weight, bias = _masked_weight_and_bias(layer)

    def linear(x):
        if len(x) == 1:
            return (weight @ x[0] + bias)[None]  # GEMV
        return x @ weight.T + bias

    return linear


def _dense_conv(layer):
    """The training path's conv forward (im2col + one BLAS GEMM), called on raw arrays."""
    weight, bias = _masked_weight_and_bias(layer)
    return lambda x: ConvFunction().forward(x, weight, bias, layer.stride, layer.padding,
                                            layer.groups)


def seconds_per_call(function, repeats: int, calls_per_repeat: int = 1) -> float:
    """Median over ``repeats`` rounds of the mean time of ``calls_per_repeat`` back-to-back calls
    (after two untimed warm-up calls: JIT, caches)."""
    function()
    function()
    rounds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls_per_repeat):
            function()
        rounds.append((time.perf_counter() - started) / calls_per_repeat)
    return statistics.median(rounds)


