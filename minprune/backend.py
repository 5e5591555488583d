"""The one seam through which minprune picks its array functions.

Every op asks :func:`array_module` for the module that owns its data (``numpy`` today) instead of
importing numpy directly for array maths. A later GPU backend (CuPy arrays) can then reuse the ops
and layers unchanged: ``array_module(cupy_array)`` returns ``cupy``.
"""

import numpy

__all__ = ["array_module", "default_float"]

default_float = numpy.float32


def array_module(*arrays):
    """Return the array module (numpy or cupy) that owns ``arrays``; numpy when none is foreign."""
    for array in arrays:
        module = type(array).__module__
        if module.startswith("cupy"):
            import cupy  # optional: only reached when the caller already holds CuPy arrays

            return cupy
    return numpy
