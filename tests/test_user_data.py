"""A new user's own data (issue 24): an MLP 64-128-64-10 on 8x8 images, fed as an (images,
labels) tuple or as a Dataset, gives the same numbers at every public entry; data that cannot be
right (raw pixels, NaN, labels past the model's outputs) is named before training starts."""

import warnings
from collections import OrderedDict

import numpy as np
import pytest

import minprune as mp
from minprune import nn
from minprune.data import Dataset
from minprune.data.entry import DataWarning, as_dataset
from minprune.prune import (
    gradual_prune,
    iterative_prune,
    layer_table,
    network_surgery,
    retrain,
    sensitivity_analysis,
)
from minprune.training.fit import TrainingDiverged

PHASE = mp.Phase(epochs=1, lr=0.05, batch_size=50, lr_policy="fixed")
QUIET = dict(progress=False, log=None)


def users_mlp(seed=0):
    mp.manual_seed(seed)
    return nn.Sequential(OrderedDict(
        flatten=nn.Flatten(), fc1=nn.Linear(64, 128), relu1=nn.ReLU(), fc2=nn.Linear(128, 64),
        relu2=nn.ReLU(), fc3=nn.Linear(64, 10)))


def digits(n=300, seed=0):
    """8x8 images in [0, 1] where class k lights up a pixel pattern of its own."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.int64)
    images = rng.random((n, 1, 8, 8), dtype=np.float32) * 0.3
    images[np.arange(n), 0, labels % 8, labels // 8 * 4] += 1.0
    return images, labels


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_evaluate_on_a_tuple_gives_the_datasets_metrics_not_per_two_images():
    pair = digits()
    on_tuple = mp.evaluate(users_mlp(), pair)
    assert on_tuple == mp.evaluate(users_mlp(), Dataset(*pair))
    assert 0 <= on_tuple["accuracy"] <= 1 and 0 <= on_tuple["error"] <= 1
    assert on_tuple["loss"] < 10


def test_fit_phase_on_tuples_trains_exactly_as_on_datasets():
    train, test = digits(), digits(100, seed=1)
    a, b = users_mlp(), users_mlp()
    on_tuples = mp.fit_phase(a, train, test, PHASE, **QUIET)
    on_datasets = mp.fit_phase(b, Dataset(*train), Dataset(*test), PHASE, **QUIET)
    assert same_state(a, b)
    assert [r["test_error"] for r in on_tuples] == [r["test_error"] for r in on_datasets]
    assert 0 <= on_tuples[-1]["test_error"] <= 1


def test_every_pruning_entry_takes_a_tuple_like_its_dataset():
    train, test = digits(), digits(100, seed=1)
    for run in (
        lambda m, tr, te: retrain(m, tr, te, PHASE, **QUIET),
        lambda m, tr, te: iterative_prune(m, tr, te, [{"keep_ratio": 0.5}], PHASE, **QUIET),
        lambda m, tr, te: gradual_prune(m, tr, te, PHASE, final_keep_ratio=0.5, every=2,
                                        **QUIET),
        lambda m, tr, te: network_surgery(m, tr, te, PHASE, keep_ratio=0.5, **QUIET),
    ):
        a, b = users_mlp(), users_mlp()
        on_tuples = run(a, train, test)
        on_datasets = run(b, Dataset(*train), Dataset(*test))
        assert same_state(a, b)
        assert len(on_tuples) == len(on_datasets)
    model = users_mlp()
    assert layer_table(model, test) == layer_table(model, Dataset(*test))
    rows = sensitivity_analysis(model, test, keep_ratios=[0.5])
    assert rows == sensitivity_analysis(model, Dataset(*test), keep_ratios=[0.5])
    assert all(0 <= row["accuracy"] <= 1 for row in rows)


@pytest.mark.parametrize("data", [[np.zeros((3, 64))], (np.zeros((3, 64)),) * 3, {"x": 1}, 7])
def test_data_that_is_no_dataset_is_refused_naming_the_argument(data):
    with pytest.raises(TypeError, match="evaluate: dataset.*expected a Dataset, an ImageFolder "
                                        r"or an \(images, labels\) pair"):
        mp.evaluate(users_mlp(), data)


def test_a_tuple_of_lists_or_unequal_lengths_is_refused_naming_the_argument():
    images, labels = digits(10)
    with pytest.raises(TypeError, match="fit_phase: train_set: images must be a NumPy array, "
                                        "got list"):
        mp.fit_phase(users_mlp(), (images.tolist(), labels), None, PHASE, **QUIET)
    with pytest.raises(ValueError, match="fit: train_set: Dataset has 10 images but 9 labels"):
        mp.fit(users_mlp(), mp.optim.SGD(users_mlp().parameters(), lr=0.1),
               (images, labels[:9]), epochs=1, **QUIET)


def test_uint8_images_warn_to_divide_by_255():
    images, labels = digits()
    raw = (images.clip(0, 1) * 255).astype(np.uint8)
    with pytest.warns(DataWarning, match=r"uint8 with values 0\.\.255.*divide by 255 and cast "
                                         "to float32"):
        mp.evaluate(users_mlp(), (raw, labels))


def test_float_images_in_0_to_255_warn_but_centred_or_scaled_images_do_not():
    images, labels = digits()
    with pytest.warns(DataWarning, match=r"float32 with values 0\.\d+\.\.255.*raw 0\.\.255 pixels"):
        as_dataset((images.clip(0, 1) * 255, labels), "train_set")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        as_dataset((images, labels), "train_set")  # MNIST-like, in [0, 1]
        as_dataset(((images - 0.5) * 100, labels), "train_set")  # mean-subtracted, Caffe-like


def test_a_checked_dataset_warns_once_through_nested_entries():
    images, labels = digits()
    raw = Dataset((images * 255).astype(np.uint8), labels)
    with pytest.warns(DataWarning) as caught:
        mp.fit_phase(users_mlp(), raw, raw, PHASE, **QUIET)  # fit_phase -> fit -> evaluate
    assert len([w for w in caught if issubclass(w.category, DataWarning)]) == 1


def test_nan_images_are_refused_at_the_entry_naming_the_sample():
    images, labels = digits()
    images[7, 0, 3, 3] = np.nan
    model = users_mlp()
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"fit_phase: train_set: the images hold 1 NaN and 0 "
                                         "infinite values.*sample 7"):
        mp.fit_phase(model, (images, labels), None, PHASE, **QUIET)
    with pytest.raises(ValueError, match="evaluate: dataset: the images hold"):
        mp.evaluate(model, (images, labels))
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


def test_a_nan_loss_on_nan_images_blames_the_data_not_the_learning_rate():
    images, labels = digits()
    data = Dataset(images, labels)
    mp.evaluate(users_mlp(), data)  # checked, clean
    images[:] = np.nan  # ...and spoiled afterwards, in place
    with pytest.raises(TrainingDiverged, match="images hold 3200 NaN.*the data, not the "
                                               "learning rate"):
        mp.fit_phase(users_mlp(), data, None, PHASE, **QUIET)


@pytest.mark.parametrize("labels, message", [
    (np.arange(300) % 10 * 1.0, "labels have dtype float64; expected integer class indices"),
    (np.arange(300) % 10 - 1, "label -1 is negative"),
])
def test_labels_that_are_not_class_indices_are_refused(labels, message):
    images, _ = digits()
    with pytest.raises((TypeError, ValueError), match=f"fit_phase: train_set: {message}"):
        mp.fit_phase(users_mlp(), (images, labels), None, PHASE, **QUIET)


def test_labels_past_the_models_outputs_are_refused_before_any_step():
    images, labels = digits()
    labels = labels.copy()
    labels[-1] = 10  # the last batch: cross_entropy would only see it at the end of the epoch
    model = users_mlp()
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"fit: train_set: label 10 is out of range for a model "
                                         r"with 10 outputs .*sample 299.*\[0, 10\)"):
        mp.fit_phase(model, (images, labels), None, PHASE, **QUIET)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="evaluate: dataset: label 10 is out of range"):
        mp.evaluate(model, (images, labels))


def test_evaluate_on_an_empty_dataset_says_so():
    with pytest.raises(ValueError, match="evaluate: dataset is empty"):
        mp.evaluate(users_mlp(), (np.zeros((0, 1, 8, 8), np.float32), np.zeros(0, np.int64)))


class _Terminal:
    """A stand-in for stderr: a terminal or a pipe, remembering what was written."""

    def __init__(self, is_terminal):
        self.is_terminal, self.text = is_terminal, ""

    def isatty(self):
        return self.is_terminal

    def write(self, text):
        self.text += text

    def flush(self):
        pass


ENTRIES = {
    "fit": lambda m, tr, te, **kw: mp.fit(
        m, mp.optim.SGD(m.parameters(), lr=0.05), tr, te, epochs=1, batch_size=50, **kw),
    "fit_phase": lambda m, tr, te, **kw: mp.fit_phase(m, tr, te, PHASE, **kw),
    "retrain": lambda m, tr, te, **kw: retrain(m, tr, te, PHASE, **kw),
    "iterative_prune": lambda m, tr, te, **kw: iterative_prune(
        m, tr, te, [{"keep_ratio": 0.5}], PHASE, **kw),
    "gradual_prune": lambda m, tr, te, **kw: gradual_prune(
        m, tr, te, PHASE, final_keep_ratio=0.5, **kw),
    "network_surgery": lambda m, tr, te, **kw: network_surgery(
        m, tr, te, PHASE, keep_ratio=0.5, **kw),
}


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("is_terminal", [True, False])
def test_progress_bars_by_default_only_on_a_terminal(entry, is_terminal, monkeypatch):
    stderr = _Terminal(is_terminal)
    monkeypatch.setattr("sys.stderr", stderr)
    ENTRIES[entry](users_mlp(), digits(), digits(100, seed=1), log=None)
    assert ("epoch 1/1" in stderr.text) == is_terminal, stderr.text


@pytest.mark.parametrize("entry", ENTRIES)
def test_log_none_is_quiet_and_explicit_progress_is_obeyed(entry, capsys, monkeypatch):
    stderr = _Terminal(False)
    monkeypatch.setattr("sys.stderr", stderr)
    ENTRIES[entry](users_mlp(), digits(), digits(100, seed=1), log=None, progress=True)
    assert capsys.readouterr().out == ""
    assert "epoch 1/1" in stderr.text  # progress=True draws into a pipe as it always did
    lines = []
    ENTRIES[entry](users_mlp(), digits(), digits(100, seed=1), log=lines.append, progress=False)
    assert any(line.startswith("epoch 1/1") for line in lines)
