"""fit/evaluate: learning, bit-identical resume, stopping on a diverged loss, and hooks."""

import inspect

import numpy as np
import pytest
from toy_data import blobs

import minprune
import minprune.training.fit as fit_module
from minprune import nn
from minprune.base import faults
from minprune.nn import models
from minprune.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minprune.training.fit import TrainingDiverged, evaluate, fit, sgd_step
from minprune.training.hooks import FitHook, KillPoints, process_hooks
from minprune.training.optim import SGD
from minprune.training.phase import Phase
from minprune.training.schedules import LRPolicy


def make(seed=0, dropout=0.0):
    minprune.manual_seed(seed)
    model = models.lenet_300_100(dropout=dropout)
    return model, SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)


def test_fit_learns_a_toy_problem():
    model, opt = make()
    train, test = blobs(), blobs(seed=1)
    assert evaluate(model, test)["error"] > 0.5
    history = fit(model, opt, train, test, epochs=3, batch_size=32, progress=False, log=lambda s: 0)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert history[-1]["test_error"] < 0.05


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    train = blobs()
    policy = Phase(lr=0.05).policy()  # Caffe's inv policy at a higher base rate
    options = dict(batch_size=32, lr_policy=policy, seed=7, progress=False, log=lambda s: 0)

    straight, opt = make(dropout=0.3)  # dropout: the global generator must be restored too
    fit(straight, opt, train, epochs=3, **options)

    resumed, opt = make(dropout=0.3)
    fit(resumed, opt, train, epochs=2, checkpoint=tmp_path / "ck.npz", **options)
    fresh, opt = make(dropout=0.3)  # a new process builds the same model...
    minprune.manual_seed(999)  # ...but the global generator moved: the checkpoint restores it
    messages = []
    history = fit(fresh, opt, train, epochs=3, checkpoint=tmp_path / "ck.npz",
                  **{**options, "log": messages.append})
    assert messages[0].startswith(f"resumed from {tmp_path / 'ck.npz'} at epoch 2")

    assert [r["epoch"] for r in history] == [1, 2, 3]
    for (name, a), (_, b) in zip(straight.state_dict().items(), fresh.state_dict().items(),
                                 strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_on_step_sees_every_step_and_needs_a_fingerprint_with_a_checkpoint(tmp_path):
    model, opt = make()
    steps = []
    fit(model, opt, blobs(64), epochs=2, batch_size=32, progress=False, log=lambda s: 0,
        on_step=lambda iteration, m: steps.append((iteration, m is model)))
    assert steps == [(1, True), (2, True), (3, True), (4, True)]
    with pytest.raises(ValueError, match="with on_step and a checkpoint, pass fingerprint="):
        fit(model, opt, blobs(64), epochs=1, checkpoint=tmp_path / "ck.npz",
            on_step=lambda iteration, m: None, progress=False)
    assert not (tmp_path / "ck.npz").exists()


class Counter(FitHook):
    """Counts steps, adds the count to each epoch's record, and saves it with the checkpoint."""

    def __init__(self):
        self.steps, self.checkpoints = 0, []

    def after_step(self, iteration, model):
        self.steps += 1

    def end_epoch(self, record):
        record["steps_counted"] = self.steps

    def after_checkpoint(self, path):
        self.checkpoints.append(path.name)

    def state(self):
        return {"steps_counted": self.steps}

    def load_state(self, meta):
        self.steps = meta["steps_counted"]


def test_hooks_see_steps_epochs_and_checkpoints_and_resume_with_their_state(tmp_path):
    model, opt = make()
    counter = Counter()
    history = fit(model, opt, blobs(64), epochs=1, batch_size=32, checkpoint=tmp_path / "c.npz",
                  fingerprint={"counter": 1}, hooks=[counter], progress=False, log=lambda s: 0)
    assert history[0]["steps_counted"] == 2 and counter.checkpoints == ["c.npz"]
    model, opt = make()
    resumed = Counter()
    history = fit(model, opt, blobs(64), epochs=2, batch_size=32, checkpoint=tmp_path / "c.npz",
                  fingerprint={"counter": 1}, hooks=[resumed], progress=False, log=lambda s: 0)
    assert [r["steps_counted"] for r in history] == [2, 4]  # the count came back from the file
    with pytest.raises(ValueError, match="with hooks and a checkpoint, pass fingerprint="):
        fit(model, opt, blobs(64), epochs=1, checkpoint=tmp_path / "d.npz", hooks=[Counter()],
            progress=False)


def test_a_step_function_replaces_the_sgd_step():
    model, opt = make()
    taken = []

    def step(model, optimizer, images, labels):
        taken.append(len(labels))
        return sgd_step(model, optimizer, images, labels)

    fit(model, opt, blobs(64), epochs=1, batch_size=32, step=step, progress=False,
        log=lambda s: 0)
    assert taken == [32, 32]


def test_kill_points_are_a_hook_installed_only_when_the_variable_asks(monkeypatch):
    assert "kill_point" not in inspect.getsource(fit_module)  # not written into the loop
    monkeypatch.setattr(faults, "_target", None)
    assert process_hooks() == []
    monkeypatch.setattr(faults, "_target", ("epoch", 3))
    assert [type(hook) for hook in process_hooks()] == [KillPoints]
    monkeypatch.setattr(faults, "_target", ("stage", 1))  # not a point of training
    assert process_hooks() == []


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path):
    model, opt = make()
    train = blobs()
    checkpoint = tmp_path / "ck.npz"
    # A run whose learning rate explodes after the first epoch, killed after that epoch...
    explodes = LRPolicy("step", 0.05, gamma=1e31, step_size=len(train) // 32 + 1)
    fit(model, opt, train, epochs=1, batch_size=32, lr_policy=explodes, checkpoint=checkpoint,
        progress=False, log=lambda s: 0)
    good = checkpoint.read_bytes()
    model, opt = make()  # ...and resumed in a new process, asked for 3 epochs
    with pytest.raises(TrainingDiverged, match="(loss is (nan|inf).*lower the learning rate|"
                                               "became NaN or infinite)"):
        fit(model, opt, train, epochs=3, batch_size=32, lr_policy=explodes,
            checkpoint=checkpoint, progress=False, log=lambda s: 0)
    assert checkpoint.read_bytes() == good
    state, _, meta = load_checkpoint(checkpoint)
    assert meta["epoch"] == 1 and np.all(np.isfinite(state["fc1.weight"]))


def test_a_diverged_run_names_its_last_good_checkpoint_only_when_there_is_one(tmp_path):
    explodes = LRPolicy("step", 0.05, gamma=1e31, step_size=1)  # diverges in epoch 1
    checkpoint = tmp_path / "ck.npz"
    model, opt = make()
    with pytest.raises(TrainingDiverged) as error:
        fit(model, opt, blobs(), epochs=2, batch_size=32, lr_policy=explodes,
            checkpoint=checkpoint, progress=False, log=lambda s: 0)
    assert "last good checkpoint" not in str(error.value) and not checkpoint.exists()


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "missing.npz")
    broken = tmp_path / "broken.npz"
    save_checkpoint(broken, {"w": np.ones(3)}, epoch=1)
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="broken.npz: cannot be read"):
        load_checkpoint(broken)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, {"w": np.ones(3)}, epoch=1)
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np.lib.format, "write_array", explode)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": np.zeros(3)}, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary left behind


def test_masks_survive_checkpoint_and_resume(tmp_path):
    model, opt = make()
    mask = (np.random.default_rng(0).random((300, 784)) > 0.9).astype(np.float32)
    model.fc1.weight_mask = mask
    opt.apply_masks()
    fit(model, opt, blobs(), epochs=1, batch_size=32, checkpoint=tmp_path / "ck.npz",
        progress=False, log=lambda s: 0)
    other, _ = make(seed=3)
    other.load_state_dict(load_checkpoint(tmp_path / "ck.npz")[0])
    np.testing.assert_array_equal(other.fc1.weight_mask, mask)
    assert np.all(other.fc1.weight.data[mask == 0] == 0)


def test_evaluate_restores_training_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    model.train()
    evaluate(model, blobs(50))
    assert model.training


def test_a_policy_needs_the_options_it_reads():
    with pytest.raises(ValueError, match="the inv policy needs gamma and power"):
        LRPolicy("inv", 0.01)
    with pytest.raises(ValueError, match="the step policy needs gamma and step_size"):
        LRPolicy("step", 0.01)
    assert LRPolicy("fixed", 0.01)(10) == 0.01
    assert Phase().policy() == LRPolicy("inv", 0.01, gamma=1e-4, power=0.75, step_size=1)


def test_progress_none_means_bars_only_on_a_terminal_and_other_values_are_refused(monkeypatch):
    class Stream:
        def __init__(self, terminal):
            self.isatty = lambda: terminal

    monkeypatch.setattr("sys.stderr", Stream(True))
    assert fit_module.show_progress(None) and not fit_module.show_progress(False)
    monkeypatch.setattr("sys.stderr", Stream(False))
    assert not fit_module.show_progress(None) and fit_module.show_progress(True)
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        fit_module.show_progress("yes")
    for function in (fit, fit_module.fit_phase):
        assert inspect.signature(function).parameters["progress"].default is None


def test_log_none_is_quiet_and_a_log_that_is_no_function_is_refused(capsys):
    model, opt = make()
    fit(model, opt, blobs(64), epochs=1, batch_size=32, progress=False, log=None)
    assert capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="log must be a function taking one line.*got 'quiet'"):
        fit(model, opt, blobs(64), epochs=1, batch_size=32, progress=False, log="quiet")


def test_fit_and_evaluate_on_a_tuple_count_images_not_tuple_items():
    model, opt = make()
    train, test = blobs(), blobs(300, seed=1)
    as_pair = (test.images, test.labels)
    assert evaluate(model, as_pair) == evaluate(model, test)
    history = fit(model, opt, (train.images, train.labels), as_pair, epochs=1, batch_size=32,
                  progress=False, log=None)
    assert 0 <= history[0]["test_error"] <= 1
    assert history[0]["test_error"] == evaluate(model, test)["error"]


def test_fit_phase_refuses_what_is_not_a_phase():
    model, _ = make()
    with pytest.raises(TypeError, match="fit_phase: phase must be a Phase"):
        fit_module.fit_phase(model, blobs(64), None, {"epochs": 1}, progress=False, log=None)
