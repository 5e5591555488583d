"""A resumed run is the run that was asked for: saved state from another run is refused.

Every saved state carries a fingerprint (`minprune.training.fingerprint`); these tests change one
setting at a time and check that the resume is refused, that the message names the setting, and that
it says how to start afresh -- and that the same run, or the same run asked for more epochs,
resumes. """

import json

import numpy as np
import pytest
from fake_mnist import write_fake_mnist
from toy_data import blobs

import minprune
from minprune.commands.cli import main
from minprune.nn import models
from minprune.training.fingerprint import RunMismatchError
from minprune.training.fit import fit
from minprune.training.phase import Phase
from minprune.training.schedules import LRPolicy

QUIET = dict(progress=False, log=lambda message: None)


def _model(seed=0):
    minprune.manual_seed(seed)
    return models.lenet_300_100()


def _fit(tmp_path, model=None, *, epochs=1, train=None, lr=0.05, batch_size=32, seed=0):
    model = model or _model()
    optimizer = Phase(lr=lr).optimizer(model.parameters())
    return fit(model, optimizer, train or blobs(), epochs=epochs, batch_size=batch_size,
               lr_policy=LRPolicy("fixed", lr), seed=seed, checkpoint=tmp_path / "ck.npz",
               **QUIET)


@pytest.mark.parametrize("change, differs", [
    (dict(model=None, lr=0.1), "lr_policy"),
    (dict(batch_size=16), "batch_size"),
    (dict(seed=3), "seed"),
    (dict(train=blobs(seed=7)), "train_data"),
    (dict(model="other init"), "start_state"),
])
def test_fit_refuses_a_checkpoint_from_another_run(tmp_path, change, differs):
    _fit(tmp_path)
    before = (tmp_path / "ck.npz").read_bytes()
    if change.get("model") == "other init":
        change = {**change, "model": _model(seed=5)}
    with pytest.raises(RunMismatchError, match=rf"ck.npz was written by a different run; what "
                                               rf"differs: {differs}: saved .* delete .*ck.npz"):
        _fit(tmp_path, **change)
    assert (tmp_path / "ck.npz").read_bytes() == before  # nothing lost


def test_fit_resumes_the_same_run_and_extends_it(tmp_path):
    _fit(tmp_path, epochs=1)
    history = _fit(tmp_path, epochs=2)  # the same run, asked for one epoch more
    assert [record["epoch"] for record in history] == [1, 2]
    straight = _model()
    optimizer = Phase(lr=0.05).optimizer(straight.parameters())
    fit(straight, optimizer, blobs(), epochs=2, batch_size=32, lr_policy=LRPolicy("fixed", 0.05),
        **QUIET)
    resumed = _model()
    _fit(tmp_path, resumed, epochs=2)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(),
                                 strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.fixture
def trained(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    write_fake_mnist(folder, n_train=96, n_test=40)
    monkeypatch.setenv("MINPRUNE_DATA", str(folder))
    run = tmp_path / "run"
    assert main(["train", "--model", "lenet-300-100", "--epochs", "1", "--out", str(run),
                 "--no-progress", "--batch-size", "48"]) == 0
    return run / "checkpoint.npz"


def _prune(checkpoint, out, *options):
    return main(["prune", "--model", "lenet-300-100", "--checkpoint", str(checkpoint), "--out",
                 str(out), "--rounds", "2", "--retrain-epochs", "1", "--no-progress", *options])


def test_prune_refuses_rounds_saved_at_another_quality(trained, tmp_path, capsys):
    """The issue's example: --quality 2.0 after --quality 1.3 into the same folder."""
    out = tmp_path / "pruned"
    assert _prune(trained, out, "--quality", "1.3") == 0
    first = json.loads((out / "summary.json").read_text())
    assert _prune(trained, out, "--quality", "2.0") == 2
    error = capsys.readouterr().err
    assert "rounds.npz was written by a different run; what differs: plan" in error
    assert '"quality": 1.3' in error and '"quality": 2.0' in error and "delete" in error
    assert json.loads((out / "summary.json").read_text()) == first  # nothing overwritten
    assert _prune(trained, out, "--quality", "1.3") == 0  # the same run resumes
    assert "2 of 2 rounds done" in capsys.readouterr().out


def test_prune_refuses_rounds_saved_from_another_parent(trained, tmp_path, capsys):
    out = tmp_path / "pruned"
    assert _prune(trained, out, "--keep-ratio", "0.5") == 0
    other = tmp_path / "other"
    assert main(["train", "--model", "lenet-300-100", "--epochs", "1", "--out", str(other),
                 "--no-progress", "--batch-size", "32"]) == 0
    assert _prune(other / "checkpoint.npz", out, "--keep-ratio", "0.5") == 2
    assert "what differs: start_state" in capsys.readouterr().err
