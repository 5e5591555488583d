"""Figures (paper Figs. 4-6 and beyond): each returns a Figure that draws what it was given,
shows inline in a notebook, and writes a PNG only when given a path."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from minprune.prune import figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def curves_of(ax):
    """The lines a reader sees in the legend (helper lines are labelled ``_...``)."""
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")]


def caption_of(figure):
    return figure.texts[-1].get_text()


def test_tradeoff_draws_one_curve_per_variant(tmp_path):
    curves = {
        label: [(0.9, 0.02 * i), (0.5, 0.0), (0.7, 0.01 * i)]
        for i, label in enumerate(figures.TRADEOFF_VARIANTS)
    }
    figure = figures.plot_tradeoff(curves, tmp_path / "fig5.png", paper_note="paper: 2x free")
    assert_png(tmp_path / "fig5.png")
    caption = caption_of(figure)
    ax = figure.axes[0]
    lines = curves_of(ax)
    assert [line.get_label() for line in lines] == list(curves)
    np.testing.assert_allclose(lines[1].get_xdata(), [50, 70, 90])  # sorted, in percent
    np.testing.assert_allclose(lines[1].get_ydata(), [0, 1, 2])
    assert ax.yaxis_inverted()  # accuracy loss grows downwards, as in the paper
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert "Measured" in caption
    assert any("paper: 2x free" in text.get_text() for text in ax.texts)


def test_tradeoff_draws_accuracy_change_as_the_paper_does(tmp_path):
    """reproduce stores accuracy *change* (negative = lost): drawn on an upright axis it falls."""
    figure = figures.plot_tradeoff({"L2 reg w/o retrain": [(0.5, -0.001), (0.9, -0.04)]},
                                   quantity="accuracy_change")
    ax = figure.axes[0]
    assert not ax.yaxis_inverted() and "pruned - baseline" in ax.get_ylabel()
    np.testing.assert_allclose(curves_of(ax)[0].get_ydata(), [-0.1, -4.0])


def test_tradeoff_refuses_bad_curves(tmp_path):
    with pytest.raises(ValueError, match="no curves"):
        figures.plot_tradeoff({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="curve 'a'"):
        figures.plot_tradeoff({"a": [(0.5,)]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="quantity"):
        figures.plot_tradeoff({"a": [(0.5, 0.1)]}, tmp_path / "x.png", quantity="loss")


@pytest.mark.parametrize("kind", ["keep_ratio", "quality"])
def test_sensitivity_draws_one_curve_per_layer(tmp_path, kind):
    rows = [{"layer": layer, kind: level, "accuracy": 0.9 - 0.1 * level}
            for layer in ("conv1.weight", "fc1.weight", "fc2.weight") for level in (0.2, 0.6, 1.0)]
    figure = figures.plot_sensitivity(rows, tmp_path / "fig6.png", "LeNet-5",
                                      baseline_accuracy=0.9)
    assert_png(tmp_path / "fig6.png")
    ax = figure.axes[0]
    assert [line.get_label() for line in curves_of(ax)] == ["conv1", "fc1", "fc2"]
    assert ax.get_title() == "LeNet-5"
    assert ("kept" in ax.get_xlabel()) == (kind == "keep_ratio")
    assert len(ax.get_lines()) == 4  # three layers and the baseline


def test_sensitivity_refuses_mixed_rows(tmp_path):
    rows = [{"layer": "fc1", "keep_ratio": 0.5, "accuracy": 0.9},
            {"layer": "fc1", "quality": 1.0, "accuracy": 0.9}]
    with pytest.raises(ValueError, match="every row"):
        figures.plot_sensitivity(rows, tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match="no rows"):
        figures.plot_sensitivity([], tmp_path / "x.png", "t")


def test_weight_histograms_use_the_same_bins_and_only_the_survivors(tmp_path):
    rng = np.random.default_rng(0)
    before = rng.normal(size=(30, 40))
    mask = np.abs(before) > 1.0
    after = before * mask * 1.5
    figure = figures.plot_weight_histograms(before, after, tmp_path / "hist.png", "fc1",
                                            mask=mask, bins=20)
    assert_png(tmp_path / "hist.png")
    left, right = figure.axes
    assert len(left.patches) == len(right.patches) == 20
    left_edges = [patch.get_x() for patch in left.patches]
    assert left_edges == [patch.get_x() for patch in right.patches]
    assert sum(patch.get_height() for patch in left.patches) == before.size
    assert sum(patch.get_height() for patch in right.patches) == mask.sum()
    assert "fc1" in left.get_title() and "fc1" in right.get_title()
    # Without a mask, exact zeros count as pruned.
    figure = figures.plot_weight_histograms(before, after, layer_name="fc1", bins=20)
    assert sum(patch.get_height() for patch in figure.axes[1].patches) == mask.sum()


def test_weight_histograms_refuse_bad_input(tmp_path):
    with pytest.raises(ValueError, match="'before' holds no weights"):
        figures.plot_weight_histograms(np.array([]), np.ones(3), tmp_path / "x.png", "fc1")
    with pytest.raises(ValueError, match="mask shape"):
        figures.plot_weight_histograms(np.ones(3), np.ones(3), tmp_path / "x.png", "fc1",
                                       mask=np.ones(4))


def test_mask_is_drawn_with_the_per_pixel_counts(tmp_path):
    rng = np.random.default_rng(0)
    rows, columns = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    centre = ((rows - 13.5) ** 2 + (columns - 13.5) ** 2 < 60).ravel()
    mask = (rng.random((30, 784)) < 0.5) & centre  # survivors only in the image centre
    figure = figures.plot_mask(mask, tmp_path / "mask.png", "fc1")
    assert_png(tmp_path / "mask.png")
    left, right = figure.axes[:2]
    np.testing.assert_array_equal(left.get_images()[0].get_array(), mask)
    counts = right.get_images()[0].get_array()
    assert counts.shape == (28, 28)
    np.testing.assert_array_equal(counts, mask.sum(axis=0).reshape(28, 28))
    assert counts[0, 0] == 0 and counts[14, 14] > 0


def test_mask_refuses_a_shape_that_is_not_an_image(tmp_path):
    with pytest.raises(ValueError, match="784 pixels"):
        figures.plot_mask(np.ones((3, 100)), tmp_path / "x.png", "fc1")
    with pytest.raises(ValueError, match="2-D"):
        figures.plot_mask(np.ones(784), tmp_path / "x.png", "fc1")


def test_compression_curve_draws_series_baseline_and_paper_points(tmp_path):
    points = [{"compression": 1.0, "error": 0.0164, "series": "iterative"},
              {"compression": 12.0, "error": 0.0160, "series": "iterative"},
              {"compression": 4.0, "error": 0.0161, "series": "iterative"},
              {"compression": 10.0, "error": 0.02, "series": "one shot"}]
    figure = figures.plot_compression_curve(
        points, tmp_path / "sub" / "compression.png", "LeNet-300-100",
        paper_points=[{"compression": 12, "error": 0.0159, "label": "Han et al. 2015"}])
    assert_png(tmp_path / "sub" / "compression.png")
    ax = figure.axes[0]
    assert [line.get_label() for line in curves_of(ax)] == ["iterative", "one shot"]
    np.testing.assert_allclose(curves_of(ax)[0].get_xdata(), [1, 4, 12])
    baseline = [line for line in ax.get_lines() if line.get_label() == "_baseline"]
    np.testing.assert_allclose(baseline[0].get_ydata(), [1.64, 1.64])  # from compression 1
    assert ax.get_xscale() == "log"
    assert len(ax.collections) == 1  # the paper's point


def test_compression_curve_refuses_bad_points(tmp_path):
    with pytest.raises(ValueError, match="no points"):
        figures.plot_compression_curve([], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match="'compression' and 'error'"):
        figures.plot_compression_curve([{"error": 0.1}], tmp_path / "x.png", "t")
    with pytest.raises(ValueError, match="compression must be > 0"):
        figures.plot_compression_curve([{"compression": 0, "error": 0.1}], tmp_path / "x.png",
                                       "t")


def test_without_a_path_nothing_is_written_and_the_figure_shows_in_a_notebook(tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    figure = figures.plot_tradeoff({"L2 reg w/ retrain": [(0.5, 0.0), (0.9, 0.01)]})
    assert isinstance(figure, Figure)
    assert list(tmp_path.iterdir()) == []
    assert figure._repr_png_().startswith(PNG_MAGIC)  # what IPython shows inline
    for drawn in (figures.plot_sensitivity([{"layer": "fc1", "keep_ratio": 0.5, "accuracy": 0.9}]),
                  figures.plot_mask(np.ones((3, 784))),
                  figures.plot_weight_histograms(np.ones(3), np.ones(3)),
                  figures.plot_compression_curve([{"compression": 2.0, "error": 0.1}])):
        assert isinstance(drawn, Figure)
    assert list(tmp_path.iterdir()) == []


def test_ipython_displays_a_figure_as_png():
    formatters = pytest.importorskip("IPython.core.formatters")
    figure = figures.plot_mask(np.ones((3, 784)))
    data, _ = formatters.DisplayFormatter().format(figure)
    assert data["image/png"].startswith(PNG_MAGIC)
