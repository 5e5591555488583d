"""Per-layer keep ratios for a whole-network compression: the size asked for, shared among layers
by the exponent, and bad requests refused."""

import numpy as np
import pytest

from minprune.base.paper import PAPER_KEEP_RATIOS
from minprune.nn import models
from minprune.prune import (
    compression_of,
    keep_ratio_prune,
    keep_ratios_for_compression,
    summary_row,
)

TABLE2 = PAPER_KEEP_RATIOS["lenet-300-100"]


@pytest.mark.parametrize("compression", [12, 24, 60, 80, 200])
@pytest.mark.parametrize("exponent", [0.0, 0.25, 0.5])
def test_the_pruned_network_has_at_least_the_compression_within_one_weight(compression,
                                                                           exponent):
    model = models.lenet_300_100()
    ratios = keep_ratios_for_compression(model, compression, TABLE2, exponent)
    keep_ratio_prune(model, ratios)
    row = summary_row(0.0, 0.0, model)
    assert row["compression"] == pytest.approx(compression_of(model, ratios))
    assert compression <= row["compression"]
    assert row["parameters_before"] / (row["parameters_after"] + 1) < compression


def test_exponent_zero_scales_table_2_and_larger_exponents_favour_small_layers():
    model = models.lenet_300_100()
    uniform = keep_ratios_for_compression(model, 12, TABLE2, 0.0)
    factors = [uniform[name] / TABLE2[name] for name in TABLE2]
    np.testing.assert_allclose(factors, factors[0], rtol=0.01)  # whole weights: fc3 has 1,000
    assert factors[0] == pytest.approx(1.0, abs=0.01)  # Table 2 itself is 12x
    shifted = keep_ratios_for_compression(model, 60, TABLE2, 0.5)
    assert shifted["fc3.weight"] / shifted["fc1.weight"] == pytest.approx(
        TABLE2["fc3.weight"] / TABLE2["fc1.weight"] * (784 * 300 / 1000) ** 0.5, rel=0.01)
    sizes = {"fc1.weight": 784 * 300, "fc2.weight": 300 * 100, "fc3.weight": 1000}
    for name, ratio in shifted.items():  # a whole number of weights per layer
        assert ratio * sizes[name] == pytest.approx(round(ratio * sizes[name]), abs=1e-9)
    capped = keep_ratios_for_compression(model, 20, TABLE2, 1.0)
    assert capped["fc3.weight"] == 1.0  # at most every weight


@pytest.mark.parametrize("compression, exponent, message", [
    (0.5, 0.0, r"compression must be in \[1, 6.*got 0.5"),
    (1e6, 0.0, "compression must be in"),
    (60, -1.0, "exponent must be a finite number >= 0, got -1.0"),
    (60, float("nan"), "exponent must be a finite number"),
])
def test_bad_requests_are_refused(compression, exponent, message):
    with pytest.raises(ValueError, match=message):
        keep_ratios_for_compression(models.lenet_300_100(), compression, TABLE2, exponent)
    with pytest.raises(ValueError, match="base ratios name"):
        keep_ratios_for_compression(models.lenet_300_100(), 12, {"fc1.weight": 0.1})
