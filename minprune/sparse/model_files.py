"""A sparse file that rebuilds its model: `load_model(path)` gives back the pruned model that
`minprune.sparse.save_sparse(path, model)` wrote -- its layers rebuilt from the layer sequence
stored in the file (`minprune.nn.models.describe_layers`), its weights and masks from the file's
CSR arrays -- and `read_model_file(path)` the input shape stored beside it, which
`minprune.inference.compile_model(path)` uses.

The file format and its integrity checks are `export`'s; this module only reads the
"architecture" of the metadata, as warily as the rest: every field checked, and the parameters the
layers would have compared with the arrays the file holds before a single layer is built.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from minprune.nn.models import build_from_layers, described_parameter_shapes
from minprune.nn.module import Module
from minprune.sparse.export import (
    _METADATA_KEY,
    SparseFileError,
    _mask_key,
    read_sparse_arrays,
    read_sparse_file,
)

__all__ = ["load_model", "read_model_file", "ModelFile", "read_network_file", "NetworkFile"]


class ModelFile(NamedTuple):
    """What `read_model_file` gives: the pruned model and the stored input shape (None if the
    file was saved without one)."""

    model: Module
    input_shape: tuple[int, ...] | None


def read_model_file(path) -> ModelFile:
    """The pruned model a `save_sparse(path, model)` file holds, rebuilt from its layer sequence
    with the file's weights and masks, and the input shape stored beside it.

    The architecture is checked like the rest of the file: a malformed one, or one whose
    parameters differ from the file's arrays in name or shape, is a `SparseFileError` naming the
    file and the field, raised before any layer is built (so a hostile file cannot make minprune
    allocate what its arrays do not hold). A file saved from a state_dict holds no architecture:
    a ValueError says to load its state_dict into a model built by hand.
    """
    name = os.fspath(path)
    state, metadata = read_sparse_file(path)
    _require_architecture(name, metadata)
    try:
        shapes = {key: array.shape for key, array in state.items()}
        layers, input_shape = _read_architecture(metadata["architecture"], shapes)
        model = build_from_layers(layers)
        model.load_state_dict(state)
    except (ValueError, KeyError) as error:
        raise _architecture_error(name, error) from None
    return ModelFile(model, input_shape)


def load_model(path) -> Module:
    """The pruned model (weights and masks) saved by `save_sparse(path, model)`, rebuilt from the
    layer sequence in the file; see `read_model_file`, which also gives the input shape."""
    return read_model_file(path).model


class NetworkFile(NamedTuple):
    """What `read_network_file` gives: the layer sequence (`describe_layers`' dicts), the input
    shape (or None), the pruned weights as `CSRMatrix` (rows, prod(rest)) by parameter name, and
    the other parameters (biases) as arrays."""

    layers: list
    input_shape: tuple[int, ...] | None
    weights: dict
    arrays: dict


def read_network_file(path) -> NetworkFile:
    """A `save_sparse(path, model)` file as its layer sequence and CSR weights, without building
    the model or any dense weight (AlexNet's fc6 would be 151 MB dense):
    `minprune.inference.compile_model(path)` runs it this way. Checked as `read_model_file`."""
    name = os.fspath(path)
    stored = read_sparse_arrays(path)
    _require_architecture(name, stored.metadata)
    shapes = {key: array.shape for key, array in stored.arrays.items()}
    for key, (_, shape, _) in stored.weights.items():
        shapes[key] = shapes[_mask_key(key)] = tuple(shape)
    try:
        layers, input_shape = _read_architecture(stored.metadata["architecture"], shapes)
    except (ValueError, KeyError) as error:
        raise _architecture_error(name, error) from None
    weights = {key: csr for key, (csr, _, _) in stored.weights.items()}
    return NetworkFile(layers, input_shape, weights, stored.arrays)


def _require_architecture(name: str, metadata: dict) -> None:
    """A file saved from a state_dict holds no architecture: say what to do instead."""
    if "architecture" not in metadata:
        raise ValueError(
            f"sparse file {name}: holds weights but no architecture (saved from a state_dict, "
            "or by an older minprune); build the model yourself and load the weights: "
            "model.load_state_dict(minprune.sparse.load_sparse(path)), or save with "
            "save_sparse(path, model) to store the architecture"
        )


def _architecture_error(name: str, error: Exception) -> SparseFileError:
    """A malformed architecture's error, naming the file and the field."""
    message = error.args[0] if isinstance(error, KeyError) else error
    return SparseFileError(f"sparse file {name}: {_METADATA_KEY}.architecture: {message}")


def _read_architecture(architecture, shapes: dict) -> tuple[list, tuple[int, ...] | None]:
    """(layers, input shape) of a file's architecture, checked against its arrays' shapes."""
    if not isinstance(architecture, dict) or set(architecture) != {"layers", "input_shape"}:
        raise ValueError("expected an object with layers and input_shape")
    input_shape = architecture["input_shape"]
    if input_shape is not None and (
            not isinstance(input_shape, list) or not 1 <= len(input_shape) <= 4
            or not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 2**31
                       for n in input_shape)):
        raise ValueError(f"input_shape: expected null or 1 to 4 positive ints, got "
                         f"{input_shape!r}")
    layers = architecture["layers"]
    described = described_parameter_shapes(layers)
    expected = dict(described)
    expected |= {_mask_key(key): shape for key, shape in described.items()
                 if key.endswith(".weight")}
    differ = sorted(key for key in expected.keys() | shapes.keys()
                    if key not in shapes or key not in expected
                    or tuple(shapes[key]) != tuple(expected[key]))
    if differ:
        key = differ[0]
        raise ValueError(
            f"the layers give other parameters than the file holds: {key!r} is "
            f"{expected.get(key, 'absent')} in the layers, "
            f"{tuple(shapes[key]) if key in shapes else 'absent'} in the file"
            f"{f' ({len(differ)} names differ)' if len(differ) > 1 else ''}")
    return layers, None if input_shape is None else tuple(input_shape)
