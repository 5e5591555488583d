"""Numeric faults: a diverging run stops with its last good state intact and never saves NaN."""

import numpy as np
import pytest
from toy_data import blobs

import minprune
from minprune.nn import models
from minprune.prune import iterative_prune, keep_ratio_prune
from minprune.sparse.export import save_sparse
from minprune.training.checkpoint import load_checkpoint, save_checkpoint
from minprune.training.fit import TrainingDiverged, fit
from minprune.training.phase import Phase

QUIET = dict(progress=False, log=lambda message: None)


def _trained():
    minprune.manual_seed(0)
    model = models.lenet_300_100()
    fit(model, Phase(lr=0.05).optimizer(model.parameters()), blobs(), epochs=1, batch_size=32,
        **QUIET)
    return model


def _blow_up(model):
    """Round 2: prune, then scale fc1's survivors so far that retraining diverges."""
    pruned_at = keep_ratio_prune(model, 0.25)
    model.fc1.weight.data[...] *= 1e30
    return pruned_at


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_round_that_diverges_stops_there_and_keeps_the_rounds_before(tmp_path):
    model = _trained()
    phase = Phase(epochs=1, lr=0.005, batch_size=32, lr_policy="fixed")
    rounds = [lambda m: keep_ratio_prune(m, 0.5), _blow_up]
    with pytest.raises(TrainingDiverged, match="round 2/2 diverged while retraining"):
        iterative_prune(model, blobs(), blobs(64, seed=1), rounds, phase, state_dir=tmp_path,
                        plan=["keep 0.5", "keep 0.25 and blow up"], **QUIET)
    state, _, meta = load_checkpoint(tmp_path / "rounds.npz")  # refuses NaN: none was saved
    assert [record["round"] for record in meta["records"]] == [1]
    assert state["fc1.weight_mask"].mean() == pytest.approx(0.5, abs=0.01)
    for path in tmp_path.glob("*.npz"):
        load_checkpoint(path)


def test_nan_weights_are_never_saved():
    weights = {"fc.weight": np.array([[np.nan, 1.0]], np.float32)}
    with pytest.raises(ValueError, match="refusing to save NaN or infinite values"):
        save_checkpoint("never-written.npz", weights, epoch=1)
    with pytest.raises(ValueError, match="NaN or infinite values; refusing to save"):
        save_sparse("never-written.sparse", {**weights,
                                              "fc.weight_mask": np.ones((1, 2), np.float32)})
