"""What ``minprune compress`` writes besides the file: the per-layer table in the layout of Deep
Compression's Tables 2-3, the size after each stage (their Fig. 1) and the figures.

Table columns (per shared layer): Weights (dense count), Weights% (P: the share kept by
pruning), weight bits after P+Q (the codebook's width) and after P+Q+H (the Huffman-coded
cluster stream per weight), index bits after P+Q (the fixed step width that spends the fewest
bits, `fixed_width_steps`) and after P+Q+H (the coded step stream per weight, fillers included:
Huffman coding picks its own width, `minprune.compress.best_index_bits`), and the compress
rate after P+Q (fixed-width codes, with the codebook) and P+Q+H (the bytes the file spends on
the layer: codebook, Huffman tables, both streams), each over the layer's dense float32 bytes.
The total row counts the whole file: biases, the JSON header and the archive's own bytes too.

Stage sizes: dense (4 bytes a parameter); pruning (`minprune.sparse.save_sparse`'s file:
float32 values and 8-bit steps -- a file written and measured); pruning + quantization
(the compressed file with every Huffman stream replaced by its fixed-width size and no tables --
computed from the file's parts); pruning + quantization + Huffman (the file).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from minprune.compress.figures import plot_bits as _plot_bits
from minprune.compress.figures import plot_size_tradeoff
from minprune.compress.relative_index import INDEX_BITS, encode_steps
from minprune.prune.masks import layers_by_weight_name
from minprune.sparse.export import save_sparse

__all__ = ["table", "stage_sizes", "plot_bits", "plot_tradeoff", "fixed_width_bytes",
           "fixed_width_steps"]

_HUFFMAN_PARTS = ("weight_table", "index_table", "weight_stream", "index_stream")


def fixed_width_steps(layer) -> tuple[int, int]:
    """(width, bits) of the layer's position steps at the fixed width that spends the fewest
    bits (fillers included): what P+Q stores, before Huffman coding picks its own width."""
    positions = np.flatnonzero(layer.weight_mask.reshape(-1))
    spent = {width: encode_steps(positions, width).size * width for width in INDEX_BITS}
    width = min(spent, key=lambda w: (spent[w], w))
    return width, spent[width]


def fixed_width_bytes(codebook, layer) -> int:
    """A layer's bytes with fixed-width codes (P+Q): cluster indices, steps and the codebook."""
    entries = codebook.assignments.size
    return (entries * codebook.bits + fixed_width_steps(layer)[1] + 7) // 8 + (
        codebook.centroids.nbytes)


def table(model, codebooks: dict, parts: dict, dense_bytes: int, layer_info: dict
          ) -> tuple[list[dict], str]:
    """(rows, text) of the per-layer table (module docstring). ``layer_info`` holds each shared
    layer's file entry (`minprune.compress.read_compressed`'s ``layers``)."""
    layers = layers_by_weight_name(model)
    rows = []
    for name, codebook in codebooks.items():
        info, layer = layer_info[name], layers[name]
        dense = 4 * layer.weight.data.size
        entries = max(info["entries"], 1)
        coded = sum(parts[name].values())
        rows.append({
            "layer": name.removesuffix(".weight"), "weights": int(layer.weight.data.size),
            "weights_kept": info["entries"] / layer.weight.data.size,
            "weight_bits_pq": codebook.bits,
            "weight_bits_pqh": info["weight_stream_bits"] / entries,
            "index_bits_pq": fixed_width_steps(layer)[0],
            "index_bits_pqh": info["index_stream_bits"] / entries,
            "rate_pq": fixed_width_bytes(codebook, layer) / dense,
            "rate_pqh": coded / dense,
        })
    kept = sum(r["weights_kept"] * r["weights"] for r in rows)
    weights = sum(r["weights"] for r in rows)
    total = {
        "layer": "total", "weights": weights, "weights_kept": kept / weights,
        "weight_bits_pq": sum(r["weight_bits_pq"] * r["weights_kept"] * r["weights"]
                              for r in rows) / kept,
        "weight_bits_pqh": sum(r["weight_bits_pqh"] * r["weights_kept"] * r["weights"]
                               for r in rows) / kept,
        "index_bits_pq": sum(r["index_bits_pq"] * r["weights_kept"] * r["weights"]
                             for r in rows) / kept,
        "index_bits_pqh": sum(r["index_bits_pqh"] * r["weights_kept"] * r["weights"]
                              for r in rows) / kept,
        "rate_pq": stage_fixed_width_file(model, parts, codebooks) / dense_bytes,
        "rate_pqh": parts["file"] / dense_bytes,
    }
    rows.append(total)
    header = ("Layer | Weights | Weights% (P) | Weight bits (P+Q) | Weight bits (P+Q+H) | "
              "Index bits (P+Q) | Index bits (P+Q+H) | Compress rate (P+Q) | "
              "Compress rate (P+Q+H)")
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['layer']:<6}| {r['weights'] / 1000:>6.1f}K | {r['weights_kept']:>11.1%} | "
            f"{r['weight_bits_pq']:>17.1f} | {r['weight_bits_pqh']:>19.2f} | "
            f"{r['index_bits_pq']:>16.1f} | {r['index_bits_pqh']:>18.2f} | "
            f"{r['rate_pq']:>6.2%} ({1 / r['rate_pq']:>4.0f}x) | "
            f"{r['rate_pqh']:>6.2%} ({1 / r['rate_pqh']:>4.0f}x)")
    lines.append("total rates: the whole file (biases, header, archive) over 4 bytes x "
                 f"{dense_bytes // 4:,} parameters; P+Q computed from the file's parts with "
                 "fixed-width codes, P+Q+H measured")
    return rows, "\n".join(lines) + "\n"


def stage_fixed_width_file(model, parts: dict, codebooks: dict) -> int:
    """The file's bytes with every shared layer's Huffman tables and streams replaced by its
    fixed-width codes (P+Q; the codebooks, biases, header and archive as they are)."""
    size = parts["file"]
    layers = layers_by_weight_name(model)
    for name, codebook in codebooks.items():
        size -= sum(parts[name][part] for part in _HUFFMAN_PARTS)
        size += fixed_width_bytes(codebook, layers[name])
        size -= codebook.centroids.nbytes  # counted in both: the codebook stays as it is
    return size


def stage_sizes(pruned, parts: dict, codebooks: dict, dense_bytes: int) -> dict:
    """Bytes and compression after each stage (module docstring): Deep Compression's Fig. 1."""
    with tempfile.TemporaryDirectory() as folder:
        sparse_path = Path(folder) / "pruned.npz"
        save_sparse(sparse_path, pruned, input_shape=(1, 28, 28))
        pruned_bytes = sparse_path.stat().st_size
    sizes = {"dense": dense_bytes, "pruning": pruned_bytes,
             "pruning + quantization": stage_fixed_width_file(pruned, parts, codebooks),
             "pruning + quantization + Huffman": parts["file"]}
    how = {"dense": "4 bytes x parameters",
           "pruning": "minprune.sparse file (float32 values, 8-bit steps), written and measured",
           "pruning + quantization": "the compressed file with fixed-width codes, computed",
           "pruning + quantization + Huffman": "the compressed file, measured"}
    return {stage: {"bytes": int(size), "compression": dense_bytes / size, "how": how[stage]}
            for stage, size in sizes.items()}


def plot_bits(sweep, reference_error, chosen, path, model_name: str):
    return _plot_bits(sweep, reference_error, chosen, path,
                      f"{model_name}: each layer shared alone")


def plot_tradeoff(curves: dict, dense_bytes: int, point: tuple, path, model_name: str):
    """Fig. 6's comparison; ``point`` (compression, validation error) is the retrained file."""
    scaled = {label: [{"bits": r["bits"], "error": r["error"],
                       "compression": dense_bytes / r["bytes"]} for r in rows]
              for label, rows in curves.items()}
    return plot_size_tradeoff(scaled, {"retrained (trained quantization)": point}, path,
                              f"{model_name}: same bits, pruned or dense")
