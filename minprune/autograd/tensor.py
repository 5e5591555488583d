"""The autograd core: ``Tensor``, ``Function`` and the backward pass.

A ``Tensor`` wraps an ndarray (float32 unless given another floating array, so gradient checks can
run in float64). An op is a ``Function`` subclass with ``forward`` and ``backward`` side by side
(see ``minprune/autograd/ops``); ``Function.apply`` runs the forward on raw arrays and, when
gradients are wanted, records the inputs on the output so ``Tensor.backward`` can walk the graph.

Data live on one device, ``"cpu"`` (NumPy) or ``"cuda"`` (CuPy; `minprune.base.arrays`):
``Tensor.to`` moves a tensor, and an op's inputs must share a device (scalars and raw arrays, the
constants, follow the tensors' device).

The backward pass orders the graph with an explicit stack (no recursion, so deep graphs cannot hit
Python's recursion limit), then visits nodes from the output back to the leaves, accumulating
gradients. Leaves that require grad get ``.grad`` (summed across calls, as in PyTorch), an
array each leaf owns: never the caller's ``grad`` nor another leaf's. Intermediate gradients are
dropped as soon as they have been used.
"""

from __future__ import annotations

import contextlib

import numpy

from minprune.base.arrays import array_module, check_device, default_float, device_of, to_device

__all__ = ["Tensor", "Function", "no_grad", "is_grad_enabled", "unbroadcast"]

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Context manager: ops inside record no graph (evaluation, optimiser steps)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def _as_array(data, dtype=None):
    """``data`` as a floating ndarray: float arrays keep their dtype, the rest become float32."""
    if type(data) is numpy.ndarray and dtype is None and data.dtype.kind == "f":
        return data  # the common case, every op's output: nothing to convert
    if isinstance(data, Tensor):
        data = data.data
    xp = array_module(data)
    if dtype is not None:
        return xp.asarray(data, dtype=dtype)
    array = xp.asarray(data)
    if array.dtype.kind != "f":
        array = array.astype(default_float)
    return array


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it has ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class Function:
    """One differentiable op: subclasses define ``forward(*arrays, **options)``, ``backward(grad)``.

    ``forward`` receives raw arrays and returns one array; it may keep what ``backward`` needs on
    ``self``. ``backward`` receives the gradient of the output and returns one gradient per tensor
    input (or ``None`` where no gradient is needed; ``self.needs_input_grad`` says which). An
    input given as ``None`` (a layer without bias) reaches ``forward`` as ``None`` and needs no
    gradient, so an op has one ``forward(x, weight, bias=None)``.
    """

    def __init__(self):
        self.inputs: tuple[Tensor, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **options) -> Tensor:
        """Run the op on tensors (scalars and arrays are wrapped as constants, on the tensors'
        device). Tensors on two devices raise ValueError, as in PyTorch."""
        device = _device_of_inputs(cls.__name__, inputs)
        tensors = tuple(
            x if x is None or isinstance(x, Tensor) else Tensor(to_device(x, device))
            for x in inputs
        )
        function = cls()
        needs_input_grad = tuple(t is not None and t.requires_grad for t in tensors)
        requires_grad = _grad_enabled and any(needs_input_grad)
        if requires_grad:
            function.inputs = tensors
            function.needs_input_grad = needs_input_grad
        out = function.forward(*(None if t is None else t.data for t in tensors), **options)
        result = Tensor(out, requires_grad=requires_grad)
        if requires_grad:
            result._function = function
        return result


def _device_of_inputs(op_name: str, inputs) -> str:
    """The device an op runs on: its tensors' (which must agree), else "cuda" if any constant
    lives there, else "cpu"."""
    devices = {device_of(x.data) for x in inputs if isinstance(x, Tensor)}
    if len(devices) > 1:
        raise ValueError(
            f"{op_name}: expected all tensors on one device, got tensors on {sorted(devices)}; "
            "move them with .to(device)"
        )
    if devices:
        return devices.pop()
    return "cuda" if any(device_of(x) == "cuda" for x in inputs) else "cpu"


class Tensor:
    """An ndarray with an optional gradient, in PyTorch's vocabulary."""

    __array_priority__ = 1000  # so ndarray OP Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._function: Function | None = None

    # ---- basic properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._function is None

    @property
    def device(self) -> str:
        """Where the data live: "cpu" (a NumPy array) or "cuda" (a CuPy array)."""
        return device_of(self.data)

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` ("cpu" or "cuda"): itself when already there, else a copy
        that stays in the graph (its gradient is copied back to this tensor's device)."""
        if check_device(device) == self.device:
            return self
        return device_ops.ToDevice.apply(self, device=device)

    def numpy(self):
        """The data as a NumPy array: the array itself on the CPU, a host copy from the GPU."""
        return to_device(self.data, "cpu")

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> Tensor:
        return Tensor(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        """Tensors along the first axis, like iterating an ndarray (a 0-d tensor raises)."""
        for index in range(len(self)):
            yield self[index]

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(tensor)`` gives the data (no graph). A GPU tensor refuses, as CuPy does,
        rather than copy to the host behind the caller's back."""
        if self.device != "cpu":
            raise TypeError(
                f"np.asarray(tensor): the tensor is on {self.device!r}; call .numpy() or "
                ".to('cpu') for a host copy"
            )
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad})"

    # ---- the backward pass ------------------------------------------------------------------
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no graph to walk)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implied only for a single-element tensor, "
                    f"got shape {self.shape}; pass grad explicitly"
                )
            grad = array_module(self.data).ones_like(self.data)
        else:
            grad = to_device(_as_array(grad, self.data.dtype), self.device)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad shape {grad.shape} != tensor shape {self.shape}")
            grad = grad.copy()  # the caller's array stays theirs: a leaf may receive it as is

        grads = {id(self): grad}
        for node in self._topological_order():
            node_grad = grads.pop(id(node), None)
            if node_grad is None:
                continue
            if node._function is None:
                node.grad = node_grad if node.grad is None else node.grad + node_grad
                continue
            function = node._function
            input_grads = function.backward(node_grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            handed_out = []
            for parent, needs, parent_grad in zip(
                function.inputs, function.needs_input_grad, input_grads, strict=True
            ):
                if not needs or parent_grad is None:
                    continue
                if any(parent_grad is other for other in handed_out):
                    parent_grad = parent_grad.copy()  # e.g. Add's one gradient for both inputs
                handed_out.append(parent_grad)
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad

    def _topological_order(self) -> list[Tensor]:
        """Nodes that lead to ``self``, each after every node that consumes it (output first)."""
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            if node._function is not None:
                for parent in node._function.inputs:
                    if parent is not None and parent.requires_grad and id(parent) not in visited:
                        stack.append((parent, False))
        order.reverse()
        return order

    # ---- operators (the ops themselves live in minprune.autograd.ops) -------------------------
    def __add__(self, other):
        return arithmetic.Add.apply(self, other)

    def __radd__(self, other):
        return arithmetic.Add.apply(other, self)

    def __sub__(self, other):
        return arithmetic.Sub.apply(self, other)

    def __rsub__(self, other):
        return arithmetic.Sub.apply(other, self)

    def __mul__(self, other):
        return arithmetic.Mul.apply(self, other)

    def __rmul__(self, other):
        return arithmetic.Mul.apply(other, self)

    def __truediv__(self, other):
        return arithmetic.Div.apply(self, other)

    def __rtruediv__(self, other):
        return arithmetic.Div.apply(other, self)

    def __neg__(self):
        return arithmetic.Neg.apply(self)

    def __matmul__(self, other):
        return arithmetic.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return arithmetic.MatMul.apply(other, self)

    def __getitem__(self, index):
        """``t[index]`` with NumPy's indexing rules (repeated indices accumulate gradient)."""
        return indexing.Index.apply(self, index=index)

    def exp(self):
        return arithmetic.Exp.apply(self)

    def log(self):
        return arithmetic.Log.apply(self)

    def sum(self, axis=None, keepdims: bool = False):
        return arithmetic.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return arithmetic.Mean.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return arithmetic.Reshape.apply(self, shape=shape)

    def flatten(self, start_dim: int = 1):
        return arithmetic.Reshape.apply(self, shape=self.shape[:start_dim] + (-1,))

    def transpose(self, *axes):
        """Permute the axes as NumPy does: ``t.transpose(1, 0, 2)`` or ``t.transpose((1, 0, 2))``;
        no axes reverses them. (PyTorch's ``transpose(dim0, dim1)`` swaps two axes instead.)"""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], tuple | list)):
            axes = axes[0]
        return arithmetic.Transpose.apply(self, axes=tuple(axes) if axes else None)

    @property
    def T(self):
        """The axes reversed, as NumPy's ``.T``."""
        return self.transpose()

    def relu(self):
        return activation.ReLU.apply(self)


# Last, a safe cycle: these ops import Function from above; Tensor calls them only at run time.
from minprune.autograd.ops import activation, arithmetic, indexing  # noqa: E402
from minprune.autograd.ops import device as device_ops  # noqa: E402
