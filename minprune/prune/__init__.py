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
from minprune.prune.dead_neurons import remove_dead_neurons
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
from minprune.prune.report import (
    PAPER_LENET5,
    PAPER_LENET_300_100,
    PAPER_SUMMARY,
    format_summary,
    format_table,
    layer_table,
    save_json,
    summary_row,
)
from minprune.prune.sensitivity import (
    keep_ratios_for_tolerance,
    qualities_for_tolerance,
    sensitivity_analysis,
)
from minprune.prune.sparse_training import SPARSE_MAX_DENSITY, sparse_kernels

__all__ = [
    "PAPER_LENET5",
    "PAPER_LENET_300_100",
    "PAPER_SUMMARY",
    "format_summary",
    "format_table",
    "keep_ratios_for_tolerance",
    "layer_table",
    "qualities_for_tolerance",
    "remove_dead_neurons",
    "save_json",
    "sensitivity_analysis",
    "summary_row",
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
    "SPARSE_MAX_DENSITY",
    "sparse_kernels",
    "threshold_prune",
]
