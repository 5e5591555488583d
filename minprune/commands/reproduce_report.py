"""What ``minprune reproduce`` writes about its pruned network: the per-layer table beside the
paper's (``table.txt``), the weight histogram and mask figures (Figs. 4, 7), the bytes on disk,
and the compression curve with its best points. Reads the stages' results; trains nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minprune.commands.reproduce_stages import QUALITY_SOURCE, QUALITY_STD_OF, Run
from minprune.prune.figures import plot_compression_curve, plot_mask, plot_weight_histograms
from minprune.prune.formatting import format_summary, format_table
from minprune.prune.masks import layers_by_weight_name
from minprune.prune.tables import layer_table, summary_row
from minprune.sparse.export import save_sparse
from minprune.sparse.storage import storage_report

__all__ = ["paper_report", "rounds_with_quality_source", "storage", "compression_curve"]


def paper_report(run: Run, baseline, baseline_error, pruned, records, dense_weights):
    """The per-layer tables and the Table 1 line beside the paper's (``table.txt``), Figs. 4, 7."""
    recipe = run.recipe
    table = layer_table(pruned, run.test_set)
    dense_table = layer_table(baseline, run.test_set)
    row = summary_row(baseline_error, records[-1]["error_retrained"], pruned)
    text = (format_table(table, paper=recipe.paper_table or None) + "\n\n"
            + format_summary(row, paper=recipe.paper_summary) + "\n")
    (run.out / "table.txt").write_text(text)
    run.log(text)
    layers = layers_by_weight_name(pruned)
    name = recipe.histogram_layer
    plot_weight_histograms(dense_weights[name],
                           layers[name].weight.data[layers[name].weight_mask != 0],
                           run.out / "histogram.png", name)
    if recipe.mask_layer is not None:
        layer = recipe.mask_layer.removesuffix(".weight")
        plot_mask(layers[recipe.mask_layer].weight_mask, run.out / f"{layer}_mask.png",
                  f"{recipe.display_name} {layer} mask (black: kept)")
    return table, dense_table, row


def rounds_with_quality_source(records: list[dict]) -> list[dict]:
    """The round records for the summary, each saying beside its qualities (``decided``) where
    they come from (``decided_is``) and which std they are relative to (``std_of``)."""
    described = []
    for record in records:
        shown = {}
        for key, value in record.items():
            shown[key] = value
            if key == "decided":
                shown["decided_is"] = "quality " + QUALITY_SOURCE
                shown["std_of"] = record.get("std_of", str(QUALITY_STD_OF))
        described.append(shown)
    return described


def storage(pruned, dense, work: Path) -> dict:
    """Bytes on disk of the pruned model saved sparse vs the dense model saved with ``np.savez``
    (weights and biases, no masks), plus the per-layer accounting of `minprune.sparse.storage`
    (the paper's relative indices, Sec. 5)."""
    work.mkdir(parents=True, exist_ok=True)
    sparse_path, dense_path = work / "pruned_sparse.npz", work / "dense.npz"
    save_sparse(sparse_path, pruned.state_dict())
    np.savez(dense_path, **{name: p.data for name, p in dense.named_parameters()})
    layers = {}
    for name, layer in layers_by_weight_name(pruned).items():
        kind = "conv" if layer.weight.ndim == 4 else "fc"
        accounting = storage_report(layer.weight.data, layer.weight_mask, layer_kind=kind)
        layers[name] = {"dense_bytes": accounting.dense_bytes, "csr_bytes": accounting.csr_bytes,
                        "relative_index_bytes": accounting.relative_bytes,
                        "index_overhead": accounting.index_overhead}
    sparse_bytes, dense_bytes = sparse_path.stat().st_size, dense_path.stat().st_size
    return {"file_bytes_sparse": sparse_bytes, "file_bytes_dense": dense_bytes,
            "file_ratio": dense_bytes / sparse_bytes, "layers": layers}


def _points(records, model):
    """Curve points; compression counts parameters as Table 1 does (all weights and biases before,
    kept weights and all biases after)."""
    parameters = sum(p.size for p in model.parameters())
    weights = sum(layer.weight.size for layer in layers_by_weight_name(model).values())
    return [{"round": r["round"], "density": r["density"],
             "compression": parameters / (r["density"] * weights + parameters - weights),
             "error": r["error_retrained"], "error_pruned": r["error_pruned"]}
            for r in records]


def _most_compressed(curve, error_limit):
    """The most compressed point whose error is at most ``error_limit`` (the dense point at
    worst)."""
    within = [point for point in curve if point["error"] <= error_limit + 1e-12]
    return max(within, key=lambda point: point["compression"], default=curve[0])


def compression_curve(run: Run, baseline_error, pruned, paper_records, beyond_records):
    """Every round's (compression, error), the best points, and the figure beside the paper's."""
    curve = [{"round": 0, "density": 1.0, "compression": 1.0, "error": baseline_error}]
    curve += _points(paper_records, pruned)
    curve += [dict(p, round=p["round"] + len(paper_records))
              for p in _points(beyond_records, pruned)]
    paper = run.recipe.paper
    best = _most_compressed(curve, baseline_error)
    best_paper = _most_compressed(curve, paper.get("error_before", baseline_error))
    plot_compression_curve(curve, run.out / "compression.png",
                           f"{run.recipe.model}: iterative pruning, test error vs compression",
                           baseline_error=baseline_error, paper_points=paper.get("others"))
    return {"curve": curve, "best_within_baseline_error": best,
            "best_within_paper_baseline_error": best_paper}
