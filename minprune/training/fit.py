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

Devices: each batch is copied to the model's device (``model.to("cuda")`` trains on the GPU);
losses and counts come back as Python numbers.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import minprune.autograd.functional as F
import minprune.base.random as minprune_random
from minprune.autograd.tensor import no_grad
from minprune.base.arrays import to_device
from minprune.base.faults import kill_point
from minprune.data.batching import batch_count, batches, evaluation_batch_size
from minprune.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minprune.training.fingerprint import check_same_run, dataset_digest, state_digest
from minprune.training.phase import Phase
from minprune.training.schedules import LRPolicy

__all__ = ["fit", "fit_phase", "evaluate", "moved_to", "run_fingerprint", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def evaluate(model, dataset, batch_size: int | None = None) -> dict:
    """Mean loss, accuracy and error (fractions) of ``model`` on ``dataset``, in eval mode,
    ``batch_size`` images at a time (default: `evaluation_batch_size`, 1,000 for MNIST)."""
    batch_size = batch_size or evaluation_batch_size(dataset)
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        with no_grad():
            for images, labels in batches(dataset, batch_size, shuffle=False):
                images, labels = to_device(images, model.device), to_device(labels, model.device)
                logits = model(images)
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
        "seed": seed,
        "train_data": dataset_digest(train_set),
        "test_data": dataset_digest(test_set),
        **(extra or {}),
    }


def _restore(path: Path, model, optimizer, shuffle_rng, fingerprint: dict) -> dict:
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
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path}: does not fit this run ({error})") from None
    return meta


def _check_finite(model, epoch: int) -> None:
    bad = [name for name, p in model.named_parameters() if not np.isfinite(p.data).all()]
    if bad:
        raise TrainingDiverged(f"weights of {bad} became NaN or infinite in epoch {epoch}; "
                               "not saved. Lower the learning rate.")


def fit(
    model,
    optimizer,
    train_set,
    test_set=None,
    *,
    epochs: int,
    batch_size: int = 64,
    lr_policy: LRPolicy | None = None,
    seed: int = 0,
    checkpoint=None,
    progress: bool = True,
    log=print,
    extra_meta: dict | None = None,
    fingerprint: dict | None = None,
    on_step=None,
) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs; return one record per epoch (loss, errors, time).

    ``lr_policy`` sets ``optimizer.lr`` before every iteration (default: keep it fixed).
    ``seed`` seeds the shuffling generator. ``checkpoint`` (a path) turns on saving and resuming.
    ``extra_meta`` is stored in the checkpoint's meta (e.g. the command-line configuration);
    ``fingerprint`` adds the caller's own settings to the run's fingerprint (`run_fingerprint`).
    ``on_step(iteration, model)`` is called after every step, ``iteration`` counting the steps
    taken (from 1); it may change masks (`minprune.prune.gradual` prunes during training). Its
    settings make the run what it is, so with a checkpoint they must come in through
    ``fingerprint``.
    """
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    if on_step is not None and checkpoint is not None and not fingerprint:
        raise ValueError("fit: with on_step and a checkpoint, pass fingerprint= describing what "
                         "on_step does, so that a resume with other settings is refused")
    lr_policy = lr_policy or LRPolicy("fixed", optimizer.lr)
    shuffle_rng = np.random.default_rng(seed)
    start_epoch, iteration, history = 0, 0, []
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    run = None
    if checkpoint is not None:
        run = run_fingerprint(model, optimizer, train_set, test_set, batch_size=batch_size,
                              lr_policy=lr_policy, seed=seed, extra=fingerprint)
    if checkpoint is not None and checkpoint.exists():
        meta = _restore(checkpoint, model, optimizer, shuffle_rng, run)
        start_epoch, iteration, history = meta["epoch"], meta["iteration"], meta["history"]
        log(f"resumed from {checkpoint} at epoch {start_epoch}, iteration {iteration}")

    model.train()
    per_epoch = batch_count(len(train_set), batch_size)
    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(
            batches(train_set, batch_size, rng=shuffle_rng),
            total=per_epoch,
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
        )
        for step, (images, labels) in enumerate(bar):
            images, labels = to_device(images, model.device), to_device(labels, model.device)
            optimizer.lr = lr_policy(iteration)
            optimizer.zero_grad()
            logits = model(images)
            loss = F.cross_entropy(logits, labels)
            loss_value = float(loss.item())
            if not np.isfinite(loss_value):
                bar.close()
                raise TrainingDiverged(
                    f"loss is {loss_value} at epoch {epoch + 1}, iteration {iteration} "
                    f"(lr {optimizer.lr:.3g}); lower the learning rate. "
                    + (f"The last good checkpoint is {checkpoint}." if checkpoint else "")
                )
            loss.backward()
            optimizer.step()
            iteration += 1
            if on_step is not None:
                on_step(iteration, model)
            kill_point("iteration")
            total_loss += loss_value * len(labels)
            correct += int((logits.data.argmax(axis=1) == labels).sum())
            seen += len(labels)
            if progress and step % 50 == 0:
                rate = seen / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(loss=f"{loss_value:.4f}", acc=f"{correct / seen:.3f}",
                                img_s=f"{rate:.0f}")
        bar.close()
        seconds = time.perf_counter() - started
        record = {
            "epoch": epoch + 1,
            "iteration": iteration,
            "lr": optimizer.lr,
            "train_loss": total_loss / max(seen, 1),
            "train_error": 1.0 - correct / max(seen, 1),
            "seconds": seconds,
        }
        if test_set is not None:
            record["test_error"] = evaluate(model, test_set)["error"]
        history.append(record)
        test_part = f"  test error {record['test_error']:.2%}" if test_set is not None else ""
        log(
            f"epoch {epoch + 1}/{epochs}  loss {record['train_loss']:.4f}  "
            f"train error {record['train_error']:.2%}{test_part}  lr {optimizer.lr:.3g}  "
            f"{seconds:.1f} s ({seen / seconds:.0f} img/s)"
        )
        _check_finite(model, epoch + 1)
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                model.state_dict(),
                optimizer.state_dict(),
                epoch=epoch + 1,
                iteration=iteration,
                history=history,
                shuffle_rng=shuffle_rng.bit_generator.state,
                global_rng=minprune_random.get_rng_state(),
                fingerprint=run,
                **(extra_meta or {}),
            )
            kill_point("epoch")
    return history


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
              progress: bool = True, log=print, device: str | None = None) -> list[dict]:
    """Train ``model`` for one `Phase`: SGD with the phase's settings over the parameters that
    require grad, its learning-rate policy, epochs and batch size. Masks hold: weights a mask
    prunes are zeroed first and stay zero (`minprune.training.optim.SGD`). ``device`` trains it
    there and brings it back (`moved_to`)."""
    with moved_to(model, device):
        optimizer = phase.optimizer([p for p in model.parameters() if p.requires_grad])
        optimizer.apply_masks()
        return fit(model, optimizer, train_set, test_set, epochs=phase.epochs,
                   batch_size=phase.batch_size, lr_policy=phase.policy(), seed=seed,
                   checkpoint=checkpoint, progress=progress, log=log)
