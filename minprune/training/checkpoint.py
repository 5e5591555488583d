"""Checkpoints: one checksummed .npz per run state, written atomically, checked when read.

A checkpoint holds the model's ``state_dict`` (weights, biases and masks) under ``model/``, the
optimiser's state under ``optimizer/``, and a JSON ``meta`` entry with the epoch, iteration, random
generator states, the run's fingerprint (`minprune.training.fingerprint`) and any caller data. It is
written with `minprune.base.files.write_npz`: to a temporary file, synced, renamed over the old one,
the old one kept as ``NAME.prev``; a crash mid-write -- or a kill -9 -- leaves the previous
checkpoint intact. `load_checkpoint` refuses a truncated, bit-flipped or hostile file
(`CheckpointError`, naming the file and what is wrong) and one whose weights are NaN or infinite; it
never loads such a file. `load_model_checkpoint` loads one into a model the caller has built, or
says which model the file does not hold.

Reports and summaries are written the same way, as JSON (``atomic_write_json``, and ``save_json``
for data holding NumPy values); ``load_json`` reads them back or names the file it cannot read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from minprune.base.files import CorruptFileError, atomic_write, read_npz, write_npz

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "load_model_checkpoint",
    "atomic_write_json",
    "save_json",
    "load_json",
    "CheckpointError",
]


class CheckpointError(CorruptFileError):
    """A checkpoint file is missing, truncated, corrupt or not a minprune checkpoint."""


def _non_finite(arrays: dict) -> list[str]:
    return [name for name, array in arrays.items()
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all()]


def save_checkpoint(path, model_state: dict, optimizer_state: dict | None = None, **meta) -> None:
    """Write ``model_state`` (a state_dict), ``optimizer_state`` and JSON-able ``meta``; the file
    it replaces is kept as ``path.prev``. NaN or infinite values are refused (ValueError), so a
    diverged run never overwrites its last good checkpoint."""
    arrays = {f"model/{name}": np.asarray(value) for name, value in model_state.items()}
    for name, value in (optimizer_state or {}).items():
        arrays[f"optimizer/{name}"] = np.asarray(value)
    bad = _non_finite(arrays)
    if bad:
        raise ValueError(f"checkpoint {path}: refusing to save NaN or infinite values in {bad}; "
                         "the last good checkpoint is kept")
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    write_npz(path, arrays, keep_previous=True)


def load_checkpoint(path) -> tuple[dict, dict, dict]:
    """Return ``(model_state, optimizer_state, meta)`` from a file written by save_checkpoint."""
    path = Path(path)
    hint = (f". The previous good state, if any, is {path.name}.prev: rename it to {path.name} "
            "to resume from there, or delete the file to start over.")
    arrays = read_npz(path, error=CheckpointError, what="checkpoint", hint=hint)
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint {path}: no 'meta' entry; not a minprune checkpoint")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path}: 'meta' is not JSON ({error}){hint}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: 'meta' is {type(meta).__name__}, "
                              "expected a JSON object")
    unknown = [name for name in arrays if not name.startswith(("model/", "optimizer/"))]
    if unknown:
        raise CheckpointError(f"checkpoint {path}: unexpected entries {unknown}")
    bad = _non_finite(arrays)
    if bad:
        raise CheckpointError(f"checkpoint {path}: NaN or infinite values in {bad}{hint}")
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optimizer_state = {
        k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")
    }
    return model_state, optimizer_state, meta


def load_model_checkpoint(model, path, model_name: str):
    """Load the weights and masks saved in checkpoint ``path`` into ``model`` (a ``model_name``,
    built by the caller, who decides its dropout and seeding); return ``model``. A checkpoint of
    another model is a ValueError naming the file, ``model_name`` and what did not fit."""
    state, _, _ = load_checkpoint(path)
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path} does not hold a {model_name}: {error}") from None
    return model


def atomic_write_json(path, data) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    atomic_write(Path(path), lambda stream: stream.write(text.encode()))


def load_json(path, what: str = "file"):
    """The JSON in ``path``; CorruptFileError naming ``what`` and the file when it is not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CorruptFileError(f"{what} {path}: cannot be read as JSON ({error}); delete it to "
                               "compute it afresh") from None


def _plain(value):
    """NumPy scalars and arrays, tuples and dicts turned into JSON's types."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_json(path, data) -> None:
    """Write a report (rows, a summary, or a dict of them; NumPy values allowed) as JSON,
    atomically."""
    atomic_write_json(path, _plain(data))
