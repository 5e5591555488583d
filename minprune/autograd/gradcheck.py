"""Central-difference gradient checking, in float64.

For a function ``f`` of several arrays, pick a random projection ``r`` of its output and compare
the autograd gradient of ``sum(r * f(x))`` with the numerical one,
``(L(x + eps e_i) - L(x - eps e_i)) / (2 eps)``, one input element at a time.
"""

import numpy as np

from minprune.autograd.tensor import Tensor

__all__ = ["gradcheck", "numerical_gradient"]


def numerical_gradient(loss, array, eps=1e-6):
    """d loss / d array by central differences; ``loss()`` reads ``array`` (perturbed in place).

    Elements are visited by index rather than through a flat view, so any memory layout works
    (a transposed, Fortran-ordered input included).
    """
    grad = np.zeros(array.shape, dtype=array.dtype)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        plus = loss()
        array[index] = original - eps
        minus = loss()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(function, *arrays, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0):
    """Check autograd against central differences for ``function(*tensors) -> Tensor``.

    ``arrays`` are float64 ndarrays (one per differentiable input); each is copied with its memory
    layout kept, so a transposed input reaches the ops transposed. Raises AssertionError naming the
    input and the worst element when they disagree (a NaN in either gradient disagrees with
    everything); returns True otherwise.
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    rng = np.random.default_rng(seed)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = function(*tensors)
    projection = rng.standard_normal(out.shape)
    (out * projection).sum().backward()

    def loss():
        return float((function(*[Tensor(a) for a in arrays]).data * projection).sum())

    for index, (array, tensor) in enumerate(zip(arrays, tensors, strict=True)):
        numeric = numerical_gradient(loss, array, eps)
        analytic = tensor.grad if tensor.grad is not None else np.zeros_like(array)
        if analytic.shape != array.shape:
            raise AssertionError(
                f"input {index}: gradient shape {analytic.shape} != input shape {array.shape}"
            )
        error = np.abs(analytic - numeric)
        bound = atol + rtol * np.abs(numeric)
        beyond = np.where(error <= bound, -np.inf, np.nan_to_num(error - bound, nan=np.inf))
        if np.any(beyond > -np.inf):  # a NaN in either gradient fails too
            worst = tuple(int(i) for i in np.unravel_index(np.argmax(beyond), array.shape))
            raise AssertionError(
                f"input {index}: autograd {analytic[worst]:.6g} vs numerical {numeric[worst]:.6g} "
                f"at {worst} (max abs error {error.max():.3g})"
            )
    return True
