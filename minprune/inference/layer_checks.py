"""The first step of `minprune.inference.compile_model`: walk a model's layers (or a sparse
file's layer sequence), check that each accepts the shape the previous one gives, and take each
Linear/Conv2d weight as a validated `CSRMatrix` (``weight * weight_mask``, or the file's arrays,
never dense). The result is a list of `Op`s, which the stage builders (`engine_cpu`,
`engine_plain`, `engine_cuda`) turn into code that runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from minprune.inference.products import conv2d_output_size
from minprune.kernels.training.im2col import conv_output_size
from minprune.nn import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.model_files import NetworkFile

__all__ = ["Op", "check_model", "check_file", "masked_csr", "weight_shape", "reads_the_input",
           "SUPPORTED"]

SUPPORTED = "Linear, Conv2d (groups=1), ReLU, MaxPool2d, Flatten, Dropout"


@dataclass
class Op:
    """One model layer after checking: its type, its fields, its shapes and (Linear/Conv2d) CSR
    weights. The stage builders dispatch on ``type``; ``kind`` only names it in the summary.
    ``layer`` is the model's layer, or for a sparse file a namespace of the fields its layer
    sequence stores (kernel_size, stride, ...): both answer the same attribute names."""

    name: str
    kind: str
    type: type
    layer: object
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    csr: CSRMatrix | None = None
    bias: np.ndarray | None = None


def masked_csr(layer) -> tuple[CSRMatrix, np.ndarray]:
    """(weight * weight_mask as CSR (out, fan_in), float32 bias): the pattern is the mask's, so a
    kept weight that is exactly 0.0 stays a stored entry, as in `CSRMatrix.from_dense`."""
    weight = np.asarray(layer.weight.data, dtype=np.float32)
    mask = np.asarray(layer.weight_mask)
    rows = weight.shape[0]
    matrix = (weight * mask).reshape(rows, -1)
    csr = CSRMatrix.from_dense(matrix, mask.reshape(rows, -1))
    if layer.bias is None:
        bias = np.zeros(rows, dtype=np.float32)
    else:
        bias = np.ascontiguousarray(layer.bias.data, dtype=np.float32)
    return csr, bias


# Each supported layer type's output shape (per sample) for an input ``shape``; a ValueError
# naming the layer when it cannot take that input.


def _linear_output(name: str, layer: Linear, shape: tuple[int, ...]) -> tuple[int, ...]:
    if shape != (layer.in_features,):
        raise ValueError(
            f"layer '{name}': Linear expects per-sample input ({layer.in_features},), but "
            f"receives {shape}; add a Flatten before it, or give one sample's shape: "
            f"compile_model(model, input_shape=(C, H, W) or (features,))"
        )
    return (layer.out_features,)


def _conv2d_output(name: str, layer: Conv2d, shape: tuple[int, ...]) -> tuple[int, ...]:
    if layer.groups != 1:
        raise ValueError(
            f"layer '{name}': the sparse engine cannot run a grouped Conv2d "
            f"(groups={layer.groups}); it runs Conv2d with groups=1"
        )
    if len(shape) != 3 or shape[0] != layer.in_channels:
        raise ValueError(
            f"layer '{name}': Conv2d expects per-sample input ({layer.in_channels}, H, W), "
            f"but receives {shape}; give one sample's shape: "
            f"compile_model(model, input_shape=({layer.in_channels}, H, W))"
        )
    try:
        out_h, out_w = conv2d_output_size(shape[1:], layer.kernel_size, layer.stride, layer.padding)
    except ValueError as error:
        raise ValueError(f"layer '{name}': {error}") from None
    return (layer.out_channels, out_h, out_w)


def _max_pool2d_output(name: str, layer: MaxPool2d, shape: tuple[int, ...]) -> tuple[int, ...]:
    if len(shape) != 3 or min(shape[1:]) < layer.kernel_size:
        raise ValueError(
            f"layer '{name}': MaxPool2d({layer.kernel_size}) expects per-sample input "
            f"(C, H, W) with H, W >= {layer.kernel_size}, but receives {shape}"
        )
    out_h, out_w = (conv_output_size(size, layer.kernel_size, layer.stride, 0)
                    for size in shape[1:])
    return (shape[0], out_h, out_w)


def _flatten_output(name: str, layer: Flatten, shape: tuple[int, ...]) -> tuple[int, ...]:
    return (int(np.prod(shape)),)


def _same_output(name: str, layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape


# The layer types the engine runs: type -> (its name in the summary, its output shape). Exact
# types, so a subclass with another forward is refused rather than run as its parent.
_LAYERS = {
    Linear: ("linear", _linear_output),
    Conv2d: ("conv2d", _conv2d_output),
    MaxPool2d: ("max_pool2d", _max_pool2d_output),
    Flatten: ("flatten", _flatten_output),
    ReLU: ("relu", _same_output),
    Dropout: ("dropout", _same_output),
}
_WEIGHTED = (Linear, Conv2d)  # the layers stored as CSR


def _check_op(name: str, layer_type: type, layer, shape: tuple[int, ...], weights) -> Op:
    """Turn one layer into an `Op`, checking that it accepts ``shape`` (per sample);
    ``weights()`` gives its (CSR weight, float32 bias) if it has weights."""
    if layer_type not in _LAYERS:
        raise ValueError(
            f"layer '{name}': the sparse engine cannot run a {layer_type.__name__}; it runs "
            f"{SUPPORTED}"
        )
    kind, output_shape = _LAYERS[layer_type]
    output = output_shape(name, layer, shape)
    csr, bias = weights() if layer_type in _WEIGHTED else (None, None)
    return Op(name, kind, layer_type, layer, shape, output, csr, bias)


def _layers_in_order(model: Sequential, prefix: str = ""):
    """Yield ``(dotted name, layer)`` for each layer of ``model``, nested ``Sequential``s (which
    `minprune.interop.torch.from_torch` makes of nested ``torch.nn.Sequential``s) opened in place:
    they run their layers in order, as the outer one does."""
    for name, layer in model._modules.items():
        if type(layer) is Sequential:
            yield from _layers_in_order(layer, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", layer


def _described_in_order(layers, prefix: str = ""):
    """`_layers_in_order` for a file's layer sequence: ``(dotted name, type, fields)``."""
    for entry in layers:
        name = f"{prefix}{entry['name']}"
        if entry["type"] == "Sequential":
            yield from _described_in_order(entry["layers"], f"{name}.")
        else:
            fields = {key: value for key, value in entry.items() if key not in ("name", "type")}
            kind = next((k for k in _LAYERS if k.__name__ == entry["type"]), None)
            yield name, kind or type(entry["type"], (), {}), SimpleNamespace(**fields)


def _file_weights(stored: NetworkFile, name: str):
    """(CSR weight, float32 bias) of layer ``name`` of a sparse file: no dense array."""
    csr = stored.weights[f"{name}.weight"]
    bias = stored.arrays.get(f"{name}.bias")
    bias = (np.zeros(csr.shape[0], dtype=np.float32) if bias is None
            else np.ascontiguousarray(bias, dtype=np.float32))
    return csr, bias


def _check_layers(layers, input_shape) -> list[Op]:
    """``layers``: ``(name, type, fields, weights)`` in order -> checked `Op`s."""
    shape = _checked_input_shape(input_shape)
    ops = []
    for name, layer_type, layer, weights in layers:
        ops.append(_check_op(name, layer_type, layer, shape, weights))
        shape = ops[-1].output_shape
    if not ops:
        raise ValueError("compile_model: the model has no layers")
    return ops


def _checked_input_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if not shape or any(n < 1 for n in shape) or tuple(input_shape) != shape:
        raise ValueError(f"compile_model: input_shape must be positive ints, got {input_shape!r}")
    return shape


def check_model(model, input_shape) -> list[Op]:
    if not isinstance(model, Sequential):
        raise ValueError(
            f"compile_model: expected a minprune.nn.Sequential (layers run in order), got "
            f"{type(model).__name__}"
        )
    return _check_layers(
        ((name, type(layer), layer, lambda layer=layer: masked_csr(layer))
         for name, layer in _layers_in_order(model)), input_shape)


def check_file(stored: NetworkFile, input_shape) -> list[Op]:
    return _check_layers(
        ((name, kind, fields, lambda name=name: _file_weights(stored, name))
         for name, kind, fields in _described_in_order(stored.layers)), input_shape)


def weight_shape(op: Op) -> tuple[int, ...]:
    layer = op.layer
    if op.type is Linear:
        return (layer.out_features, layer.in_features)
    return (layer.out_channels, layer.in_channels // layer.groups, layer.kernel_size,
            layer.kernel_size)


def reads_the_input(ops: list, position: int) -> bool:
    """Whether ``ops[position]`` reads the network's input, looking back over the layers that
    pass values through unchanged (Dropout at inference, Flatten)."""
    while position > 0 and ops[position - 1].type in (Dropout, Flatten):
        position -= 1
    return position == 0
