"""Checkpoints: one .npz per run state, written atomically.

A checkpoint holds the model's ``state_dict`` (weights, biases and masks) under ``model/``, the
optimiser's state under ``optimizer/``, and a JSON ``meta`` entry with the epoch, iteration, random
generator states and any caller data. It is written to a temporary file in the same folder and
then renamed over the old one (``os.replace`` is atomic), so a crash mid-write -- or a kill -9 --
leaves the previous checkpoint intact. Reports and summaries are written the same way, as JSON
(``atomic_write_json``, and ``save_json`` for data holding NumPy values).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "atomic_write_json",
    "save_json",
    "CheckpointError",
]


_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or not a minprune checkpoint."""


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_checkpoint(path, model_state: dict, optimizer_state: dict | None = None, **meta) -> None:
    """Write ``model_state`` (a state_dict), ``optimizer_state`` and JSON-able ``meta``."""
    arrays = {f"model/{name}": np.asarray(value) for name, value in model_state.items()}
    for name, value in (optimizer_state or {}).items():
        arrays[f"optimizer/{name}"] = np.asarray(value)
    arrays["meta"] = np.array(json.dumps(meta))
    _atomic_write(Path(path), lambda stream: np.savez(stream, **arrays))


def load_checkpoint(path) -> tuple[dict, dict, dict]:
    """Return ``(model_state, optimizer_state, meta)`` from a file written by save_checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(
            f"checkpoint {path}: cannot be read ({error}); it is truncated or not an .npz file. "
            "Delete it to start over, or point at another checkpoint."
        ) from None
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint {path}: no 'meta' entry; not a minprune checkpoint")
    meta = json.loads(str(arrays.pop("meta")))
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optimizer_state = {
        k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")
    }
    return model_state, optimizer_state, meta


def atomic_write_json(path, data) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    _atomic_write(Path(path), lambda stream: stream.write(text.encode()))


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
