"""Every number minprune takes from the paper (Han et al. 2015), in one place.

Tables are copied as printed: Table 1 (error and parameters before/after pruning), Table 2
(LeNet-300-100), Table 3 (LeNet-5), Table 4 (AlexNet) and Table 5 (VGG-16). Everything else here
is derived from them or quoted from the text, with its section. Fractions, not percent.

Where the tables come from: Tables 1-4 as in ``paper-notes`` (the project's notes on the paper);
Table 5's per-layer rows from a public transcription of the paper's text and tables (the notes
give only ranges per block: conv2_x 34-36%, conv3_x 24-53%, conv4_x 27-34%, conv5_x 29-36%; every
per-layer value below falls in its block's range). The printed counts are rounded inconsistently:
Table 4 prints conv4's 663,552 weights as 663K but conv3's 884,736 as 885K, and Table 5 prints
conv2_2's 147,456 weights as 148K (its weights and biases make 147,584).
"""

from __future__ import annotations

__all__ = [
    "PAPER_SUMMARY",
    "PAPER_LENET_300_100",
    "PAPER_LENET5",
    "PAPER_ALEXNET",
    "PAPER_VGG16",
    "PAPER_TABLES",
    "PAPER_KEEP_RATIOS",
    "PAPER_COMPARISON",
    "LATER_LENET_RECORDS",
    "RETRAIN_LR_FACTOR",
    "RETRAIN_LR_FACTORS",
    "DROPOUT_EXAMPLE",
    "PAPER_INDEX_BITS",
]

# Table 1 (parameters include biases). The ImageNet lines' errors are top-1, with top-5 beside.
PAPER_SUMMARY = {
    "lenet-300-100": {"error_before": 0.0164, "error_after": 0.0159,
                      "parameters_before": 267_000, "parameters_after": 22_000,
                      "compression": 12.0},
    "lenet5": {"error_before": 0.0080, "error_after": 0.0077,
               "parameters_before": 431_000, "parameters_after": 36_000,
               "compression": 12.0},
    "alexnet": {"error_before": 0.4278, "error_after": 0.4277,
                "top5_error_before": 0.1973, "top5_error_after": 0.1967,
                "parameters_before": 61_000_000, "parameters_after": 6_700_000,
                "compression": 9.0},
    "vgg16": {"error_before": 0.3150, "error_after": 0.3134,
              "top5_error_before": 0.1132, "top5_error_after": 0.1088,
              "parameters_before": 138_000_000, "parameters_after": 10_300_000,
              "compression": 13.0},
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

def _row(layer, weights, flop, act, weights_kept, flop_kept) -> dict:
    return {"layer": layer, "weights": weights, "flop": flop, "act": act,
            "weights_kept": weights_kept, "flop_kept": flop_kept}


# Table 4: AlexNet, per layer. fc1, fc2, fc3 are Caffe's fc6, fc7, fc8 (`minprune.nn.models`).
PAPER_ALEXNET = [
    _row("conv1", 35_000, 211_000_000, 0.88, 0.84, 0.84),
    _row("conv2", 307_000, 448_000_000, 0.52, 0.38, 0.33),
    _row("conv3", 885_000, 299_000_000, 0.37, 0.35, 0.18),
    _row("conv4", 663_000, 224_000_000, 0.40, 0.37, 0.14),
    _row("conv5", 442_000, 150_000_000, 0.34, 0.37, 0.14),
    _row("fc1", 38_000_000, 75_000_000, 0.36, 0.09, 0.03),
    _row("fc2", 17_000_000, 34_000_000, 0.40, 0.09, 0.03),
    _row("fc3", 4_000_000, 8_000_000, 1.00, 0.25, 0.10),
    _row("total", 61_000_000, 1_500_000_000, 0.54, 0.11, 0.30),
]

# Table 5: VGG-16, per layer (see the module docstring for the source).
PAPER_VGG16 = [
    _row("conv1_1", 2_000, 200_000_000, 0.53, 0.58, 0.58),
    _row("conv1_2", 37_000, 3_700_000_000, 0.89, 0.22, 0.12),
    _row("conv2_1", 74_000, 1_800_000_000, 0.80, 0.34, 0.30),
    _row("conv2_2", 148_000, 3_700_000_000, 0.81, 0.36, 0.29),
    _row("conv3_1", 295_000, 1_800_000_000, 0.68, 0.53, 0.43),
    _row("conv3_2", 590_000, 3_700_000_000, 0.70, 0.24, 0.16),
    _row("conv3_3", 590_000, 3_700_000_000, 0.64, 0.42, 0.29),
    _row("conv4_1", 1_000_000, 1_800_000_000, 0.51, 0.32, 0.21),
    _row("conv4_2", 2_000_000, 3_700_000_000, 0.45, 0.27, 0.14),
    _row("conv4_3", 2_000_000, 3_700_000_000, 0.34, 0.34, 0.15),
    _row("conv5_1", 2_000_000, 925_000_000, 0.32, 0.35, 0.12),
    _row("conv5_2", 2_000_000, 925_000_000, 0.29, 0.29, 0.09),
    _row("conv5_3", 2_000_000, 925_000_000, 0.19, 0.36, 0.11),
    _row("fc6", 103_000_000, 206_000_000, 0.38, 0.04, 0.01),
    _row("fc7", 17_000_000, 34_000_000, 0.42, 0.04, 0.02),
    _row("fc8", 4_000_000, 8_000_000, 1.00, 0.23, 0.09),
    _row("total", 138_000_000, 30_900_000_000, 0.64, 0.075, 0.21),
]

PAPER_TABLES = {"lenet-300-100": PAPER_LENET_300_100, "lenet5": PAPER_LENET5,
                "alexnet": PAPER_ALEXNET, "vgg16": PAPER_VGG16}

# The Weights% column of Tables 2-5 as per-layer keep ratios: {model: {"fc1.weight": 0.08}}.
PAPER_KEEP_RATIOS = {
    model: {f"{row['layer']}.weight": row["weights_kept"] for row in table
            if row["layer"] != "total"}
    for model, table in PAPER_TABLES.items()
}

# Published points to compare a compression curve with: the paper's (Table 1) and, for the
# LeNets, Dynamic Network Surgery's (Guo et al. 2016, Table 1), as {compression, error}.
def _comparison(model: str, *others) -> dict:
    line = PAPER_SUMMARY[model]
    compression = int(line["compression"])
    return {
        "error_before": line["error_before"],
        "error_after": line["error_after"],
        "compression": compression,
        "others": [{"label": "Han et al. 2015", "compression": compression,
                    "error": line["error_after"]}, *others],
    }


PAPER_COMPARISON = {
    "lenet-300-100": _comparison(
        "lenet-300-100", {"label": "DNS (Guo et al. 2016)", "compression": 56, "error": 0.0199}),
    "lenet5": _comparison(
        "lenet5", {"label": "DNS (Guo et al. 2016)", "compression": 108, "error": 0.0091}),
    "alexnet": _comparison("alexnet"),
    "vgg16": _comparison("vgg16"),
}

# Later magnitude-free records on the same LeNets, as {label, compression, error} (test error):
# Dynamic Network Surgery (Guo et al. 2016, Table 1) and Sparse Variational Dropout (Molchanov et
# al. 2017, Table 1), for `minprune compare`'s figure beside Han et al.'s Table 1 point.
LATER_LENET_RECORDS = {
    "lenet-300-100": [
        {"label": "Han et al. 2015", "compression": 12, "error": 0.0159},
        {"label": "DNS (Guo et al. 2016)", "compression": 56, "error": 0.0199},
        {"label": "Sparse VD (Molchanov et al. 2017)", "compression": 68, "error": 0.0192},
    ],
    "lenet5": [
        {"label": "Han et al. 2015", "compression": 12, "error": 0.0077},
        {"label": "DNS (Guo et al. 2016)", "compression": 108, "error": 0.0091},
        {"label": "Sparse VD (Molchanov et al. 2017)", "compression": 280, "error": 0.0075},
    ],
}

# Sec. 4.1: retraining starts at 1/10 of the original learning rate for LeNet (the command line's
# default) and, Sec. 4.2, at 1/100 for AlexNet. The paper gives no factor for VGG-16 (Sec. 4.3
# says only "following a similar methodology"); `minprune.prune.recipes` uses AlexNet's.
RETRAIN_LR_FACTOR = 0.1
RETRAIN_LR_FACTORS = {"lenet-300-100": 0.1, "lenet5": 0.1, "alexnet": 0.01}

# Sec. 3.2, Eq. 2 (D_r = D_o * sqrt(C_ir / C_io)): a dropout ratio of 0.5 on a layer pruned to
# 9% of its connections becomes about 0.15.
DROPOUT_EXAMPLE = {"original": 0.5, "keep_ratio": 0.09, "retrained": 0.15}

# Sec. 5, Discussion (storage): bits of a relative index between kept weights, for FC and conv
# layers.
PAPER_INDEX_BITS = {"fc": 5, "conv": 8}
