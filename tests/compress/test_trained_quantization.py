"""Trained quantization (Deep Compression Sec. 3.2, Eq. 3): each centroid moves by the sum of
its weights' gradients; clusters, masks and sharing hold; a resumed run is bit-identical."""

import numpy as np
import pytest

import minprune as mp
from minprune.compress.trained_quantization import (
    CentroidSGD,
    centroid_gradients,
    retrain_quantized,
)
from minprune.compress.weight_sharing import share_weights


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return mp.data.Dataset(rng.random((n, 1, 28, 28), dtype=np.float32),
                           rng.integers(0, 10, n))


def _shared_model(bits=2):
    mp.manual_seed(0)
    model = mp.models.lenet_300_100()
    mp.prune.keep_ratio_prune(model, {"*": 0.2})
    return model, share_weights(model, bits)


def test_centroid_gradient_is_the_sum_over_its_cluster():
    gradient = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    survivors = np.array([0, 2, 3, 5])  # weights 1, 3, 4, 6
    assignments = np.array([1, 0, 1, 1])
    assert centroid_gradients(gradient, survivors, assignments, 3).tolist() == [3.0, 11.0, 0.0]


def test_one_step_moves_each_centroid_by_lr_times_its_summed_gradient():
    model, codebooks = _shared_model()
    before = {n: c.centroids.copy() for n, c in codebooks.items()}
    optimizer = CentroidSGD(model, codebooks, lr=0.01, momentum=0.0)
    images, labels = _data().images[:32], _data().labels[:32]
    optimizer.zero_grad()
    mp.functional.cross_entropy(model(images), labels).backward()
    layers = mp.prune.layers_by_weight_name(model)
    expected = {}
    for name, codebook in codebooks.items():
        survivors = np.flatnonzero(layers[name].weight_mask)
        summed = centroid_gradients(layers[name].weight.grad, survivors, codebook.assignments,
                                    codebook.centroids.size)
        expected[name] = before[name] - 0.01 * summed
    optimizer.step()
    for name, codebook in codebooks.items():
        np.testing.assert_allclose(codebook.centroids, expected[name], rtol=1e-5, atol=1e-7)
        assert not np.array_equal(codebook.centroids, before[name])


def test_retraining_keeps_clusters_masks_and_sharing():
    model, codebooks = _shared_model()
    masks = {n: l.weight_mask.copy() for n, l in mp.prune.layers_by_weight_name(model).items()}
    assignments = {n: c.assignments.copy() for n, c in codebooks.items()}
    retrain_quantized(model, codebooks, _data(), None, mp.Phase(epochs=1, lr=0.001),
                      log=None)
    for name, layer in mp.prune.layers_by_weight_name(model).items():
        np.testing.assert_array_equal(layer.weight_mask, masks[name])
        np.testing.assert_array_equal(codebooks[name].assignments, assignments[name])
        survivors = np.flatnonzero(masks[name])
        np.testing.assert_array_equal(layer.weight.data.reshape(-1)[survivors],
                                      codebooks[name].values())
        assert not layer.weight.data[masks[name] == 0].any()


def test_a_resumed_run_is_bit_identical(tmp_path):
    phase = mp.Phase(epochs=2, lr=0.001)
    model, codebooks = _shared_model()
    retrain_quantized(model, codebooks, _data(), None, phase, log=None)
    again, again_codebooks = _shared_model()
    retrain_quantized(again, again_codebooks, _data(), None, mp.Phase(epochs=1, lr=0.001),
                      checkpoint=tmp_path / "q.npz", log=None)
    resumed, resumed_codebooks = _shared_model()
    retrain_quantized(resumed, resumed_codebooks, _data(), None, phase,
                      checkpoint=tmp_path / "q.npz", log=None)
    for name, codebook in codebooks.items():
        np.testing.assert_array_equal(resumed_codebooks[name].centroids, codebook.centroids)
    for (name, p), (_, q) in zip(model.named_parameters(), resumed.named_parameters(),
                                 strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)


def test_a_checkpoint_of_other_bits_is_refused(tmp_path):
    model, codebooks = _shared_model(bits=2)
    retrain_quantized(model, codebooks, _data(), None, mp.Phase(epochs=1, lr=0.001),
                      checkpoint=tmp_path / "q.npz", log=None)
    other, other_codebooks = _shared_model(bits=3)
    with pytest.raises(ValueError, match="trained_quantization"):
        retrain_quantized(other, other_codebooks, _data(), None, mp.Phase(epochs=2, lr=0.001),
                          checkpoint=tmp_path / "q.npz", log=None)


def test_a_codebook_for_another_mask_is_refused():
    model, codebooks = _shared_model()
    mp.prune.keep_ratio_prune(model, {"fc1.weight": 0.1, "*": 1.0})
    with pytest.raises(ValueError, match="fc1.weight keeps .* its codebook assigns"):
        CentroidSGD(model, codebooks, lr=0.1)
