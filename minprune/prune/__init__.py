"""Han et al.'s pruning: masks, criteria, the prune-retrain loop, sensitivity, tables and figures;
and two later schedules beside it (gradual pruning, dynamic network surgery).

Vocabulary follows ``torch.nn.utils.prune`` where it fits (``l1_unstructured``, ``amount``,
``global_unstructured``, ``remove``, ``is_pruned``); masks are the layers' ``weight_mask`` buffers.

    masks.py            which weights are prunable, mask bookkeeping, density
    criteria.py         threshold_prune (the paper's rule; StdOf: which std), keep-ratio, global
    rounds.py           a round's pruning as a function or as data; rounds_to a target
    dropout.py          Sec. 3.2: lower the dropout ratio as connections go
    freezing.py         Sec. 3.3: retrain one part with the other fixed
    loop.py             Sec. 3: prune_retrain, the paper's loop (prune, dropout, retrain, repeat)
    retraining.py       retrain, iterative_prune (the loop saved and resumable)
    allocation.py       per-layer keep ratios for a whole-network compression
    gradual.py          Zhu & Gupta 2017: sparsity on a cubic ramp during training
    surgery.py          Guo et al. 2016, Dynamic Network Surgery: prune and splice while training
    sparse_training.py  retrain pruned Linear layers on their kept connections only
    sensitivity.py      Sec. 5, Fig. 6: each layer pruned alone, and thresholds from a tolerance
    tickets.py          Frankle & Carbin 2019: pruning rounds, survivors rewound (winning tickets)
    structured.py       Li et al. 2017: whole channels and neurons by L1 norm, layers rebuilt
                        smaller (structured_surgery.py: a layer and the next; _figures: drawn)
    dead_neurons.py     Sec. 3.5: remove neurons left without inputs or outputs
    tables.py           Tables 1-3 measured on a model
    formatting.py       the tables as text, beside the paper's
    figures.py          Figs. 4-7 redrawn from measured numbers
"""

from minprune.prune.allocation import compression_of, keep_ratios_for_compression
from minprune.prune.criteria import (
    StdOf,
    Thresholds,
    global_unstructured,
    keep_ratio_prune,
    l1_unstructured,
    layer_std,
    threshold_prune,
)
from minprune.prune.dead_neurons import remove_dead_neurons
from minprune.prune.dropout import adjust_dropout, dropout_ratios
from minprune.prune.figures import (
    plot_compression_curve,
    plot_mask,
    plot_sensitivity,
    plot_tradeoff,
    plot_weight_histograms,
)
from minprune.prune.formatting import format_summary, format_table
from minprune.prune.freezing import frozen
from minprune.prune.gradual import cubic_sparsity, gradual_prune
from minprune.prune.loop import prune_retrain
from minprune.prune.masks import (
    density,
    is_pruned,
    layer_density,
    layers_by_weight_name,
    remove,
    resolve_per_layer,
    set_mask,
    sparsity,
)
from minprune.prune.pattern_training import SPARSE_MAX_DENSITY, sparse_kernels
from minprune.prune.retraining import geometric_keep_ratios, iterative_prune, retrain
from minprune.prune.rounds import rounds_to
from minprune.prune.sensitivity import (
    keep_ratios_for_tolerance,
    qualities_for_tolerance,
    sensitivity_analysis,
)
from minprune.prune.structured import channel_norms, channel_prune, weakest_channels
from minprune.prune.structured_figures import plot_roads
from minprune.prune.structured_surgery import remove_outputs
from minprune.prune.surgery import (
    hysteresis_top_k,
    network_surgery,
    surgery_mask,
    surgery_thresholds,
)
from minprune.prune.tables import layer_table, summary_row
from minprune.prune.tickets import (
    BestValidation,
    Snapshot,
    compare_resets,
    plot_tickets,
    prune_survivors,
    reinitialize,
    rewind,
)

__all__ = [
    # winning tickets (Frankle & Carbin 2019)
    "BestValidation",
    "Snapshot",
    "compare_resets",
    "plot_tickets",
    "prune_survivors",
    "reinitialize",
    "rewind",
    # structured pruning (Li et al. 2017)
    "channel_norms",
    "channel_prune",
    "weakest_channels",
    "remove_outputs",
    "plot_roads",
    # masks
    "density",
    "is_pruned",
    "layer_density",
    "layers_by_weight_name",
    "remove",
    "resolve_per_layer",
    "set_mask",
    "sparsity",
    # criteria
    "global_unstructured",
    "keep_ratio_prune",
    "l1_unstructured",
    "layer_std",
    "StdOf",
    "threshold_prune",
    "Thresholds",
    # the prune-retrain loop
    "adjust_dropout",
    "dropout_ratios",
    "frozen",
    "geometric_keep_ratios",
    "iterative_prune",
    "prune_retrain",
    "retrain",
    "rounds_to",
    "SPARSE_MAX_DENSITY",
    "sparse_kernels",
    # sizes
    "compression_of",
    "keep_ratios_for_compression",
    # schedules beside Han's rounds
    "cubic_sparsity",
    "gradual_prune",
    "hysteresis_top_k",
    "network_surgery",
    "surgery_mask",
    "surgery_thresholds",
    # sensitivity, dead neurons
    "keep_ratios_for_tolerance",
    "qualities_for_tolerance",
    "sensitivity_analysis",
    "remove_dead_neurons",
    # tables and figures
    "format_summary",
    "format_table",
    "layer_table",
    "summary_row",
    "plot_compression_curve",
    "plot_mask",
    "plot_sensitivity",
    "plot_tradeoff",
    "plot_weight_histograms",
]
