"""The paper's figures, redrawn from measured numbers: trade-off, sensitivity, histograms, masks.

Each function takes numbers measured elsewhere (never a model or a training run) and returns the
matplotlib ``Figure``, which a notebook shows inline; given a ``path``, it also writes a PNG
there. Every figure has a title, labelled axes and a caption line saying what was measured.

- :func:`plot_tradeoff`: Fig. 5, accuracy loss vs the fraction of parameters pruned away.
- :func:`plot_sensitivity`: Fig. 6, accuracy vs how hard one layer alone is pruned.
- :func:`plot_weight_histograms`: Fig. 7, a layer's weights before and after pruning.
- :func:`plot_mask`: Fig. 4, the sparsity pattern of a first layer over the input image.
- :func:`plot_compression_curve`: beyond the paper, test error vs compression.

Figures are drawn with the Agg canvas, without ``pyplot``: nothing here changes a notebook's
backend or leaves figures open.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "plot_tradeoff",
    "plot_sensitivity",
    "plot_weight_histograms",
    "plot_mask",
    "plot_compression_curve",
    "TRADEOFF_VARIANTS",
    "PaperFigure",
]

# The five curves of the paper's Fig. 5, with a fixed style each so that figures agree.
TRADEOFF_VARIANTS = {
    "L2 reg w/o retrain": {"color": "tab:orange", "linestyle": "--", "marker": "o"},
    "L1 reg w/o retrain": {"color": "tab:blue", "linestyle": "--", "marker": "s"},
    "L1 reg w/ retrain": {"color": "tab:purple", "linestyle": "-", "marker": "^"},
    "L2 reg w/ retrain": {"color": "tab:green", "linestyle": "-", "marker": "v"},
    "L2 reg w/ iterative prune and retrain": {"color": "tab:red", "linestyle": "-",
                                             "marker": "D"},
}

TRADEOFF_QUANTITIES = {
    "accuracy_change": "Accuracy change (pruned - baseline, %)",
    "accuracy_loss": "Accuracy loss (baseline - pruned, %)",
    "accuracy": "Accuracy (%)",
    "error": "Error (%)",
}


DPI = 110


class PaperFigure(Figure):
    """A ``Figure`` on the Agg canvas that a notebook displays inline (IPython asks it for a PNG)
    without ``pyplot``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        FigureCanvasAgg(self)

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()


def _new_figure(width: float, height: float, columns: int = 1):
    figure = PaperFigure(figsize=(width, height))
    axes = figure.subplots(1, columns)
    return figure, axes


def _finish(figure, path, caption: str) -> PaperFigure:
    """Add the caption line and lay out; write the PNG when ``path`` is given."""
    figure.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=8, wrap=True,
                style="italic")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=DPI)
    return figure


def _pairs(points, what: str) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or len(array) == 0:
        raise ValueError(f"{what}: expected a non-empty list of (x, y) pairs, got {points!r}")
    return array[np.argsort(array[:, 0], kind="stable")]


def plot_tradeoff(curves: dict, path=None, paper_note: str | None = None,
                  quantity: str = "accuracy_loss", title: str | None = None,
                  caption: str | None = None) -> PaperFigure:
    """The paper's Fig. 5: one curve per variant of ``(fraction_pruned, value)`` points.

    ``curves`` maps a label (the five of :data:`TRADEOFF_VARIANTS` get the same style in every
    figure; other labels are allowed) to its points. ``fraction_pruned`` and the value are
    fractions; they are drawn in percent. ``quantity`` names the value: ``"accuracy_change"``
    (pruned accuracy minus baseline accuracy, negative when accuracy is lost: the paper's axis),
    ``"accuracy_loss"`` (baseline minus pruned; the y axis is inverted so that, as in the paper,
    curves fall as accuracy is lost), ``"accuracy"`` or ``"error"``. ``paper_note`` is printed
    on the plot (e.g. the paper's observation, to compare with).
    """
    if not curves:
        raise ValueError("plot_tradeoff: no curves given")
    if quantity not in TRADEOFF_QUANTITIES:
        raise ValueError(
            f"plot_tradeoff: quantity must be one of {list(TRADEOFF_QUANTITIES)}, got {quantity!r}"
        )
    figure, ax = _new_figure(7, 5)
    for label, points in curves.items():
        array = _pairs(points, f"plot_tradeoff: curve {label!r}")
        style = TRADEOFF_VARIANTS.get(label, {"marker": "o"})
        ax.plot(100 * array[:, 0], 100 * array[:, 1], label=label, **style)
    if quantity in ("accuracy_change", "accuracy_loss"):
        ax.axhline(0.0, color="grey", linewidth=0.8, label="_no loss")
    if quantity == "accuracy_loss":
        ax.invert_yaxis()
    ax.set_xlabel("Parameters pruned away (%)")
    ax.set_ylabel(TRADEOFF_QUANTITIES[quantity])
    ax.set_title(title or "Accuracy vs parameters pruned (cf. Han et al. 2015, Fig. 5)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if paper_note:
        ax.text(0.02, 0.02, paper_note, transform=ax.transAxes, fontsize=8, va="bottom",
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "lightgrey"})
    return _finish(figure, path, caption or (
        "Measured: test accuracy after pruning each variant to the given fraction of weights "
        "(no retraining for 'w/o retrain' curves)."
    ))


def plot_sensitivity(rows, path=None, title: str = "Each layer pruned alone, no retraining",
                     baseline_accuracy: float | None = None,
                     caption: str | None = None) -> PaperFigure:
    """The paper's Fig. 6: one curve per layer of accuracy vs that layer's pruning level.

    ``rows`` come from :func:`~minprune.prune.sensitivity.sensitivity_analysis`: each has
    ``layer``, ``accuracy`` and either ``keep_ratio`` or ``quality`` (all rows the same kind).
    ``baseline_accuracy`` (the unpruned model's) is drawn as a dashed line when given.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("plot_sensitivity: no rows given")
    kinds = {"keep_ratio" if "keep_ratio" in row else "quality" if "quality" in row else None
             for row in rows}
    if None in kinds or len(kinds) != 1:
        raise ValueError(
            "plot_sensitivity: every row needs 'keep_ratio', or every row needs 'quality'"
        )
    kind = kinds.pop()
    by_layer: dict[str, list] = {}
    for row in rows:
        by_layer.setdefault(row["layer"], []).append((row[kind], row["accuracy"]))
    figure, ax = _new_figure(7, 5)
    for layer, points in by_layer.items():
        array = _pairs(points, f"plot_sensitivity: layer {layer!r}")
        label = layer.removesuffix(".weight")
        ax.plot(array[:, 0] * (100 if kind == "keep_ratio" else 1), 100 * array[:, 1],
                marker="o", label=label)
    if baseline_accuracy is not None:
        ax.axhline(100 * baseline_accuracy, color="grey", linestyle="--", linewidth=0.8,
                   label="_baseline")
    if kind == "keep_ratio":
        ax.set_xlabel("Weights kept in the layer (%)")
        ax.invert_xaxis()  # harsher pruning to the right, as the paper's Fig. 6
    else:
        ax.set_xlabel("Quality (threshold = quality x std of the layer's weights)")
    ax.set_ylabel("Accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(figure, path, caption or (
        "Measured: accuracy with one layer pruned at a time and no retraining "
        "(Han et al. 2015, Sec. 5, Fig. 6)"
        + ("; dashed: unpruned model." if baseline_accuracy is not None else ".")
    ))


def plot_weight_histograms(before: np.ndarray, after: np.ndarray, path=None,
                           layer_name: str = "weights", mask: np.ndarray | None = None,
                           bins: int = 100, caption: str | None = None) -> PaperFigure:
    """The paper's Fig. 7: a layer's weights before pruning, and the survivors after
    prune + retrain, in two panels with the same bins.

    ``after`` is either the surviving weights only, or the full weight array together with its
    ``mask`` (then ``after[mask != 0]`` is drawn). Without a mask, exact zeros of ``after`` are
    taken to be pruned and left out.
    """
    before = np.asarray(before, dtype=np.float64).ravel()
    after = np.asarray(after, dtype=np.float64)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != after.shape:
            raise ValueError(
                f"plot_weight_histograms: mask shape {mask.shape} != after shape {after.shape}"
            )
        after = after[mask != 0]
    else:
        after = after[after != 0]
    after = after.ravel()
    if before.size == 0:
        raise ValueError("plot_weight_histograms: 'before' holds no weights")
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"plot_weight_histograms: bins must be an int >= 1, got {bins!r}")
    values = np.concatenate([before, after])
    low, high = values.min(), values.max()
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    figure, (left, right) = _new_figure(10, 4, columns=2)
    left.hist(before, bins=edges, color="tab:blue")
    left.set_title(f"{layer_name}: before pruning ({before.size:,} weights)")
    right.hist(after, bins=edges, color="tab:red")
    right.set_title(f"{layer_name}: after prune + retrain ({after.size:,} survivors)")
    for ax in (left, right):
        ax.set_xlabel("Weight value")
        ax.set_ylabel("Count")
        ax.set_xlim(low, high)
        ax.grid(alpha=0.3)
    return _finish(figure, path, caption or (
        f"Measured: the values of {layer_name}'s weights, same bins in both panels; after "
        "pruning, only the surviving weights (cf. Han et al. 2015, Fig. 7: bimodal, wider)."
    ))


def plot_mask(mask: np.ndarray, path=None, title: str = "mask",
              image_shape: tuple[int, int] = (28, 28),
              caption: str | None = None) -> PaperFigure:
    """The paper's Fig. 4: a first-layer ``weight_mask`` (outputs x inputs, e.g. 300 x 784
    for LeNet-300-100's fc1) drawn as an image, kept connections dark, beside the number of
    surviving connections of each input pixel reshaped to ``image_shape``. The bands of the
    first panel (one per image row) and the bright centre of the second show that the survivors
    connect to the centre of the digit images.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"plot_mask: mask must be 2-D (outputs, inputs), got shape {mask.shape}")
    if mask.shape[1] != int(np.prod(image_shape)):
        raise ValueError(
            f"plot_mask: the mask has {mask.shape[1]} inputs, image_shape {image_shape} has "
            f"{int(np.prod(image_shape))} pixels"
        )
    kept = mask != 0
    figure, (left, right) = _new_figure(12, 4.5, columns=2)
    figure.subplots_adjust(wspace=0.3)
    left.imshow(kept, cmap="Greys", aspect="auto", interpolation="nearest")
    left.set_xlabel(
        f"Input pixel (row-major: {image_shape[0]} bands of {image_shape[1]} pixels)"
    )
    left.set_ylabel("Output neuron")
    left.set_title(f"{title}: kept connections ({kept.mean():.1%})")
    counts = kept.sum(axis=0).reshape(image_shape)
    image = right.imshow(counts, cmap="viridis", interpolation="nearest")
    right.set_title("Surviving connections per input pixel")
    right.set_xlabel("Pixel column")
    right.set_ylabel("Pixel row")
    figure.colorbar(image, ax=right, label="connections kept")
    return _finish(figure, path, caption or (
        "Measured: which connections of the layer survive pruning (cf. Han et al. 2015, Fig. 4)."
    ))


def plot_compression_curve(points: list[dict], path=None,
                           title: str = "Test error vs compression",
                           baseline_error: float | None = None,
                           paper_points: list[dict] | None = None,
                           caption: str | None = None,
                           error_label: str = "Test error (%)") -> PaperFigure:
    """Beyond the paper: test error against compression (dense / kept parameters) for iterative
    prune-retrain runs.

    Each point is a dict with ``compression`` (x, drawn on a log axis), ``error`` (a fraction)
    and optionally ``series`` (points of one series form one curve; default ``"minprune"``).
    ``baseline_error`` is drawn as a horizontal dashed line; when None, the error of a point with
    compression 1 is used if there is one. ``paper_points`` (``{compression, error, label}``) are
    drawn as single marked points, e.g. the paper's 12x at 1.59%; one with a ``series`` takes
    that curve's colour (a star, smaller for each later curve, so that stars at one spot show as
    nested rings). ``error_label`` names the y axis (e.g. when the curves are validation
    errors).
    """
    points = list(points)
    if not points:
        raise ValueError("plot_compression_curve: no points given")
    for point in points:
        if "compression" not in point or "error" not in point:
            raise ValueError(
                f"plot_compression_curve: each point needs 'compression' and 'error', got {point}"
            )
        if not point["compression"] > 0:
            raise ValueError(
                f"plot_compression_curve: compression must be > 0, got {point['compression']}"
            )
    if baseline_error is None:
        dense = [point["error"] for point in points if point["compression"] == 1]
        baseline_error = dense[0] if dense else None
    series: dict[str, list] = {}
    for point in points:
        series.setdefault(point.get("series", "minprune"), []).append(
            (point["compression"], point["error"])
        )
    figure, ax = _new_figure(7, 5)
    colors = {}
    for index, (label, pairs) in enumerate(series.items()):
        array = _pairs(pairs, f"plot_compression_curve: series {label!r}")
        colors[label] = f"C{index % 10}"
        ax.plot(array[:, 0], 100 * array[:, 1], marker="o", label=label, color=colors[label])
    if baseline_error is not None:
        ax.axhline(100 * baseline_error, color="grey", linestyle="--", linewidth=0.8,
                   label="_baseline")
    others = len(colors)
    for point in paper_points or []:
        if point.get("series") in colors:
            rank = list(colors).index(point["series"])
            style = {"color": colors[point["series"]], "s": max(240 - 50 * rank, 60),
                     "edgecolors": "black", "linewidths": 0.6}
        else:
            style, others = {"color": f"C{others % 10}", "s": 120}, others + 1
        ax.scatter([point["compression"]], [100 * point["error"]], marker="*", zorder=3,
                   label=point.get("label", "paper"), **style)
    ax.set_xscale("log")
    ax.set_xlabel("Compression (dense parameters / kept parameters, log scale)")
    ax.set_ylabel(error_label)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _finish(figure, path, caption or (
        "Measured: test error after each prune + retrain round"
        + ("; dashed: the dense baseline." if baseline_error is not None else ".")
    ))
