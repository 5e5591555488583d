"""The one seam through which minprune picks its array functions, and the devices it knows.

Every op asks :func:`array_module` for the module that owns its data instead of importing numpy
directly for array maths: ``numpy`` for arrays on the CPU, ``cupy`` for arrays on a CUDA GPU. The
ops and layers are written once against the functions the two modules share, so the same code
trains on either device (``model.to("cuda")``, `minprune.nn.Module.to`).

Two devices, named as in PyTorch: ``"cpu"`` (NumPy arrays) and ``"cuda"`` (CuPy arrays on the
current GPU). CuPy is optional (``pip install "minprune[cuda]"``) and is imported only when a
``"cuda"`` array is asked for or met; asking without CuPy, or with CuPy but no GPU, raises
`DeviceUnavailable` saying which. This module is a leaf: it imports numpy only.
"""

import numpy

__all__ = [
    "DEVICES",
    "DeviceUnavailable",
    "array_module",
    "check_device",
    "cupy_module",
    "default_float",
    "device_of",
    "shape_of",
    "to_device",
]

default_float = numpy.float32

DEVICES = ("cpu", "cuda")


class DeviceUnavailable(RuntimeError):
    """The device asked for cannot be used here (no CuPy, or no GPU that CuPy can see)."""


def _is_cupy_array(array) -> bool:
    kind = type(array)
    return kind is not numpy.ndarray and kind.__module__.startswith("cupy")


def array_module(*arrays):
    """Return the array module (numpy or cupy) that owns ``arrays``; numpy when none is foreign."""
    for array in arrays:
        if _is_cupy_array(array):
            import cupy  # optional: only reached when the caller already holds CuPy arrays

            return cupy
    return numpy


def device_of(array) -> str:
    """``"cuda"`` for a CuPy array, ``"cpu"`` for anything else (NumPy arrays, lists, scalars)."""
    return "cuda" if _is_cupy_array(array) else "cpu"


def check_device(device) -> str:
    """``device`` if it is one of `DEVICES`; ValueError naming it otherwise."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    return device


def cupy_module():
    """Import and return cupy, checking that it sees a GPU; `DeviceUnavailable` says what is
    missing otherwise. The only place minprune imports CuPy on purpose."""
    try:
        import cupy
    except ImportError as error:
        raise DeviceUnavailable(
            f"device 'cuda' needs CuPy: pip install 'minprune[cuda]' ({error})"
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CuPy reports a missing driver or GPU through exceptions
        raise DeviceUnavailable(f"CuPy is installed but sees no CUDA GPU ({error})") from None
    if count < 1:
        raise DeviceUnavailable("CuPy is installed but sees no CUDA GPU (0 devices)")
    return cupy


def to_device(array, device: str):
    """``array`` as an array on ``device``: the same object when it is already there (no copy),
    else a copy (host to GPU, or GPU to host). Lists and scalars become arrays."""
    if check_device(device) == "cpu":
        return array.get() if _is_cupy_array(array) else numpy.asarray(array)
    return cupy_module().asarray(array)


def shape_of(value) -> tuple:
    """The shape of a state entry: an array's own (NumPy or CuPy), or that of a list as an array."""
    return tuple(value.shape) if hasattr(value, "shape") else to_device(value, "cpu").shape
