"""The one place that chooses which code runs an op's hot loop: plain NumPy or the Numba kernels.

    mp.set_backend("plain")          # or MINPRUNE_BACKEND=plain; "fast" is the default
    with mp.use_backend("plain"):    # for one block
        ...

`minprune.autograd.plain` writes each loop as a few lines of array code (the code chapter 1
shows); `minprune.autograd.fast` has the same functions on the Numba kernels. Both give the same
results up to float32 summation order (tests/test_backends.py). The setting itself lives in
`minprune.base.settings` (the sparse inference engine reads it too).

Arrays on a GPU (CuPy) always run plain.py's expressions: the Numba kernels take NumPy arrays.
The one GPU kernel of training is the optimiser's fused update (`masked_sgd_update_for`).
"""

from __future__ import annotations

import numpy

from minprune.autograd import fast, plain
from minprune.base.settings import backend

__all__ = ["ops_for", "masked_sgd_update_for"]


def ops_for(xp):
    """The module of functions (`fast` or `plain`, same names) an op runs on arrays of the array
    module ``xp``: fast for NumPy arrays when the "fast" backend is chosen, plain otherwise."""
    return fast if xp is numpy and backend() == "fast" else plain


def masked_sgd_update_for(weight, mask):
    """The update `minprune.training.optim.SGD` applies to one parameter, with
    `plain.masked_sgd_update`'s signature: with the "fast" backend, a masked float32 weight gets
    the fused Numba kernel (CPU, or CUDA for a CuPy array); every other parameter, and every one
    under "plain", the array expressions."""
    if backend() == "fast" and mask is not None and weight.dtype == numpy.float32:
        return fast.masked_sgd_update_for(weight)
    return plain.masked_sgd_update
