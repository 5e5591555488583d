"""How many bits each layer needs, measured (Han, Mao & Dally 2016, in their Discussion, "Pruning
and Quantization Working Together", Fig. 6 and 7).

Deep Compression picks the bits per layer by experiment: its Fig. 7 plots AlexNet's accuracy
against the bits of the CONV layers and of the FC layers, with and without pruning (accuracy drops
at the same width either way), and it settles on 8 bits for CONV and 5 for FC. minprune measures
each layer on its own: `bits_sweep` quantizes one layer at a time (the others stay float32) at
each candidate width and records the validation error, without retraining; `choose_bits` takes, per
layer, the fewest bits whose error stays within ``tolerance`` of the unquantized model's. Trained
quantization (`minprune.compress.trained_quantization`) then recovers part of what remains.

`quantization_curve` is the other experiment of that section (Fig. 6): the same widths for
every layer at once, on the pruned and on the dense network, so that "pruning + quantization"
and "quantization only" can be compared at the same size.

Departures: Fig. 7 retrains at each width; these sweeps do not (a retraining per point would
cost more than the whole command), so they show what sharing alone loses -- an upper bound on
what is left after retraining.
"""

from __future__ import annotations

import numpy as np

from minprune.compress.huffman import code_lengths, coded_bits
from minprune.compress.weight_sharing import share_weights
from minprune.nn.module import copy_model
from minprune.prune.masks import layers_by_weight_name
from minprune.training.fit import evaluate

__all__ = ["bits_sweep", "choose_bits", "quantization_curve", "coded_weight_bytes"]


def bits_sweep(model, validation, bits=range(1, 9)) -> list[dict]:
    """One row per (layer, bits): ``{"layer", "bits", "error"}``, the validation error with only
    that layer shared at that width (no retraining)."""
    rows = []
    for name in layers_by_weight_name(model):
        for width in bits:
            shared = copy_model(model)
            share_weights(shared, {name: int(width)})
            rows.append({"layer": name, "bits": int(width),
                         "error": evaluate(shared, validation)["error"]})
    return rows


def choose_bits(rows: list[dict], reference_error: float, tolerance: float) -> dict:
    """``{layer: bits}``: for each layer of ``rows`` (`bits_sweep`), the fewest bits whose error
    is at most ``reference_error + tolerance`` (the most bits tried if none is)."""
    chosen = {}
    for name in dict.fromkeys(row["layer"] for row in rows):
        layer_rows = sorted((row for row in rows if row["layer"] == name),
                            key=lambda row: row["bits"])
        good = [row["bits"] for row in layer_rows
                if row["error"] <= reference_error + tolerance + 1e-12]
        chosen[name] = good[0] if good else layer_rows[-1]["bits"]
    return chosen


def coded_weight_bytes(model, codebooks: dict) -> int:
    """Bytes of the shared layers' weights alone, Huffman-coded, with codebooks and tables, plus
    every other parameter as float32 -- no positions (for a dense network, which needs none)."""
    total = 0
    layers = layers_by_weight_name(model)
    for name, parameter in model.named_parameters():
        if name in codebooks:
            codebook = codebooks[name]
            counts = np.bincount(codebook.assignments, minlength=codebook.centroids.size)
            total += (coded_bits(counts, code_lengths(counts)) + 7) // 8
            total += codebook.centroids.nbytes + codebook.centroids.size
        elif name.endswith(".weight") and name in layers:
            total += 4 * int(parameter.data.size)
        else:
            total += parameter.data.nbytes
    return total


def quantization_curve(model, validation, bits=range(1, 9), *, size_of) -> list[dict]:
    """Every layer shared at the same width, for each width: ``{"bits", "error", "bytes"}``
    (validation error without retraining; ``size_of(shared_model, codebooks)`` gives the
    bytes)."""
    rows = []
    for width in bits:
        shared = copy_model(model)
        codebooks = share_weights(shared, int(width))
        rows.append({"bits": int(width), "error": evaluate(shared, validation)["error"],
                     "bytes": int(size_of(shared, codebooks))})
    return rows
