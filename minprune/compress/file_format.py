"""The compressed model file: pruned, quantized and Huffman-coded (Han, Mao & Dally 2016, Fig. 1).

`save_compressed(path, model, codebooks)` writes everything needed to run the model -- the layer
sequence and input shape, and per shared layer its codebook (the 2**bits centroids, float32), the
Huffman tables (one code length per symbol) and the two Huffman-coded streams (cluster indices,
relative index steps: `minprune.compress.relative_index`); the biases as float32 -- and
`read_compressed(path)` rebuilds the pruned `Sequential` (weights = the shared values, masks = the
positions) that `minprune.inference.compile_model` runs.

The integrity rules are `minprune.sparse`'s: one checksummed .npz written atomically
(`minprune.base.files.write_npz`), read with `read_npz`'s checks, then every field checked
before anything is built -- a malformed, inconsistent or hostile file is a `CompressedFileError`
naming the file and the field. To keep a small model small, the file holds only two members
besides the checksum: ``meta`` (UTF-8 JSON, compact) and ``payload`` (uint8: every table, stream
and bias back to back, in the order ``meta["arrays"]`` lists them); each .npz member costs about
300 bytes of zip and .npy headers, which 20 members per LeNet would spend on nothing.
"""

from __future__ import annotations

import json
import math
import os
from typing import NamedTuple

import numpy as np

from minprune.base.files import CorruptFileError, read_npz, write_npz
from minprune.compress.huffman import HuffmanError, code_lengths, decode, encode
from minprune.compress.relative_index import (
    StepCodeError,
    best_index_bits,
    decode_steps,
    encode_steps,
)
from minprune.compress.weight_sharing import MAX_BITS
from minprune.nn.models import build_from_layers, describe_layers, described_parameter_shapes
from minprune.prune.masks import layers_by_weight_name

__all__ = ["save_compressed", "read_compressed", "CompressedFile", "CompressedFileError",
           "FORMAT_NAME", "FORMAT_VERSION"]

FORMAT_NAME = "minprune.compressed"
FORMAT_VERSION = 1
_FLOAT32 = np.dtype("<f4")
_MAX_INDEX_BITS = 8
# How many dense float32 weights a file may expand into: as `minprune.sparse`'s readers allow.
_MAX_EXPANSION = 100_000
_MIN_ALLOWANCE = 1 << 30


class CompressedFileError(CorruptFileError):
    """A compressed model file is truncated, corrupt, hostile or not a minprune compressed file."""


class CompressedFile(NamedTuple):
    """What `read_compressed` gives: the pruned model with its shared weights, the input shape
    stored with it, and the bytes each part of the file takes (`part_bytes`)."""

    model: object
    input_shape: tuple[int, ...] | None
    part_bytes: dict


def _layer_parts(name: str, layer, codebook, index_bits: int | None) -> tuple[dict, list]:
    """(the JSON entry, the payload pieces) of one shared layer."""
    survivors = np.flatnonzero(layer.weight_mask.reshape(-1))
    if codebook.assignments.size != survivors.size:
        raise ValueError(f"save_compressed: {name}'s codebook assigns "
                         f"{codebook.assignments.size} weights, the layer keeps {survivors.size}")
    values = layer.weight.data.reshape(-1)[survivors]
    if not np.array_equal(values, codebook.values()):
        raise ValueError(f"save_compressed: {name}'s weights are not its codebook's shared "
                         "values (retrained after sharing?); share them again")
    index_bits = index_bits or best_index_bits(survivors)
    clusters = 1 << codebook.bits
    weight_lengths = code_lengths(np.bincount(codebook.assignments, minlength=clusters)) if (
        survivors.size) else np.zeros(clusters, dtype=np.uint8)
    weight_stream, weight_bits = encode(codebook.assignments, weight_lengths)
    steps = encode_steps(survivors, index_bits)
    step_lengths = code_lengths(np.bincount(steps, minlength=1 << index_bits)) if (
        steps.size) else np.zeros(1 << index_bits, dtype=np.uint8)
    step_stream, step_bits = encode(steps, step_lengths)
    entry = {"name": name, "kind": "shared", "shape": list(layer.weight.shape),
             "bits": codebook.bits, "index_bits": index_bits, "entries": int(survivors.size),
             "steps": int(steps.size), "weight_stream_bits": weight_bits,
             "index_stream_bits": step_bits}
    pieces = [codebook.centroids.astype(_FLOAT32), weight_lengths, step_lengths, weight_stream,
              step_stream]
    return entry, pieces


def save_compressed(path, model, codebooks: dict, *, input_shape=None,
                    index_bits: dict | None = None) -> dict:
    """Write ``model`` (a pruned `Sequential` of minprune's layers) with every layer in
    ``codebooks`` (``{weight name: Codebook}``, `minprune.compress.share_weights`) stored
    quantized and Huffman-coded, every other parameter as float32; return the bytes each part
    takes (``{"fc1.weight": {"codebook": .., "weight_stream": .., ...}, ..., "meta": ..,
    "file": ..}``) and, under ``"layers"``, each shared layer's entry of the header (bits,
    index_bits, entries, steps, stream bits).
    ``index_bits`` (``{weight name: 1..8}``) fixes the step width; by default each layer's
    smallest (`best_index_bits`)."""
    layers = layers_by_weight_name(model)
    unknown = sorted(set(codebooks) - set(layers))
    if unknown:
        raise ValueError(f"save_compressed: codebooks {unknown} name no layer of the model")
    entries, pieces, parts = [], [], {}
    for key, value in model.state_dict().items():
        if key.endswith("weight_mask") and key[: -len("_mask")] in codebooks:
            continue  # the positions in the index stream are the mask
        if key in codebooks:
            entry, layer_pieces = _layer_parts(key, layers[key], codebooks[key],
                                               (index_bits or {}).get(key))
            names = ("codebook", "weight_table", "index_table", "weight_stream", "index_stream")
            parts[key] = {part: piece.nbytes for part, piece in zip(names, layer_pieces,
                                                                    strict=True)}
        else:
            array = np.asarray(value)
            if array.dtype != np.float32 or not np.isfinite(array).all():
                raise ValueError(f"save_compressed: {key} must be finite float32, got "
                                 f"{array.dtype}")
            entry, layer_pieces = {"name": key, "kind": "float32", "shape": list(array.shape)}, [
                array.astype(_FLOAT32)]
            parts[key] = {"float32": array.nbytes}
        entries.append(entry)
        pieces += [np.ascontiguousarray(piece).reshape(-1).view(np.uint8) for piece in
                   layer_pieces]
    shape = None if input_shape is None else [int(n) for n in input_shape]
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
            "architecture": {"layers": describe_layers(model), "input_shape": shape},
            "arrays": entries}
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode("utf-8")
    payload = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint8)
    write_npz(path, {"meta": np.frombuffer(meta_bytes, dtype=np.uint8), "payload": payload})
    parts["meta"] = len(meta_bytes)
    parts["file"] = os.path.getsize(path)
    parts["layers"] = {entry["name"]: entry for entry in entries if entry["kind"] == "shared"}
    return parts


def _count(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


class _Payload:
    """Reads the payload's pieces in order; every read checked against what is left."""

    def __init__(self, payload: np.ndarray):
        self.payload, self.offset = payload, 0

    def take(self, field: str, nbytes: int) -> np.ndarray:
        if self.offset + nbytes > self.payload.size:
            raise CompressedFileError(f"{field}: needs {nbytes} bytes at offset {self.offset}, "
                                      f"the payload holds {self.payload.size}")
        piece = self.payload[self.offset:self.offset + nbytes]
        self.offset += nbytes
        return piece


def _read_shared(entry: dict, payload: _Payload, field: str) -> tuple[np.ndarray, np.ndarray,
                                                                     dict]:
    """(weight, mask) of one shared layer, and its parts' bytes."""
    shape = entry["shape"]
    for key, low, high in (("bits", 1, MAX_BITS), ("index_bits", 1, _MAX_INDEX_BITS)):
        if not _count(entry.get(key), low, high):
            raise CompressedFileError(f"{field}.{key}: expected an int in {low}..{high}, got "
                                      f"{entry.get(key)!r}")
    size = math.prod(shape)
    for key in ("entries", "steps", "weight_stream_bits", "index_stream_bits"):
        if not _count(entry.get(key), 0, 8 * payload.payload.size + size):
            raise CompressedFileError(f"{field}.{key}: expected a count, got "
                                      f"{entry.get(key)!r}")
    clusters, alphabet = 1 << entry["bits"], 1 << entry["index_bits"]
    pieces = {
        "codebook": payload.take(f"{field} codebook", 4 * clusters).view(_FLOAT32),
        "weight_table": payload.take(f"{field} weight_table", clusters),
        "index_table": payload.take(f"{field} index_table", alphabet),
        "weight_stream": payload.take(f"{field} weight_stream",
                                      (entry["weight_stream_bits"] + 7) // 8),
        "index_stream": payload.take(f"{field} index_stream",
                                     (entry["index_stream_bits"] + 7) // 8),
    }
    centroids = pieces["codebook"]
    if not np.isfinite(centroids).all():
        raise CompressedFileError(f"{field} codebook: NaN or infinite centroids")
    part = "weight_stream"
    try:
        assignments = decode(pieces["weight_stream"], entry["weight_stream_bits"],
                             pieces["weight_table"], entry["entries"])
        part = "index_stream"
        steps = decode(pieces["index_stream"], entry["index_stream_bits"], pieces["index_table"],
                       entry["steps"])
        positions = decode_steps(steps, entry["index_bits"], size)
    except (HuffmanError, StepCodeError) as error:
        raise CompressedFileError(f"{field} {part}: {error}") from None
    if positions.size != entry["entries"]:
        raise CompressedFileError(f"{field} index_stream: {positions.size} positions for "
                                  f"{entry['entries']} entries")
    weight = np.zeros(size, dtype=np.float32)
    mask = np.zeros(size, dtype=np.float32)
    weight[positions] = centroids[assignments]
    mask[positions] = 1.0
    return weight.reshape(shape), mask.reshape(shape), {k: v.nbytes for k, v in pieces.items()}


def _read_meta(arrays: dict) -> dict:
    if set(arrays) != {"meta", "payload"}:
        raise CompressedFileError(f"expected members meta and payload, got {sorted(arrays)}")
    for name in ("meta", "payload"):
        if arrays[name].dtype != np.uint8 or arrays[name].ndim != 1:
            raise CompressedFileError(f"{name}: expected 1-D uint8, got {arrays[name].dtype} "
                                      f"{arrays[name].shape}")
    try:
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CompressedFileError(f"meta is not JSON ({error})") from None
    if not isinstance(meta, dict) or set(meta) != {"format", "version", "architecture",
                                                   "arrays"}:
        raise CompressedFileError("meta: expected an object with format, version, "
                                  "architecture and arrays")
    if (meta["format"], meta["version"]) != (FORMAT_NAME, FORMAT_VERSION):
        raise CompressedFileError(f"meta.format: expected {FORMAT_NAME} version "
                                  f"{FORMAT_VERSION}, got {meta['format']!r} "
                                  f"{meta['version']!r}")
    architecture = meta["architecture"]
    if not isinstance(architecture, dict) or set(architecture) != {"layers", "input_shape"}:
        raise CompressedFileError("meta.architecture: expected an object with layers and "
                                  "input_shape")
    shape = architecture["input_shape"]
    if shape is not None and (not isinstance(shape, list) or not 1 <= len(shape) <= 4
                              or not all(_count(n, 1, 2**31) for n in shape)):
        raise CompressedFileError(f"meta.architecture.input_shape: expected null or 1 to 4 "
                                  f"positive ints, got {shape!r}")
    if not isinstance(meta["arrays"], list):
        raise CompressedFileError("meta.arrays: expected a list")
    return meta


def _check_entries(meta: dict, file_bytes: int) -> dict:
    """``{name: shape}`` the layers give, checked against every entry of ``meta["arrays"]``."""
    try:
        parameters = described_parameter_shapes(meta["architecture"]["layers"])
    except (ValueError, KeyError, TypeError) as error:
        raise CompressedFileError(f"meta.architecture.layers: {error}") from None
    expected = parameters | {key + "_mask": shape for key, shape in parameters.items()
                             if key.endswith(".weight")}  # masks of unshared weights: optional
    names = []
    for index, entry in enumerate(meta["arrays"]):
        field = f"meta.arrays[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise CompressedFileError(f"{field}: expected an object with a name")
        name, kind, shape = entry["name"], entry.get("kind"), entry.get("shape")
        if kind not in ("shared", "float32"):
            raise CompressedFileError(f"{field}.kind: expected 'shared' or 'float32', got "
                                      f"{kind!r}")
        if name not in expected or shape != list(expected[name]):
            raise CompressedFileError(
                f"{field} ({name}): the layers give {expected.get(name, 'no such parameter')}, "
                f"the file says {shape!r}")
        if kind == "shared" and not name.endswith(".weight"):
            raise CompressedFileError(f"{field} ({name}): only weights are shared")
        names.append(name)
    if len(set(names)) != len(names) or not set(parameters) <= set(names):
        raise CompressedFileError(f"meta.arrays: lists {sorted(names)}, the layers have "
                                  f"{sorted(parameters)}")
    if any(name + "_mask" in names for name, entry in zip(names, meta["arrays"], strict=True)
           if entry["kind"] == "shared"):
        raise CompressedFileError("meta.arrays: a shared weight's mask is its index stream, "
                                  "not an array")
    dense_bytes = 4 * sum(math.prod(shape) for shape in parameters.values())
    if dense_bytes > max(_MIN_ALLOWANCE, _MAX_EXPANSION * file_bytes):
        raise CompressedFileError(f"meta.architecture.layers: {dense_bytes:,} bytes of weights "
                                  f"from a file of {file_bytes:,}; refusing to allocate them")
    return parameters


def read_compressed(path) -> CompressedFile:
    """The pruned, quantized model a `save_compressed` file holds (see the module docstring)."""
    name = os.fspath(path)
    arrays = read_npz(path, error=CompressedFileError, what="compressed file")
    try:
        meta = _read_meta(arrays)
        _check_entries(meta, os.path.getsize(name))
        payload, state, parts = _Payload(arrays["payload"]), {}, {}
        for index, entry in enumerate(meta["arrays"]):
            key, field = entry["name"], f"meta.arrays[{index}] ({entry['name']})"
            if entry["kind"] == "shared":
                state[key], state[key + "_mask"], parts[key] = _read_shared(entry, payload,
                                                                            field)
            else:
                count = math.prod(entry["shape"])
                values = payload.take(field, 4 * count).view(_FLOAT32)
                if not np.isfinite(values).all():
                    raise CompressedFileError(f"{field}: NaN or infinite values")
                state[key] = values.astype(np.float32).reshape(entry["shape"])
                parts[key] = {"float32": values.nbytes}
        if payload.offset != payload.payload.size:
            raise CompressedFileError(f"payload: {payload.payload.size - payload.offset} bytes "
                                      "left over after the last array")
        model = build_from_layers(meta["architecture"]["layers"])
        for weight_key in layers_by_weight_name(model):
            state.setdefault(weight_key + "_mask", np.ones_like(state[weight_key]))
        model.load_state_dict(state)
    except CompressedFileError as error:
        raise CompressedFileError(f"compressed file {name}: {error}") from None
    except (ValueError, KeyError) as error:
        raise CompressedFileError(f"compressed file {name}: {error}") from None
    shape = meta["architecture"]["input_shape"]
    parts["meta"], parts["file"] = int(arrays["meta"].size), os.path.getsize(name)
    return CompressedFile(model, None if shape is None else tuple(shape), parts)
