"""Every number minprune takes from the paper (Han et al. 2015), in one place.

Tables are copied as printed: Table 1 (error and parameters before/after pruning), Table 2
(LeNet-300-100) and Table 3 (LeNet-5). Everything else here is derived from them or quoted from
the text, with its section. Fractions, not percent.
"""

from __future__ import annotations

__all__ = [
    "PAPER_SUMMARY",
    "PAPER_LENET_300_100",
    "PAPER_LENET5",
    "PAPER_TABLES",
    "PAPER_KEEP_RATIOS",
    "PAPER_COMPARISON",
    "RETRAIN_LR_FACTOR",
    "DROPOUT_EXAMPLE",
    "PAPER_INDEX_BITS",
]

# Table 1, the LeNet lines (parameters include biases).
PAPER_SUMMARY = {
    "lenet-300-100": {"error_before": 0.0164, "error_after": 0.0159,
                      "parameters_before": 267_000, "parameters_after": 22_000,
                      "compression": 12.0},
    "lenet5": {"error_before": 0.0080, "error_after": 0.0077,
               "parameters_before": 431_000, "parameters_after": 36_000,
               "compression": 12.0},
}

# Table 2: LeNet-300-100, per layer.
PAPER_LENET_300_100 = [
    {"layer": "fc1", "weights": 235_000, "flop": 470_000, "act": 0.38,
     "weights_kept": 0.08, "flop_kept": 0.08},
    {"layer": "fc2", "weights": 30_000, "flop": 60_000, "act": 0.65,
     "weights_kept": 0.09, "flop_kept": 0.04},
    {"layer": "fc3", "weights": 1_000, "flop": 2_000, "act": 1.00,
     "weights_kept": 0.26, "flop_kept": 0.17},
    {"layer": "total", "weights": 266_000, "flop": 532_000, "act": 0.46,
     "weights_kept": 0.08, "flop_kept": 0.08},
]

# Table 3: LeNet-5, per layer.
PAPER_LENET5 = [
    {"layer": "conv1", "weights": 500, "flop": 576_000, "act": 0.82,
     "weights_kept": 0.66, "flop_kept": 0.66},
    {"layer": "conv2", "weights": 25_000, "flop": 3_200_000, "act": 0.72,
     "weights_kept": 0.12, "flop_kept": 0.10},
    {"layer": "fc1", "weights": 400_000, "flop": 800_000, "act": 0.55,
     "weights_kept": 0.08, "flop_kept": 0.06},
    {"layer": "fc2", "weights": 5_000, "flop": 10_000, "act": 1.00,
     "weights_kept": 0.19, "flop_kept": 0.10},
    {"layer": "total", "weights": 431_000, "flop": 4_586_000, "act": 0.77,
     "weights_kept": 0.08, "flop_kept": 0.16},
]

PAPER_TABLES = {"lenet-300-100": PAPER_LENET_300_100, "lenet5": PAPER_LENET5}

# The Weights% column of Tables 2 and 3 as per-layer keep ratios: {model: {"fc1.weight": 0.08}}.
PAPER_KEEP_RATIOS = {
    model: {f"{row['layer']}.weight": row["weights_kept"] for row in table
            if row["layer"] != "total"}
    for model, table in PAPER_TABLES.items()
}

# Published points to compare a compression curve with: the paper's (Table 1) and Dynamic
# Network Surgery's (Guo et al. 2016, Table 1), as {compression, error}.
PAPER_COMPARISON = {
    model: {
        "error_before": PAPER_SUMMARY[model]["error_before"],
        "error_after": PAPER_SUMMARY[model]["error_after"],
        "compression": 12,
        "others": [{"label": "Han et al. 2015", "compression": 12,
                    "error": PAPER_SUMMARY[model]["error_after"]},
                   dns],
    }
    for model, dns in (
        ("lenet-300-100", {"label": "DNS (Guo et al. 2016)", "compression": 56, "error": 0.0199}),
        ("lenet5", {"label": "DNS (Guo et al. 2016)", "compression": 108, "error": 0.0091}),
    )
}

# Sec. 3.2: retraining starts at 1/10 of the original learning rate (for LeNet).
RETRAIN_LR_FACTOR = 0.1

# Sec. 3.2, Eq. 2 (D_r = D_o * sqrt(C_ir / C_io)): a dropout ratio of 0.5 on a layer pruned to
# 9% of its connections becomes about 0.15.
DROPOUT_EXAMPLE = {"original": 0.5, "keep_ratio": 0.09, "retrained": 0.15}

# Sec. 4 (storage): bits of a relative index between kept weights, for FC and conv layers.
PAPER_INDEX_BITS = {"fc": 5, "conv": 8}
