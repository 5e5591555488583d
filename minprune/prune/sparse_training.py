"""Retrain pruned fully connected layers on their kept connections only.

Han et al. (2015) retrain the survivors with the mask fixed (Sec. 3.5). minprune's layers keep
dense weights and a mask, so by default a pruned Linear layer still runs three dense GEMMs per
step, most of whose multiply-adds meet a pruned weight. Inside ``sparse_kernels(model)`` every
Linear layer whose kept fraction is at most ``max_density`` computes its forward, input gradient
and weight gradient on its pattern instead (`minprune.ops.sparse_linear`), with the same results
up to float32 summation order. `minprune.prune.retrain` uses it by default.

    with sparse_kernels(model):          # layers at <= 12% density switch to the sparse op
        fit(model, ...)

`SPARSE_MAX_DENSITY` is where the sparse op stops paying, measured with
``python benchmarks/sparse_retrain.py`` (which also times whole retraining epochs). Conv layers
keep the dense im2col + GEMM path. While the block runs, change masks by assigning them
(`minprune.prune.set_mask`, ``layer.weight_mask = mask``, ``load_state_dict``), which the layers
notice; writing into a mask array in place is not noticed.
"""

from __future__ import annotations

import contextlib

from minprune.nn.layers import Linear
from minprune.prune.masks import layer_density

__all__ = ["SPARSE_MAX_DENSITY", "sparse_kernels"]

# Break-even of the sparse op on a 784 -> 300 layer at batch 64: ~15% density (sparse/dense step
# time 0.70 at 10%, 1.02 at 15%, 1.19 at 20%; benchmarks/sparse_retrain.py, 2 cores).
SPARSE_MAX_DENSITY = 0.12


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
