"""Fingerprints: what produced a saved state, so that a resume continues only the run asked for.

A fingerprint is a flat dict of JSON values: the model's layers, a digest of its weights and masks
when the run started (for a retraining round that is the parent checkpoint's content after
pruning), the optimiser and learning-rate settings, the seed and random-generator state, each
round's criterion and values, and digests of the training and test data. `fit`, `iterative_prune`
and ``minprune reproduce`` save one beside every state and compare it before resuming;
`check_same_run` refuses a mismatch, names the settings that differ and says how to start afresh.
"""

from __future__ import annotations

import json
import weakref

import numpy as np

from minprune.base.files import arrays_sha256

__all__ = [
    "RunMismatchError",
    "state_digest",
    "dataset_digest",
    "check_same_run",
    "plain",
]


class RunMismatchError(ValueError):
    """A saved state was produced by another run than the one asked for."""


def plain(value):
    """``value`` as JSON would give it back (tuples become lists, NumPy numbers Python ones)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item")
                                 else repr(v)))


def state_digest(state: dict) -> str:
    """SHA-256 of a state_dict's names, dtypes, shapes and values (`minprune.base.files`)."""
    return arrays_sha256({name: np.asarray(value) for name, value in state.items()})


_DATASET_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def dataset_digest(dataset) -> str | None:
    """SHA-256 of a dataset's images and labels (None for no dataset). A dataset with a
    ``fingerprint()`` method (e.g. an image folder) gives its own. Read-only datasets, such as
    `minprune.data.mnist`'s, are hashed once."""
    if dataset is None:
        return None
    if hasattr(dataset, "fingerprint"):
        return dataset.fingerprint()
    frozen = not (dataset.images.flags.writeable or dataset.labels.flags.writeable)
    if frozen and dataset in _DATASET_DIGESTS:
        return _DATASET_DIGESTS[dataset]
    digest = arrays_sha256({"images": dataset.images, "labels": dataset.labels})
    if frozen:
        _DATASET_DIGESTS[dataset] = digest
    return digest


def _shorten(value, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_same_run(path, saved: dict | None, wanted: dict, restart: str) -> None:
    """Refuse to resume from ``path`` unless its fingerprint ``saved`` equals ``wanted``.

    The RunMismatchError names every setting that differs, with both values, and ends with
    ``restart`` (how to start afresh, e.g. "delete runs/x")."""
    wanted = plain(wanted)
    if saved is None:
        raise RunMismatchError(
            f"{path} carries no fingerprint of the run that wrote it, so it cannot be checked "
            f"against this one; {restart}")
    differ = sorted(set(saved) | set(wanted), key=str)
    differ = [key for key in differ if saved.get(key) != wanted.get(key)]
    if differ:
        details = "; ".join(f"{key}: saved {_shorten(saved.get(key))}, asked for "
                            f"{_shorten(wanted.get(key))}" for key in differ)
        raise RunMismatchError(
            f"{path} was written by a different run; what differs: {details}. Not resuming from "
            f"it; {restart}")
