"""Elementwise arithmetic (with exp and log), matmul, reductions, reshape and transpose, each
forward beside its backward.

Binary elementwise ops broadcast like NumPy; their backward sums the gradient back to each input's
shape (``unbroadcast``).
"""

from minprune.autograd.tensor import Function, unbroadcast
from minprune.base.arrays import array_module

__all__ = [
    "Add", "Sub", "Mul", "Div", "Neg", "Exp", "Log", "MatMul", "Sum", "Mean", "Reshape",
    "Transpose",
]


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, grad):
        shape_a, shape_b = self.shapes
        return unbroadcast(grad, shape_a), unbroadcast(grad, shape_b)


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, grad):
        shape_a, shape_b = self.shapes
        return unbroadcast(grad, shape_a), unbroadcast(-grad, shape_b)


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        grad_a = unbroadcast(grad * self.b, self.a.shape) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, grad):
        grad_a = unbroadcast(grad / self.b, self.a.shape) if self.needs_input_grad[0] else None
        grad_b = None
        if self.needs_input_grad[1]:
            grad_b = unbroadcast(-grad * self.a / (self.b * self.b), self.b.shape)
        return grad_a, grad_b


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, grad):
        return -grad


class Exp(Function):
    def forward(self, a):
        self.out = array_module(a).exp(a)
        return self.out

    def backward(self, grad):
        return grad * self.out


class Log(Function):
    """The natural log; as in NumPy, 0 gives -inf and negative inputs nan (with a warning)."""

    def forward(self, a):
        self.a = a
        return array_module(a).log(a)

    def backward(self, grad):
        return grad / self.a


class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are promoted, leading (batch) axes broadcast."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad):
        xp = array_module(grad)
        a, b = self.a, self.b
        # Promote 1-D operands to matrices so one formula covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad  # the output lacks the axes that 1-D operands dropped: put them back
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)  # after the last one: vector @ vector gives a 0-d grad
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = g2 @ xp.swapaxes(b2, -1, -2)
            grad_a = unbroadcast(grad_a, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            grad_b = xp.swapaxes(a2, -1, -2) @ g2
            grad_b = unbroadcast(grad_b, b2.shape).reshape(b.shape)
        return grad_a, grad_b


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axis, self.keepdims = a.shape, axis, keepdims
        return a.sum(axis=axis, keepdims=keepdims)

    def backward(self, grad):
        xp = array_module(grad)
        if not self.keepdims and self.axis is not None:
            axes = (self.axis,) if isinstance(self.axis, int) else self.axis
            grad = xp.expand_dims(grad, tuple(ax % len(self.shape) for ax in axes))
        return xp.broadcast_to(grad, self.shape).copy()


class Mean(Sum):
    """The sum's backward, scaled by 1 / (number of elements averaged)."""

    def forward(self, a, axis=None, keepdims=False):
        out = super().forward(a, axis=axis, keepdims=keepdims)
        self.count = a.size // max(out.size, 1) if a.size else 1
        return out / out.dtype.type(self.count)

    def backward(self, grad):
        return super().backward(grad / self.count)


class Reshape(Function):
    def forward(self, a, shape=None):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.shape)


class Transpose(Function):
    """Permute the axes with NumPy's meaning: output axis ``i`` is input axis ``axes[i]``, and no
    ``axes`` reverses them. The backward applies the inverse permutation."""

    def forward(self, a, axes=None):
        out = a.transpose(axes)  # NumPy validates ``axes`` before we use them below
        axes = range(a.ndim - 1, -1, -1) if axes is None else [axis % a.ndim for axis in axes]
        self.inverse = [0] * a.ndim
        for position, axis in enumerate(axes):
            self.inverse[axis] = position
        return out

    def backward(self, grad):
        return grad.transpose(self.inverse)
