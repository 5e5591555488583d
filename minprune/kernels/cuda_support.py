"""Small helpers shared by the CUDA kernel modules (``csr_cuda``, ``masked_sgd_cuda``, ...).

Importing this module never needs a GPU: Numba compiles a ``@cuda.jit`` kernel on its first launch.
With ``NUMBA_ENABLE_CUDASIM=1`` (set before Numba is imported) the kernels run on Numba's CPU
simulator instead, slowly but with the same code -- that is how CI tests them.

Convention for every CUDA wrapper: inputs may be numpy arrays (copied to the device, result copied
back and returned as numpy) or device arrays (used in place, result returned on the device).
Device arrays are Numba's own or any array exporting ``__cuda_array_interface__``, such as CuPy's:
`to_device` wraps those as Numba views of the same memory, so a kernel writes the CuPy array.
Numba launches on the default stream, as CuPy does unless told otherwise, so the two are ordered.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from minprune.kernels.checks import is_device_array

__all__ = ["cuda_available", "simulator_enabled", "to_device", "blocks_for", "finish"]


def simulator_enabled() -> bool:
    """True when ``NUMBA_ENABLE_CUDASIM=1`` was set before Numba was imported."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def cuda_available() -> bool:
    """True when CUDA kernels can run here: a usable GPU, or the simulator."""
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install reports through exceptions
        return False


def to_device(array):
    """A Numba device array for ``array``: a copy of a numpy array, a view of a CuPy array (or
    any ``__cuda_array_interface__`` exporter), a Numba device array as is."""
    if hasattr(array, "copy_to_host"):
        return array
    if is_device_array(array):
        return cuda.as_cuda_array(array)
    return cuda.to_device(np.ascontiguousarray(array))


def blocks_for(size: int, threads: int) -> int:
    """Blocks needed to give ``size`` items one thread each (at least 1, as CUDA requires)."""
    return max(1, (size + threads - 1) // threads)


def finish(device_result, return_numpy: bool):
    """Copy the result back to the host when the caller passed numpy arrays."""
    return device_result.copy_to_host() if return_numpy else device_result
