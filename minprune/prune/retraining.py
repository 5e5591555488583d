"""Retraining, and the paper's loop made resumable: ``retrain`` and ``iterative_prune``.

The loop itself -- prune, lower the dropout, retrain the survivors, repeat (Han et al. Sec. 3,
Fig. 2) -- is `minprune.prune.loop.prune_retrain`. ``retrain`` is one retraining: the survivors
from their trained values (never re-initialised, Sec. 3.3) with the phase's learning rate (1/10
of the original for LeNet, Sec. 4.1), the dropout lowered as the connections were (Sec. 3.2,
`minprune.prune.dropout`), and optionally one part of the network frozen (Sec. 3.3,
`minprune.prune.freezing`). ``iterative_prune`` runs the loop and, with a ``state_dir``, saves
after every round so that an interrupted run resumes -- only the run that was asked for: the
saved state's fingerprint (the starting model, every round's criterion and values, the phase,
freezes, seed, data) must match, or the resume is refused.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import minprune.base.random as minprune_random
from minprune.base.arrays import check_device, cupy_module
from minprune.data.entry import as_dataset
from minprune.prune.dropout import adjust_dropout, dropout_ratios
from minprune.prune.freezing import check_freeze, frozen
from minprune.prune.loop import prune_retrain
from minprune.prune.pattern_training import SPARSE_MAX_DENSITY, sparse_kernels
from minprune.prune.rounds import round_functions
from minprune.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minprune.training.fingerprint import check_same_run, dataset_digest, plain, state_digest
from minprune.training.fit import TrainingDiverged, fit_phase, log_function
from minprune.training.phase import Phase

__all__ = ["retrain", "iterative_prune", "geometric_keep_ratios"]


def retrain(model, train_set, test_set, phase: Phase, *, freeze=None, original_dropout=None,
            seed=0, checkpoint=None, progress=None, log=print,
            sparse_max_density=SPARSE_MAX_DENSITY, device=None) -> list[dict]:
    """Retrain the survivors of a pruned ``model`` for one phase (masks hold throughout).

    Each Dropout's ratio is first lowered for the model's density, D_r = D_o sqrt(C_ir / C_io)
    (Sec. 3.2, `adjust_dropout`), from ``original_dropout`` (``{name: D_o}``; by default the
    ratios the Dropouts were built with). Linear layers at density <= ``sparse_max_density``
    train on their kept connections only (`minprune.prune.pattern_training`; same results up to
    float32 summation order); None keeps every layer on the dense masked path. ``device``
    ("cuda") retrains there and brings the model back to where it was
    (`minprune.training.fit.moved_to`). Data (a None ``test_set``: no test error), ``progress``
    (None: bars only on a terminal) and ``log`` (None: quiet) as in `minprune.training.fit.fit`.
    """
    train_set = as_dataset(train_set, "retrain: train_set")
    test_set = as_dataset(test_set, "retrain: test_set", allow_none=True)
    adjust_dropout(model, original_dropout)
    return _retrain_survivors(model, train_set, test_set, phase, freeze=freeze, seed=seed,
                              checkpoint=checkpoint, progress=progress, log=log,
                              sparse_max_density=sparse_max_density, device=device)


def _retrain_survivors(model, train_set, test_set, phase, *, freeze, seed, checkpoint, progress,
                       log, sparse_max_density=SPARSE_MAX_DENSITY, device=None) -> list[dict]:
    """`retrain` with the dropout as it is."""
    with frozen(model, freeze), sparse_kernels(model, sparse_max_density):
        return fit_phase(model, train_set, test_set, phase, seed=seed, checkpoint=checkpoint,
                         progress=progress, log=log, device=device)


def geometric_keep_ratios(targets: dict, rounds: int) -> list[dict]:
    """Per-round keep ratios that reach ``targets`` (``{name: final keep ratio}``) in ``rounds``
    equal multiplicative steps: round k keeps ``target ** (k / rounds)`` of each layer."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    return [{name: float(target ** (k / rounds)) for name, target in targets.items()}
            for k in range(1, rounds + 1)]


def _freezes(freeze, count: int) -> list:
    """One freeze setting per round, checked."""
    freezes = freeze if isinstance(freeze, list) else [freeze] * count
    if len(freezes) != count:
        raise ValueError(f"freeze has {len(freezes)} entries for {count} rounds")
    for part in freezes:
        check_freeze(part)
    return freezes


def _fingerprint(model, plan, count, phase, freezes, seed, original_dropout, train_set,
                 test_set) -> dict:
    """What makes a saved run of rounds the run it is (`check_same_run`)."""
    if plan is None or len(plan) != count:
        raise ValueError(
            f"iterative_prune: with state_dir, give plan= (one JSON-able entry per round "
            f"describing what it prunes, {count} entries) so that a resume can be "
            f"checked against it; got {plan!r}")
    return plain({
        "model": repr(model), "start_state": state_digest(model.state_dict()),
        "plan": plan, "phase": asdict(phase), "freeze": freezes, "seed": seed,
        "original_dropout": original_dropout, "train_data": dataset_digest(train_set),
        "test_data": dataset_digest(test_set)})


def _resume(state_path: Path, model, fingerprint: dict, log) -> list[dict]:
    """The records saved in ``state_path`` (its model and random state loaded), or [] when there
    is none; a state written by another run is refused (`RunMismatchError`)."""
    if state_path is None or not state_path.exists():
        return []
    model_state, _, meta = load_checkpoint(state_path)
    check_same_run(state_path, meta.get("fingerprint"), fingerprint,
                   f"delete {state_path.parent} to run these rounds afresh, or use another "
                   "state folder")
    try:
        records = meta["records"]
        model.load_state_dict(model_state)
        minprune_random.set_rng_state(meta["global_rng"])
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{state_path}: does not fit these rounds ({error})") from None
    log(f"resumed {state_path}: {len(records)} of {len(fingerprint['plan'])} rounds done")
    return records


def iterative_prune(model, train_set, test_set, rounds, phase: Phase, *, state_dir=None,
                    freeze=None, seed=0, plan=None, original_dropout=None, stop_when=None,
                    device=None, progress=None, log=print) -> list[dict]:
    """Run prune-retrain ``rounds`` on ``model`` (`minprune.prune.loop.prune_retrain`), saved
    and resumable; return one record per round.

    ``rounds`` is a list with one entry per round: a function ``prune(model) -> dict`` returning
    what it pruned at (e.g. ``lambda m: threshold_prune(m, {"*": 1.0})``), or data such as
    ``{"quality": {"fc1.weight": 1.3, "*": 1.0}}`` or ``{"keep_ratio": 0.5}`` (see
    `minprune.prune.rounds`). ``freeze`` is None, "conv" or "fc", or a list with one entry per
    round. ``original_dropout`` (``{name: p}``) is the dropout of the unpruned network that every
    round scales (Sec. 3.2); by default the ratios the Dropouts were built with. ``stop_when``
    (``record -> bool``) ends the run early after a round whose record satisfies it. ``device``
    ("cuda") retrains each round there; pruning and evaluation stay where the model is.

    Without ``state_dir`` everything happens in memory. With it, the model, random state and the
    records so far are saved to ``state_dir/rounds.npz`` after each round and completed rounds
    are skipped when that file exists. ``plan`` (JSON-able; by default the rounds when they are
    data, and required when they are functions) describes the rounds; a state saved from another
    starting model, plan, phase, freezes, seed or data is refused (`RunMismatchError`).

    A round whose retraining diverges (NaN or infinite loss) raises `TrainingDiverged` naming the
    round; the rounds saved before it stay, and no NaN weights are saved.

    Each record holds the round's densities, what it pruned at (for thresholds, with the
    ``std_of`` they were taken from, `StdOf`), the dropout ratios, the test error before and
    after retraining, and the seconds spent retraining.

    ``train_set`` and ``test_set`` (required: every round is measured on it) are each a
    `Dataset`, an `ImageFolder` or an ``(images, labels)`` pair. ``progress`` (None: bars only
    when stderr is a terminal) and ``log`` (None: quiet) as in `minprune.training.fit.fit`.
    """
    train_set = as_dataset(train_set, "iterative_prune: train_set")
    if test_set is None:
        raise TypeError("iterative_prune: test_set is None; every round measures the test error "
                        "before and after retraining, so give a Dataset or an (images, labels) "
                        "pair (e.g. a validation_split part)")
    test_set = as_dataset(test_set, "iterative_prune: test_set")
    if device is not None:  # before round 1 prunes: a device that cannot train loses nothing
        if check_device(device) == "cuda":
            cupy_module()
    log = log_function(log)
    functions = round_functions(rounds, model)  # checks that rounds is a list first
    rounds = list(rounds)
    freezes = _freezes(freeze, len(functions))
    if plan is None and not any(callable(spec) for spec in rounds):
        plan = list(rounds)
    if original_dropout is None:
        original_dropout = dropout_ratios(model)
    state_dir = Path(state_dir) if state_dir is not None else None
    state_path = state_dir / "rounds.npz" if state_dir is not None else None
    fingerprint = (_fingerprint(model, plan, len(functions), phase, freezes, seed,
                                original_dropout, train_set, test_set)
                   if state_dir is not None else None)
    records = _resume(state_path, model, fingerprint, log)
    if records and stop_when is not None and stop_when(records[-1]):
        return records

    def retrain_round(model, phase, freeze, index):
        """One round's retraining, its epochs saved in ``state_dir/round<k>.npz``."""
        checkpoint = state_dir / f"round{index + 1}.npz" if state_dir is not None else None
        try:
            return _retrain_survivors(model, train_set, test_set, phase, freeze=freeze,
                                      seed=seed + index, checkpoint=checkpoint,
                                      progress=progress, log=log, device=device)
        except TrainingDiverged as error:
            raise TrainingDiverged(f"round {index + 1}/{len(functions)} diverged while "
                                   f"retraining: {error}") from None

    for record in prune_retrain(model, functions, retrain_round, test_set, phase,
                                freezes=freezes, original_dropout=original_dropout,
                                first_round=len(records), log=log):
        records.append(record)
        if state_dir is not None:
            save_checkpoint(state_path, model.state_dict(), records=records,
                            fingerprint=fingerprint, global_rng=minprune_random.get_rng_state())
            epoch_checkpoint = state_dir / f"round{record['round']}.npz"
            epoch_checkpoint.unlink(missing_ok=True)
            epoch_checkpoint.with_name(epoch_checkpoint.name + ".prev").unlink(missing_ok=True)
        if stop_when is not None and stop_when(record):
            break
    return records
