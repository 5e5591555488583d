"""Han et al.'s pruning: masks, criteria, the prune-retrain loop, sensitivity and reports.

Vocabulary follows ``torch.nn.utils.prune`` where it fits (``l1_unstructured``, ``amount``,
``global_unstructured``, ``remove``, ``is_pruned``); masks are the layers' ``weight_mask`` buffers.
"""

from minprune.prune.criteria import (
    global_unstructured,
    keep_ratio_prune,
    l1_unstructured,
    layer_std,
    threshold_prune,
)
from minprune.prune.masks import (
    density,
    is_pruned,
    layer_density,
    prunable_layers,
    remove,
    resolve_per_layer,
    set_mask,
    sparsity,
)

__all__ = [
    "density",
    "global_unstructured",
    "is_pruned",
    "keep_ratio_prune",
    "l1_unstructured",
    "layer_density",
    "layer_std",
    "prunable_layers",
    "remove",
    "resolve_per_layer",
    "set_mask",
    "sparsity",
    "threshold_prune",
]
