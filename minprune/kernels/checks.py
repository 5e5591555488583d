"""Argument checks shared by the kernel wrappers (CPU and CUDA).

Numba kernels do no bounds checking: a wrong shape reads or writes past an array's end instead of
raising. So every public wrapper checks its arguments here *before* a kernel runs, and a failure is
a ValueError naming the argument with the expected and the actual dtype and shape, e.g.

    x: expected float32 array of shape (9216,), got float64 array of shape (9216,)

Works for numpy arrays and for GPU arrays -- Numba CUDA device arrays (real or simulated) and
any array exporting ``__cuda_array_interface__`` (CuPy's) -- which all carry ``shape`` and
``dtype``.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

__all__ = ["require_array", "require_nonnegative_float", "as_pair", "is_device_array"]


def is_device_array(array) -> bool:
    """True for a GPU array: a Numba CUDA device array (or the simulator's stand-in), or one that
    exports ``__cuda_array_interface__`` (a CuPy array)."""
    if isinstance(array, np.ndarray):
        return False
    return hasattr(array, "copy_to_host") or hasattr(array, "__cuda_array_interface__")


def _is_c_contiguous(array) -> bool:
    """Numba device arrays answer ``is_c_contiguous()``; numpy and CuPy arrays ``flags``."""
    if hasattr(array, "is_c_contiguous"):
        return array.is_c_contiguous()
    return bool(array.flags.c_contiguous)


def _describe_shape(shape) -> str:
    parts = ["any" if n is None else str(n) for n in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


@functools.lru_cache(maxsize=64)
def _as_dtypes(dtypes) -> tuple[np.dtype, ...]:
    return tuple(np.dtype(d) for d in (dtypes if isinstance(dtypes, tuple) else (dtypes,)))


def require_array(
    name: str, array, *, dtypes, shape, contiguous: bool = True, allow_device: bool = False
) -> None:
    """Raise ValueError unless ``array`` has one of ``dtypes`` and matches ``shape``.

    ``dtypes`` is a dtype or a tuple of dtypes; ``shape`` is a tuple whose entries are ints or None
    (any length along that axis). With ``contiguous``, the array must also be C-contiguous (the
    kernels index raw memory row by row). Device arrays pass only with ``allow_device`` (the CUDA
    wrappers); CPU kernels need numpy arrays. The passing path is kept cheap (a few microseconds):
    wrappers call this on every kernel call.
    """
    allowed = _as_dtypes(dtypes)
    is_numpy = isinstance(array, np.ndarray)
    if is_numpy or (allow_device and is_device_array(array)):
        actual_shape = tuple(array.shape)
        if (
            array.dtype in allowed
            and len(actual_shape) == len(shape)
            and all(
                want is None or want == got for want, got in zip(shape, actual_shape, strict=True)
            )
        ):
            if not contiguous or _is_c_contiguous(array):
                return
            raise ValueError(
                f"{name}: expected a C-contiguous {_expected(allowed, shape)}, got a "
                f"non-contiguous {array.dtype} array of shape {actual_shape} "
                "(use np.ascontiguousarray)"
            )
        raise ValueError(
            f"{name}: expected {_expected(allowed, shape)}, "
            f"got {array.dtype} array of shape {actual_shape}"
        )
    where = "numpy " if is_device_array(array) else ""
    raise ValueError(
        f"{name}: expected {where}{_expected(allowed, shape)}, got {type(array).__name__}"
    )


def _expected(dtypes: tuple[np.dtype, ...], shape) -> str:
    return " or ".join(str(d) for d in dtypes) + f" array of shape {_describe_shape(shape)}"


def require_nonnegative_float(name: str, value) -> float:
    """Return ``value`` as float; ValueError unless it is a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return value


def as_pair(name: str, value, *, minimum: int) -> tuple[int, int]:
    """``3`` -> (3, 3); ``(3, 2)`` -> (3, 2); ValueError unless ints >= ``minimum``."""
    if isinstance(value, numbers.Integral):
        pair = (value, value)
    else:
        try:
            pair = tuple(value)
        except TypeError:
            pair = ()
    if len(pair) != 2 or not all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= minimum for n in pair
    ):
        raise ValueError(f"{name}: expected an int or a pair of ints >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])
