"""Retrain pruned fully connected layers on their kept connections only (Han et al. 2015 retrain
the survivors with the mask fixed, Sec. 3). Inside ``sparse_kernels(model)`` each Linear layer
at density <= ``max_density`` computes its forward and both gradients on its pattern
(`minprune.autograd.ops.pattern_linear`), with the dense masked path's results up to float32
summation order. `minprune.prune.retrain` uses it by default. Each layer keeps its pattern's
index arrays while the block runs (``layer.patterns``); the block's end empties them.

    with sparse_kernels(model):          # layers at <= 12% density switch to the sparse op
        fit(model, ...)
"""

from __future__ import annotations

import contextlib

from minprune.base.tuning import SPARSE_MAX_DENSITY  # measured: see its entry there
from minprune.nn.layers import Linear
from minprune.prune.masks import layer_density

__all__ = ["SPARSE_MAX_DENSITY", "sparse_kernels"]


@contextlib.contextmanager
def sparse_kernels(model, max_density: float | None = SPARSE_MAX_DENSITY):
    """Within the block, Linear layers with density <= ``max_density`` (at entry) train on their
    pattern; yields the list of layers switched. ``max_density=None`` switches none."""
    if max_density is not None and not 0.0 <= max_density <= 1.0:
        raise ValueError(
            f"sparse_kernels: max_density must be in [0, 1] or None, got {max_density}"
        )
    switched = []
    if max_density is not None:
        for module in model.modules():
            if (
                isinstance(module, Linear)
                and not module.sparse_kernels
                and layer_density(module) <= max_density
            ):
                module.sparse_kernels = True
                switched.append(module)
    try:
        yield switched
    finally:
        for module in switched:
            module.sparse_kernels = False
            module.patterns.clear()  # the pattern goes with the block
