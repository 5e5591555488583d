"""Save a pruned model with its pruned weights in sparse form (CSR with 8-bit relative column
steps: Han et al. 2015, Sec. 5; CSR: Deep Compression, Han et al. 2016, Sec. 2), and load it
back: `save_sparse(path, model)` also stores the layer sequence
(`minprune.nn.models.describe_layers`) and, if given, the input shape, so that
`minprune.sparse.load_model(path)` (`model_files`) rebuilds the pruned model;
`load_sparse(path)` gives the state_dict of any sparse file (also one saved from a state_dict,
which holds no architecture).

Departure from Deep Compression (Han et al. 2016, Fig. 2): its filler for an overflowing step
is an entry with value 0, which could not be told apart from a surviving exact zero; here step
code 0 is the filler ("advance 255 columns, no entry"), so a filler costs 1 byte and no value.
And 8-bit steps for every layer: a .npz holds bytes, so the paper's 5-bit FC indices (counted by
`minprune.sparse.storage`) are not bit-packed.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from minprune.base.files import read_npz, write_npz
from minprune.nn.models import describe_layers
from minprune.nn.module import Module
from minprune.sparse.csr import VALUE_DTYPE, CSRMatrix
from minprune.sparse.file_steps import (
    SparseFileError,
    decode_steps,
    encode_steps,
    sparse_file_weight_bytes,
)

__all__ = [
    "save_sparse",
    "load_sparse",
    "read_sparse_file",
    "read_sparse_arrays",
    "SparseArrays",
    "sparse_file_weight_bytes",
    "SparseFileError",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

FORMAT_NAME = "minprune.sparse"
# 2: a __sha256__ member checks the contents; 3: an optional "architecture" (the layer sequence
# and input shape) in the metadata. Version 2 files still load (without an architecture).
FORMAT_VERSION = 3
_READABLE_VERSIONS = (2, 3)
_METADATA_KEY = "__minprune_sparse__"
_SEPARATOR = "::"
_NUMERIC_KINDS = "biufc"  # bool, int, uint, float, complex: no strings, dates, records, objects


def _mask_key(weight_key: str) -> str:
    return weight_key + "_mask"


def _check_state_dict(state_dict) -> None:
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict: expected a mapping, got {type(state_dict).__name__}")
    for key, value in state_dict.items():
        if not isinstance(key, str) or _SEPARATOR in key or key == _METADATA_KEY:
            raise ValueError(
                f"state_dict key {key!r}: keys must be str without {_SEPARATOR!r} and not "
                f"{_METADATA_KEY!r}"
            )
        if not isinstance(value, np.ndarray) or value.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"state_dict[{key!r}]: expected a numeric numpy array, got {value!r}")
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            raise ValueError(f"state_dict[{key!r}]: NaN or infinite values; refusing to save")


def _sparse_weight_keys(state_dict: Mapping[str, np.ndarray]) -> list[str]:
    """Keys ``X.weight`` that have an ``X.weight_mask``; checks each pair."""
    weight_keys = []
    for key in state_dict:
        if not key.endswith("weight_mask"):
            continue
        weight_key = key[: -len("_mask")]
        if weight_key not in state_dict:
            raise ValueError(f"state_dict[{key!r}]: mask without its weight {weight_key!r}")
        weight, mask = state_dict[weight_key], state_dict[key]
        if weight.dtype != VALUE_DTYPE or weight.ndim < 2:
            raise ValueError(
                f"state_dict[{weight_key!r}]: expected a float32 array with >= 2 dims, got "
                f"{weight.dtype} of shape {weight.shape}"
            )
        if mask.shape != weight.shape:
            raise ValueError(
                f"state_dict[{key!r}]: expected shape {weight.shape} (its weight's), "
                f"got {mask.shape}"
            )
        not_binary = (mask != 0) & (mask != 1)
        if not_binary.any():
            value = mask.reshape(-1)[int(np.argmax(not_binary.reshape(-1)))]
            raise ValueError(f"state_dict[{key!r}]: mask entries must be 0 or 1, found {value!r}")
        weight_keys.append(weight_key)
    return weight_keys


def save_sparse(path, model, *, input_shape=None) -> None:
    # What is written (one uncompressed .npz, atomically: temporary file, fsync, os.replace):
    # - every ``X.weight`` with an ``X.weight_mask`` becomes a CSR matrix (out, in * kh * kw)
    #   whose pattern is the mask (a surviving exact 0.0 still loads with mask 1), stored as
    #   ``X.weight::values`` (float32), ``X.weight::steps`` (uint8 relative column steps: code 0
    #   the filler, codes 1..255 the step from the previous entry, -1 at a row start) and
    #   ``X.weight::step_indptr`` (int64, where each row's steps start);
    # - every other array (biases, masks) as it is, under its own name;
    # - ``__minprune_sparse__``: UTF-8 JSON with the format version, the key order, each
    #   sparse weight's shape and mask dtype, and (a model given) its "architecture": the
    #   layers as `describe_layers` gives them and the input shape (null if not given).
    """Write ``model`` to ``path`` (exactly that name; no ".npz" is appended), storing every
    ``X.weight`` that has an ``X.weight_mask`` as relative-index CSR. See the module docstring.

    ``model`` is a ``Sequential`` of minprune's layers (nested ones too): the file then also
    holds its layer sequence, and `minprune.sparse.load_model` rebuilds it. ``input_shape``
    (one sample's shape, e.g. (1, 28, 28) or (64,)) is stored for
    `minprune.inference.compile_model(path)`. A state_dict (any mapping of names to arrays) is
    saved too, without an architecture.

    Warns when the sparse weights take more bytes than the dense ones would (an unpruned or
    barely pruned model: a stored weight costs 4 bytes of value and at least 1 of index).
    """
    if isinstance(model, Module):
        try:
            layers = describe_layers(model)
        except ValueError as error:
            raise ValueError(
                f"save_sparse: cannot store the model's architecture ({error}); "
                "save_sparse(path, model.state_dict()) saves its weights and masks without it"
            ) from None
        architecture = {"layers": layers, "input_shape": _checked_input_shape(input_shape)}
        state_dict = model.state_dict()
    else:
        if input_shape is not None:
            raise ValueError("save_sparse: input_shape is stored with the model's architecture; "
                             "pass the model itself, not its state_dict")
        state_dict, architecture = model, None
    _check_state_dict(state_dict)
    sparse_keys = _sparse_weight_keys(state_dict)
    mask_keys = {_mask_key(key) for key in sparse_keys}
    arrays: dict[str, np.ndarray] = {}
    sparse_metadata = {}
    for key, value in state_dict.items():
        if key in mask_keys:
            continue  # the mask is the CSR pattern of its weight
        if key not in sparse_keys:
            arrays[key] = value
            continue
        matrix_shape = (value.shape[0], int(np.prod(value.shape[1:])))
        mask = state_dict[_mask_key(key)].reshape(matrix_shape)
        csr = CSRMatrix.from_dense(value.reshape(matrix_shape), mask)
        codes, step_indptr = encode_steps(csr)
        arrays[key + _SEPARATOR + "values"] = np.array(csr.data)
        arrays[key + _SEPARATOR + "steps"] = codes
        arrays[key + _SEPARATOR + "step_indptr"] = step_indptr
        sparse_metadata[key] = {"shape": list(value.shape), "mask_dtype": mask.dtype.str}
    _warn_if_larger_than_dense(state_dict, sparse_keys, arrays)
    metadata = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "keys": list(state_dict),
        "sparse": sparse_metadata,
    }
    if architecture is not None:
        metadata["architecture"] = architecture
    arrays[_METADATA_KEY] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    write_npz(path, arrays)


def _checked_input_shape(input_shape) -> list[int] | None:
    if input_shape is None:
        return None
    try:
        shape = [int(n) for n in input_shape]
    except (TypeError, ValueError):
        shape = []
    if not shape or any(n < 1 for n in shape) or list(input_shape) != shape:
        raise ValueError(f"save_sparse: input_shape must be one sample's shape, positive ints "
                         f"such as (1, 28, 28) or (64,), got {input_shape!r}")
    return shape


def _warn_if_larger_than_dense(state_dict, sparse_keys: list[str], arrays: dict) -> None:
    """Warn when the sparse form of the masked weights is larger than the weights dense."""
    dense_bytes = sum(state_dict[key].nbytes for key in sparse_keys)
    sparse_bytes = sum(arrays[key + _SEPARATOR + part].nbytes for key in sparse_keys
                       for part in ("values", "steps", "step_indptr"))
    if sparse_bytes <= dense_bytes:
        return
    kept = sum(arrays[key + _SEPARATOR + "values"].size for key in sparse_keys)
    total = sum(state_dict[key].size for key in sparse_keys)
    warnings.warn(
        f"save_sparse: the masked weights keep {kept:,} of {total:,} "
        f"(density {kept / max(total, 1):.1%}), so their sparse form ({sparse_bytes:,} bytes) is "
        f"larger than the dense weights ({dense_bytes:,} bytes): the file compresses nothing. "
        "Prune the model first (minprune.prune), or save an unpruned model's weights with "
        "np.savez",
        UserWarning,
        stacklevel=3,
    )


# How far a sparse file may expand into dense weights and masks: a layer pruned to nothing
# expands by about its column count (8 bytes of row pointer per row against 8 bytes per column of
# dense weight and mask: 9,216x for AlexNet's fc6), so 100,000x leaves room for any real model
# while a tiny hostile file cannot make minprune allocate more than 1 GiB.
MAX_EXPANSION = 100_000
_MIN_ALLOWANCE = 1 << 30


def _memory_bytes() -> int:
    """This machine's physical memory: no file may claim to need more."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 40


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_metadata(arrays: dict, file_bytes: int) -> tuple[list[str], dict, dict]:
    """The key order, ``{weight key: (shape, mask dtype)}`` and the metadata (its
    "architecture" is checked by `read_model_file`), every other field checked."""
    if _METADATA_KEY not in arrays:
        raise SparseFileError(f"not a minprune sparse file (no {_METADATA_KEY})")
    raw = arrays.pop(_METADATA_KEY)
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise SparseFileError(f"{_METADATA_KEY} is not JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise SparseFileError(f"{_METADATA_KEY}: expected a JSON object")
    format_seen = (metadata.get("format"), metadata.get("version"))
    # a list, not a set: the values may be any JSON, and a list is unhashable
    if format_seen not in [(FORMAT_NAME, version) for version in _READABLE_VERSIONS]:
        raise SparseFileError(
            f"expected format {FORMAT_NAME} version {' or '.join(map(str, _READABLE_VERSIONS))}, "
            f"got {format_seen}")
    keys, sparse = metadata.get("keys"), metadata.get("sparse")
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise SparseFileError(f"{_METADATA_KEY}.keys: expected a list of names, got {keys!r}")
    if len(set(keys)) != len(keys):
        raise SparseFileError(f"{_METADATA_KEY}.keys: a name is listed twice")
    if not isinstance(sparse, dict):
        raise SparseFileError(f"{_METADATA_KEY}.sparse: expected an object, got {sparse!r}")
    checked, dense_bytes = {}, 0
    for key, info in sparse.items():
        field = f"{_METADATA_KEY}.sparse[{key!r}]"
        if key not in keys or _mask_key(key) not in keys:
            raise SparseFileError(f"{field}: the weight or its mask is missing from the keys")
        shape = info.get("shape") if isinstance(info, dict) else None
        if not isinstance(shape, list) or len(shape) < 2 or not all(map(_is_count, shape)):
            raise SparseFileError(
                f"{field}.shape: expected >= 2 non-negative ints, got {shape!r}")
        try:
            mask_dtype = np.dtype(info.get("mask_dtype"))
        except (TypeError, ValueError):
            mask_dtype = None
        if mask_dtype is None or mask_dtype.kind not in "biuf":
            raise SparseFileError(
                f"{field}.mask_dtype: expected a bool, int or float dtype, got "
                f"{info.get('mask_dtype')!r}")
        dense_bytes += math.prod(shape) * (np.dtype(VALUE_DTYPE).itemsize + mask_dtype.itemsize)
        checked[key] = (tuple(shape), mask_dtype)
    allowed = min(_memory_bytes(), max(_MIN_ALLOWANCE, MAX_EXPANSION * file_bytes))
    if dense_bytes > allowed:
        raise SparseFileError(
            f"{_METADATA_KEY}: the shapes claim {dense_bytes} bytes of dense weights and masks, "
            f"more than a {file_bytes}-byte file can expand to ({allowed} bytes: at most "
            f"{MAX_EXPANSION}x the file, and this machine's memory)")
    return keys, checked, metadata


def load_sparse(path) -> dict[str, np.ndarray]:
    """Read a file written by `save_sparse`; returns the state_dict with dense weights and masks.

    Anything wrong raises `SparseFileError` (a ValueError) naming the file and the field, before
    any large array is allocated: a truncated or bit-flipped file (checksum), object arrays,
    shapes whose dense weights would exceed `MAX_EXPANSION` times the file or this machine's
    memory, wrong dtypes, lengths that
    disagree, columns out of range, NaN or infinite weights, arrays the metadata does not list.
    Nothing unvalidated reaches a kernel. `minprune.sparse.load_model` rebuilds the model too.
    """
    return read_sparse_file(path)[0]


def read_sparse_file(path) -> tuple[dict[str, np.ndarray], dict]:
    """(the state_dict, the metadata JSON) of the sparse file ``path``, checked as in
    `load_sparse`; `minprune.sparse.model_files` reads the architecture from the metadata."""
    stored = read_sparse_arrays(path)
    restored = dict(stored.arrays)
    for key, (csr, shape, mask_dtype) in stored.weights.items():
        restored[key] = csr.to_dense().reshape(shape)
        restored[_mask_key(key)] = csr.pattern().reshape(shape).astype(mask_dtype)
    return {key: restored[key] for key in stored.keys}, stored.metadata


class SparseArrays(NamedTuple):
    """What `read_sparse_arrays` gives: the pruned weights as CSR (never dense), the other arrays
    (biases, ...), every name in the file's order (a weight's mask too), and the metadata."""

    weights: dict  # weight name -> (CSRMatrix (rows, prod(rest)), full shape, mask dtype)
    arrays: dict[str, np.ndarray]
    keys: list[str]
    metadata: dict


def read_sparse_arrays(path) -> SparseArrays:
    """The sparse file ``path`` with its pruned weights as validated `CSRMatrix` objects, no
    dense array built (`minprune.inference.compile_model` runs a file this way); checked as in
    `load_sparse`."""
    name = os.fspath(path)
    arrays = read_npz(path, error=SparseFileError, what="sparse file")
    try:
        keys, sparse, metadata = _read_metadata(arrays, os.path.getsize(name))

        def take(member: str) -> np.ndarray:
            if member not in arrays:
                raise SparseFileError(f"array {member!r} missing from the file")
            return arrays.pop(member)

        weights = {}
        for key, (shape, mask_dtype) in sparse.items():
            matrix_shape = (shape[0], math.prod(shape[1:]))
            csr = decode_steps(
                key,
                take(key + _SEPARATOR + "steps"),
                take(key + _SEPARATOR + "step_indptr"),
                take(key + _SEPARATOR + "values"),
                matrix_shape,
            )
            weights[key] = (csr, shape, mask_dtype)
        others = {}
        for key, array in arrays.items():
            if key in weights or _is_mask_of(key, weights) or key not in keys:
                raise SparseFileError(f"array {key!r} is not listed in {_METADATA_KEY}.keys")
            if array.dtype.kind not in _NUMERIC_KINDS:
                raise SparseFileError(f"{key}: expected a numeric array, got dtype {array.dtype}")
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                raise SparseFileError(f"{key}: NaN or infinite values")
            others[key] = array
        missing = [key for key in keys
                   if key not in weights and key not in others and not _is_mask_of(key, weights)]
        if missing:
            raise SparseFileError(f"arrays missing from the file: {missing}")
    except SparseFileError as error:
        raise SparseFileError(f"sparse file {name}: {error}") from None
    except ValueError as error:  # the CSR container's own checks
        raise SparseFileError(f"sparse file {name}: {error}") from None
    return SparseArrays(weights, others, keys, metadata)


def _is_mask_of(key: str, weights: dict) -> bool:
    return key.endswith("_mask") and key[: -len("_mask")] in weights
