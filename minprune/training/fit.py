"""Training and evaluation: ``fit``, ``fit_phase`` (fit with a `Phase`'s settings) and ``evaluate``.

``fit`` runs mini-batch SGD epoch by epoch with a tqdm bar (loss, accuracy, images/s) and one log
line per epoch. With ``checkpoint=PATH`` it saves the model, optimiser, epoch, iteration and both
random generators after every epoch, atomically, and resumes from that file when it exists: a
resumed run produces bit-identical weights to an uninterrupted one. The checkpoint carries the
run's fingerprint (`run_fingerprint`); a file written by another run -- other starting weights or
masks, settings, seed or data -- is refused (`RunMismatchError`), never silently continued.
Asking for more epochs than the file holds continues the same run.

A NaN or infinite loss stops the run with ``TrainingDiverged`` before the step is taken, and
weights that became NaN or infinite are never saved, so the last checkpoint stays the last good
one.

Anything else -- pruning during training, another kind of step, the fault-injection kill points --
comes in from outside: a ``step`` function replaces `sgd_step`, and hooks
(`minprune.training.hooks`) are called after each step, at the end of each epoch and after each
checkpoint, and save their own state with it.

Data comes in through `minprune.data.entry.as_dataset` at every public entry: a `Dataset`, an
`ImageFolder` or an ``(images, labels)`` pair, checked once (NaN images and negative or
non-integer labels refused, raw 0..255 pixels warned about); labels are also checked against the
model's number of outputs before the first step.

Reporting, the same in every training function of minprune (`fit`, `fit_phase`, `retrain`,
`iterative_prune`, `gradual_prune`, `network_surgery`): ``progress=None`` (the default) shows
tqdm bars only when stderr is a terminal (or a notebook), so a pipe or a log file gets none;
True or False forces them. ``log`` is called with one line per epoch (default ``print``);
``log=None`` is quiet (`show_progress`, `log_function`).

Devices: each batch is copied to the model's device (``model.to("cuda")`` trains on the GPU);
losses and counts come back as Python numbers.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import minprune.autograd.functional as F
import minprune.base.random as minprune_random
from minprune.autograd.tensor import no_grad
from minprune.base.arrays import to_device
from minprune.data.batching import batch_count, batches, evaluation_batch_size
from minprune.data.dataset import Dataset
from minprune.data.entry import as_dataset, check_labels_fit
from minprune.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minprune.training.fingerprint import check_same_run, dataset_digest, state_digest
from minprune.training.hooks import OnStep, process_hooks
from minprune.training.phase import Phase
from minprune.training.schedules import LRPolicy

__all__ = ["fit", "fit_phase", "sgd_step", "evaluate", "moved_to", "run_fingerprint",
           "TrainingDiverged", "show_progress", "log_function"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def show_progress(progress) -> bool:
    """Whether to draw progress bars: ``progress`` itself when True or False; for None (the
    default everywhere), only when stderr is a terminal or a Jupyter kernel's output (where
    tqdm draws a widget) -- never into a pipe or a log file."""
    if progress is None:
        stderr = sys.stderr
        in_notebook = type(stderr).__module__.startswith("ipykernel")
        return in_notebook or bool(getattr(stderr, "isatty", lambda: False)())
    if not isinstance(progress, bool | np.bool_):
        raise TypeError(f"progress must be True, False or None (bars when stderr is a "
                        f"terminal), got {progress!r}")
    return bool(progress)


def _quiet(message: str) -> None:
    """``log=None``: say nothing."""


def log_function(log):
    """``log`` itself when it is a function of one string (e.g. ``print``); None gives a quiet
    one."""
    if log is None:
        return _quiet
    if not callable(log):
        raise TypeError(f"log must be a function taking one line (e.g. print, or a list's "
                        f"append), or None for quiet, got {log!r}")
    return log


def _output_width(model, dataset: Dataset) -> int:
    """How many outputs ``model`` gives for one image of ``dataset`` (eval mode, no gradient)."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            return int(model(to_device(dataset.images[:1], model.device)).shape[-1])
    finally:
        model.train(was_training)


def evaluate(model, dataset, batch_size: int | None = None) -> dict:
    """Mean loss, accuracy and error (fractions) of ``model`` on ``dataset`` (a `Dataset`, an
    `ImageFolder` or an ``(images, labels)`` pair), in eval mode, ``batch_size`` images at a time
    (default: `evaluation_batch_size`, 1,000 for MNIST)."""
    dataset = as_dataset(dataset, "evaluate: dataset")
    if len(dataset) == 0:
        raise ValueError("evaluate: dataset is empty; there is nothing to measure")
    batch_size = batch_size or evaluation_batch_size(dataset)
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        with no_grad():
            for index, (images, labels) in enumerate(batches(dataset, batch_size,
                                                             shuffle=False)):
                images, labels = to_device(images, model.device), to_device(labels, model.device)
                logits = model(images)
                if index == 0:
                    check_labels_fit(dataset, logits.shape[1], "evaluate: dataset")
                total_loss += float(F.cross_entropy(logits, labels).item()) * len(labels)
                correct += int((logits.data.argmax(axis=1) == labels).sum())
    finally:
        model.train(was_training)
    n = len(dataset)
    return {"loss": total_loss / n, "accuracy": correct / n, "error": 1.0 - correct / n}


def run_fingerprint(model, optimizer, train_set, test_set, *, batch_size, lr_policy, seed,
                    extra=None) -> dict:
    """What makes a `fit` run the run it is (epochs aside): the model's layers and its weights and
    masks at the start, which parameters train, the optimiser's and learning-rate settings, batch
    size, shuffling seed and the data. (The global generator's state is restored on resume, not
    compared: it only feeds dropout.)"""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    return {
        "model": repr(model),
        "start_state": state_digest(model.state_dict()),
        "trained": [names.get(id(p), "?") for p in optimizer.parameters],
        "optimizer": {"type": type(optimizer).__name__, "momentum": optimizer.momentum,
                      "weight_decay": optimizer.weight_decay, "l1": optimizer.l1},
        "lr_policy": repr(lr_policy),
        "batch_size": batch_size,
        "seed": _seed_description(seed),
        "train_data": dataset_digest(train_set),
        "test_data": dataset_digest(test_set),
        **(extra or {}),
    }


def _seed_description(seed):
    """An int seed as itself; a `numpy.random.SeedSequence` (e.g. one spawned from a seed) as its
    entropy and spawn key."""
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key)}
    return seed


def _restore(path: Path, model, optimizer, shuffle_rng, fingerprint: dict, hooks) -> dict:
    model_state, optimizer_state, meta = load_checkpoint(path)
    check_same_run(path, meta.get("fingerprint"), fingerprint,
                   f"delete {path} to train from the start, or give another checkpoint path")
    for key in ("epoch", "iteration", "history", "shuffle_rng", "global_rng"):
        if key not in meta:
            raise CheckpointError(f"checkpoint {path}: meta has no {key!r}; not a fit checkpoint")
    try:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        shuffle_rng.bit_generator.state = meta["shuffle_rng"]
        minprune_random.set_rng_state(meta["global_rng"])
        for hook in hooks:
            hook.load_state(meta)
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path}: does not fit this run ({error})") from None
    return meta


def _check_finite(model, epoch: int) -> None:
    bad = [name for name, p in model.named_parameters() if not np.isfinite(p.data).all()]
    if bad:
        raise TrainingDiverged(f"weights of {bad} became NaN or infinite in epoch {epoch}; "
                               "not saved. Lower the learning rate.")


def sgd_step(model, optimizer, images, labels):
    """One step of mini-batch SGD: forward, cross-entropy loss, backward, update. Return the
    loss (a float) and the logits (an array); a NaN or infinite loss raises `TrainingDiverged`
    before anything is updated."""
    optimizer.zero_grad()
    logits = model(images)
    loss = F.cross_entropy(logits, labels)
    loss_value = float(loss.item())
    if not np.isfinite(loss_value):
        raise TrainingDiverged(f"loss is {loss_value}")
    loss.backward()
    optimizer.step()
    return loss_value, logits.data


def fit(model, optimizer, train_set, test_set=None, *, epochs: int, batch_size: int = 64,
        lr_policy: LRPolicy | None = None, seed=0, checkpoint=None, progress: bool | None = None,
        log=print, extra_meta: dict | None = None, fingerprint: dict | None = None,
        on_step=None, step=sgd_step, hooks=()) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs; return one record per epoch (loss, errors, time).

    ``train_set`` and ``test_set`` (optional: without it no ``test_error``) are each a `Dataset`,
    an `ImageFolder` or an ``(images, labels)`` pair. ``progress``: bars when True, none when
    False, only on a terminal when None; ``log``: called with each epoch's line, None for quiet.
    ``lr_policy`` sets ``optimizer.lr`` before every iteration (default: keep it fixed).
    ``seed`` (an int or a `numpy.random.SeedSequence`) seeds the shuffling generator.
    ``checkpoint`` (a path) turns on saving and resuming. ``extra_meta`` is stored in the
    checkpoint's meta (e.g. the command-line configuration); ``fingerprint`` adds the caller's own
    settings to the run's fingerprint (`run_fingerprint`).

    ``step(model, optimizer, images, labels) -> (loss, logits)`` takes one step (`sgd_step`).
    ``hooks`` (`minprune.training.hooks`) are called after every step, at the end of every epoch
    and after every checkpoint, in order; ``on_step(iteration, model)`` is the after-step hook as
    a function (``iteration`` counts the steps taken, from 1). They may change masks
    (`minprune.prune.gradual` prunes during training). Their settings make the run what it is,
    so with a checkpoint they must come in through ``fingerprint``.
    """
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    train_set = as_dataset(train_set, "fit: train_set")
    test_set = as_dataset(test_set, "fit: test_set", allow_none=True)
    progress, log = show_progress(progress), log_function(log)
    if isinstance(train_set, Dataset) and len(train_set):
        check_labels_fit(train_set, _output_width(model, train_set), "fit: train_set")
    if (on_step is not None or hooks) and checkpoint is not None and not fingerprint:
        what = "on_step" if on_step is not None else "hooks"
        raise ValueError(f"fit: with {what} and a checkpoint, pass fingerprint= describing what "
                         f"{what} do(es), so that a resume with other settings is refused")
    hooks = [*hooks, *([OnStep(on_step)] if on_step is not None else []), *process_hooks()]
    lr_policy = lr_policy or LRPolicy("fixed", optimizer.lr)
    per_epoch = batch_count(len(train_set), batch_size)  # a rate that would collapse: refused
    lr_policy.check_iterations(epochs * per_epoch, f"{epochs} epochs of {per_epoch} batches")
    shuffle_rng = np.random.default_rng(seed)
    start_epoch, iteration, history = 0, 0, []
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None:
        run = run_fingerprint(model, optimizer, train_set, test_set, batch_size=batch_size,
                              lr_policy=lr_policy, seed=seed, extra=fingerprint)
    if checkpoint is not None and checkpoint.exists():
        meta = _restore(checkpoint, model, optimizer, shuffle_rng, run, hooks)
        start_epoch, iteration, history = meta["epoch"], meta["iteration"], meta["history"]
        log(f"resumed from {checkpoint} at epoch {start_epoch}, iteration {iteration}")

    model.train()
    for epoch in range(start_epoch, epochs):
        bar = tqdm(batches(train_set, batch_size, rng=shuffle_rng), leave=False,
                   total=batch_count(len(train_set), batch_size),
                   desc=f"epoch {epoch + 1}/{epochs}", disable=not progress)
        try:
            record, seen = _train_epoch(model, optimizer, bar, lr_policy, step, hooks, epoch + 1,
                                        iteration)
        except TrainingDiverged as error:
            kept = checkpoint is not None and Path(checkpoint).exists()
            raise TrainingDiverged(f"{error}" + (f" The last good checkpoint is {checkpoint}."
                                                 if kept else "")) from None
        finally:
            bar.close()
        iteration = record["iteration"]
        for hook in hooks:
            hook.end_epoch(record)
        if test_set is not None:
            record["test_error"] = evaluate(model, test_set)["error"]
        history.append(record)
        log(_epoch_line(record, epochs, seen))
        _check_finite(model, epoch + 1)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model.state_dict(), optimizer.state_dict(),
                            epoch=epoch + 1, iteration=iteration, history=history,
                            shuffle_rng=shuffle_rng.bit_generator.state,
                            global_rng=minprune_random.get_rng_state(), fingerprint=run,
                            **{k: v for hook in hooks for k, v in hook.state().items()},
                            **(extra_meta or {}))
            for hook in hooks:
                hook.after_checkpoint(checkpoint)
    return history


def _train_epoch(model, optimizer, bar, lr_policy, step, hooks, epoch: int, iteration: int):
    """Epoch ``epoch``: one pass over the batches of ``bar``, the first step being ``iteration``
    + 1. Return its record and the number of images seen."""
    started = time.perf_counter()
    total_loss, correct, seen = 0.0, 0, 0
    for index, (host_images, labels) in enumerate(bar):
        images, labels = to_device(host_images, model.device), to_device(labels, model.device)
        optimizer.lr = lr_policy(iteration)
        try:
            loss, logits = step(model, optimizer, images, labels)
        except TrainingDiverged as error:
            if not np.isfinite(host_images).all():
                raise TrainingDiverged(
                    f"{error} at epoch {epoch}, iteration {iteration}: this batch's images hold "
                    f"{int(np.isnan(host_images).sum())} NaN and "
                    f"{int(np.isinf(host_images).sum())} infinite values -- the data, not the "
                    "learning rate; fix or drop those samples") from None
            raise TrainingDiverged(f"{error} at epoch {epoch}, iteration {iteration} (lr "
                                   f"{optimizer.lr:.3g}); lower the learning rate.") from None
        iteration += 1
        for hook in hooks:
            hook.after_step(iteration, model)
        total_loss += loss * len(labels)
        correct += int((logits.argmax(axis=1) == labels).sum())
        seen += len(labels)
        if not bar.disable and index % 50 == 0:
            rate = seen / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{correct / seen:.3f}", img_s=f"{rate:.0f}")
    record = {"epoch": epoch, "iteration": iteration, "lr": optimizer.lr,
              "train_loss": total_loss / max(seen, 1), "train_error": 1.0 - correct / max(seen, 1),
              "seconds": time.perf_counter() - started}
    return record, seen


def _epoch_line(record: dict, epochs: int, seen: int) -> str:
    """The log line of one epoch."""
    test = f"  test error {record['test_error']:.2%}" if "test_error" in record else ""
    return (f"epoch {record['epoch']}/{epochs}  loss {record['train_loss']:.4f}  "
            f"train error {record['train_error']:.2%}{test}  lr {record['lr']:.3g}  "
            f"{record['seconds']:.1f} s ({seen / record['seconds']:.0f} img/s)")


@contextmanager
def moved_to(model, device: str | None):
    """Run the block with ``model`` on ``device`` ("cpu", "cuda"; None: where it is), then move
    it back: training on a GPU, pruning and tables on the host."""
    home = model.device
    if device is not None and device != home:
        model.to(device)
    try:
        yield model
    finally:
        if model.device != home:
            model.to(home)


def fit_phase(model, train_set, test_set, phase: Phase, *, seed: int = 0, checkpoint=None,
              progress: bool | None = None, log=print, device: str | None = None) -> list[dict]:
    """Train ``model`` for one `Phase`: SGD with the phase's settings over the parameters that
    require grad, its learning-rate policy, epochs and batch size. Masks hold: weights a mask
    prunes are zeroed first and stay zero (`minprune.training.optim.SGD`). ``device`` trains it
    there and brings it back (`moved_to`). Data, ``progress`` and ``log`` as in `fit` (a None
    ``test_set``: no test error in the records)."""
    if not isinstance(phase, Phase):
        raise TypeError(f"fit_phase: phase must be a Phase (e.g. mp.Phase(epochs=10)), got "
                        f"{type(phase).__name__}")
    train_set = as_dataset(train_set, "fit_phase: train_set")
    test_set = as_dataset(test_set, "fit_phase: test_set", allow_none=True)
    with moved_to(model, device):
        optimizer = phase.optimizer([p for p in model.parameters() if p.requires_grad])
        optimizer.apply_masks()
        return fit(model, optimizer, train_set, test_set, epochs=phase.epochs,
                   batch_size=phase.batch_size, lr_policy=phase.policy(), seed=seed,
                   checkpoint=checkpoint, progress=progress, log=log)
