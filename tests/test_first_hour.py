"""A new user's first hour, end to end, on a small synthetic set (issue: "A new user's first
hour"): their own MLP (64-128-64-10 on 8 x 8 images) from NumPy arrays, trained, pruned in
falling rounds, exported with its architecture, reloaded and compiled, predictions equal to the
masked dense model's; a PyTorch Sequential brought in, pruned, retrained, sent back, its masks
holding through more PyTorch steps; and the first mistakes a user makes, each told what to do."""

import warnings
from collections import OrderedDict

import numpy as np
import pytest

import minprune as mp

QUIET = dict(log=None, progress=False)


def _arrays(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.random((n, 64), dtype=np.float32)
    labels = images[:, :60].reshape(-1, 10, 6).sum(axis=2).argmax(axis=1)
    return images, labels


def _mlp():
    return mp.nn.Sequential(OrderedDict(
        fc1=mp.nn.Linear(64, 128), relu1=mp.nn.ReLU(),
        fc2=mp.nn.Linear(128, 64), relu2=mp.nn.ReLU(),
        fc3=mp.nn.Linear(64, 10)))


def test_own_model_trained_pruned_exported_reloaded_and_compiled(tmp_path):
    train, test = _arrays(2000, 0), _arrays(1000, 1)  # plain (images, labels) pairs
    mp.manual_seed(0)
    model = _mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing in a correct first hour warns
        mp.fit_phase(model, train, test, mp.Phase(epochs=5, lr=0.1, lr_policy="fixed"), **QUIET)
        dense_error = mp.evaluate(model, test)["error"]
        records = mp.prune.iterative_prune(
            model, train, test, mp.prune.rounds_to(keep_ratio=0.1, rounds=3),
            mp.Phase(epochs=2, lr=0.01, lr_policy="fixed"), **QUIET)
    assert 0.0 <= dense_error < 0.5  # a metric, not nonsense
    assert [round(r["density"], 2) for r in records] == [0.46, 0.22, 0.1]
    assert mp.prune.density(model) == pytest.approx(0.1, abs=0.005)

    path = tmp_path / "mine.npz"
    mp.sparse.save_sparse(path, model, input_shape=(64,))
    loaded = mp.sparse.load_model(path)
    network = mp.inference.compile_model(path)
    with mp.no_grad():
        expected = model.eval()(mp.Tensor(test[0])).data
        again = loaded.eval()(mp.Tensor(test[0])).data
    np.testing.assert_array_equal(again, expected)
    assert mp.prune.density(loaded) == mp.prune.density(model)
    np.testing.assert_allclose(network(test[0]), expected, rtol=1e-4, atol=1e-5)
    assert (network.predict(test[0]) == expected.argmax(axis=1)).all()


def test_a_pytorch_sequential_comes_in_is_pruned_retrained_and_goes_back():
    torch = pytest.importorskip("torch")
    from minprune.interop.torch import from_torch, to_torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(OrderedDict(
        fc1=torch.nn.Linear(64, 32), relu=torch.nn.ReLU(), fc2=torch.nn.Linear(32, 10)))
    model = from_torch(net)
    mp.prune.keep_ratio_prune(model, 0.2)
    train = _arrays(512, 2)
    mp.prune.retrain(model, train, None, mp.Phase(epochs=1, lr=0.01, lr_policy="fixed"),
                     **QUIET)
    masks = {name: layer.weight_mask.copy()
             for name, layer in mp.prune.layers_by_weight_name(model).items()}
    back = to_torch(model)
    optimizer = torch.optim.SGD(back.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    images, labels = (torch.tensor(a) for a in train)
    for _ in range(5):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(back(images), labels).backward()
        optimizer.step()
    for name in ("fc1", "fc2"):
        weight = getattr(back, name).weight.detach().numpy()  # weight_orig * weight_mask
        assert np.all(weight[masks[f"{name}.weight"] == 0] == 0.0)
    returned = from_torch(back)
    for name, layer in mp.prune.layers_by_weight_name(returned).items():
        np.testing.assert_array_equal(layer.weight_mask, masks[name])


def _model():
    mp.manual_seed(0)
    return _mlp()


@pytest.mark.parametrize("mistake, error, message", [
    (lambda m: mp.evaluate(m, (np.zeros((5, 63), np.float32), np.zeros(5, np.int64))),
     ValueError, "63"),
    (lambda m: mp.evaluate(m, (np.zeros((5, 64), np.float32), np.full(5, 12))),
     ValueError, "12"),
    (lambda m: mp.prune.threshold_prune(m, {"fc9.weight": 1.0, "*": 1.0}), ValueError,
     "fc9.weight"),
    (lambda m: mp.prune.keep_ratio_prune(m, 1.5), ValueError, "1.5"),
    (lambda m: mp.Phase(lr_policy="step"), ValueError, "gamma and step_size"),
    (lambda m: mp.Phase(lr=-0.1), ValueError, "lr"),
    (lambda m: m.load_state_dict("dense.ckpt"), TypeError, "path"),
    (lambda m: mp.inference.compile_model(m, input_shape=(64,)).predict(np.zeros(64)),
     ValueError, "x\\[None\\]"),
    (lambda m: mp.prune.iterative_prune(m, _arrays(64, 0), None, [{"keep_ratio": 0.5}],
                                        mp.Phase(epochs=1), **QUIET), TypeError, "test_set"),
    (lambda m: mp.prune.iterative_prune(m, _arrays(64, 0), _arrays(64, 1), {"keep_ratio": 0.5},
                                        mp.Phase(epochs=1), **QUIET), TypeError,
     "rounds must be a list"),
])
def test_first_mistakes_are_told_what_to_do(mistake, error, message):
    with pytest.raises(error, match=message):
        mistake(_model())


def test_first_silent_mistakes_now_warn():
    model = _model()
    raw = (np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8),
           np.zeros(64, np.int64))
    with pytest.warns(mp.data.DataWarning, match="255"):
        mp.evaluate(model, raw)
    dense = model.state_dict()
    mp.prune.keep_ratio_prune(model, 0.1)
    with pytest.warns(UserWarning, match="density"):
        model.load_state_dict(dense)
    with pytest.warns(UserWarning, match="nothing|pruned nothing"):
        mp.prune.iterative_prune(_model(), _arrays(64, 0), _arrays(64, 1),
                                 [{"keep_ratio": 0.5}] * 2, mp.Phase(epochs=1, lr=0.01,
                                                                     lr_policy="fixed"), **QUIET)
