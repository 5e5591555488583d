"""Deep Compression's figures, redrawn from measured numbers (Han, Mao & Dally 2016).

- `plot_sharing`: Fig. 3, one layer's weights with their shared values (k-means centroids) and
  each centroid's gradient, the sum of its weights' gradients (Eq. 3).
- `plot_bits`: Fig. 7's question, per layer: validation error against the bits of one layer
  shared alone, CONV layers solid and FC layers dashed.
- `plot_size_tradeoff`: Fig. 6's question: error against compression for the same bits on the
  pruned and the dense network.

Each takes numbers (never trains), returns the figure (`minprune.prune.figures.PaperFigure`,
shown inline by a notebook) and, given ``path``, writes a PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FormatStrFormatter

from minprune.prune.figures import DPI, PaperFigure

__all__ = ["plot_sharing", "plot_bits", "plot_size_tradeoff"]


def _finish(figure, path, caption: str) -> PaperFigure:
    figure.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=8, style="italic",
                wrap=True)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=DPI)
    return figure


def plot_sharing(weights, centroids, assignments, centroid_gradients=None, path=None,
                 title: str = "Weight sharing") -> PaperFigure:
    """Fig. 3: a histogram of ``weights`` coloured by cluster with the ``centroids`` marked; with
    ``centroid_gradients``, a second panel of each centroid's summed gradient (Eq. 3)."""
    weights, centroids = np.asarray(weights), np.asarray(centroids)
    columns = 1 if centroid_gradients is None else 2
    figure = PaperFigure(figsize=(5.2 * columns, 3.6))
    axes = np.atleast_1d(figure.subplots(1, columns))
    colours = [f"C{k % 10}" for k in range(centroids.size)]
    edges = np.linspace(weights.min(), weights.max(), 121) if weights.size else 10
    for k in range(centroids.size):
        axes[0].hist(weights[assignments == k], bins=edges, color=colours[k], alpha=0.8)
        axes[0].axvline(centroids[k], color="black", linewidth=0.7)
    axes[0].set(xlabel="weight", ylabel="count", title=f"{title}: {centroids.size} clusters")
    if centroid_gradients is not None:
        axes[1].bar(np.arange(centroids.size), centroid_gradients, color=colours)
        axes[1].set(xlabel="centroid (cluster index)", ylabel="summed gradient",
                    title="gradient grouped per centroid (Eq. 3)")
    return _finish(figure, path, "black lines: the shared values (k-means, linear "
                                 "initialisation); colours: the clusters")


def plot_bits(rows, reference_error: float, chosen: dict | None = None, path=None,
              title: str = "Bits per layer") -> PaperFigure:
    """Validation error (%) against bits for each layer shared alone (rows of
    `minprune.compress.search.bits_sweep`); conv layers solid, FC dashed; ``chosen`` bits
    circled."""
    figure = PaperFigure(figsize=(6.0, 4.0))
    axes = figure.subplots()
    for index, name in enumerate(dict.fromkeys(row["layer"] for row in rows)):
        points = sorted((row["bits"], row["error"]) for row in rows if row["layer"] == name)
        x, y = np.array(points).T
        style = "-" if name.startswith("conv") else "--"
        axes.plot(x, 100 * y, style, marker="o", color=f"C{index}", label=name)
        if chosen and name in chosen:
            picked = [e for b, e in points if b == chosen[name]]
            axes.plot([chosen[name]], [100 * picked[0]], "o", markersize=12,
                      markerfacecolor="none", color=f"C{index}")
    axes.axhline(100 * reference_error, color="grey", linewidth=0.8, label="unquantized")
    axes.set(xlabel="bits per weight (2^bits shared values)", ylabel="validation error (%)",
             title=title)
    axes.legend(fontsize=8)
    return _finish(figure, path, "one layer shared at a time, the others float32, no "
                                 "retraining; circles: the bits chosen")


def plot_size_tradeoff(curves: dict, points: dict | None = None, path=None,
                       title: str = "Pruning and quantization together") -> PaperFigure:
    """Error (%) against compression (x, log) for each curve ``{label: [{"compression",
    "error", "bits"}]}``, each point labelled by its bits; ``points`` (``{label: (compression,
    error)}``) drawn as stars."""
    figure = PaperFigure(figsize=(6.0, 4.0))
    axes = figure.subplots()
    for index, (label, rows) in enumerate(curves.items()):
        x = [row["compression"] for row in rows]
        y = [100 * row["error"] for row in rows]
        axes.plot(x, y, marker="o", color=f"C{index}", label=label)
        for row in rows:
            axes.annotate(str(row["bits"]), (row["compression"], 100 * row["error"]),
                          fontsize=7, xytext=(3, 3), textcoords="offset points")
    for index, (label, (x, y)) in enumerate((points or {}).items()):
        axes.plot([x], [100 * y], "*", markersize=12, color=f"C{index + len(curves)}",
                  label=label)
    axes.set(xscale="log", yscale="log", xlabel="compression (dense float32 bytes / bytes)",
             ylabel="validation error (%, log scale)", title=title)
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_formatter(FormatStrFormatter("%g"))
    axes.legend(fontsize=8)
    return _finish(figure, path, "numbers: bits per weight, every layer alike, no retraining")
