"""Hypothesis strategies shared by the kernel tests: small float32 arrays and CSR matrices.

Sizes stay small (<= 12 per axis) so the suite also runs quickly with ``NUMBA_DISABLE_JIT=1``,
where every kernel is plain Python. Densities include the edges 0 and 1; shapes include 1 x N,
N x 1 and empty rows. Values are finite and include exact zeros.
"""

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from minprune.sparse.csr import CSRMatrix

# deadline=None: the first example of a run includes Numba's compilation.
KERNEL_SETTINGS = settings(max_examples=75, deadline=None)

finite_float32 = st.floats(
    min_value=-8.0, max_value=8.0, allow_nan=False, allow_infinity=False, width=32
)
densities = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(min_value=0.0, max_value=1.0))


@st.composite
def float32_arrays(draw, shape):
    """A float32 array of ``shape`` with finite values, some exactly zero."""
    size = int(np.prod(shape))
    values = draw(st.lists(finite_float32 | st.just(0.0), min_size=size, max_size=size))
    return np.array(values, dtype=np.float32).reshape(shape)


@st.composite
def masks(draw, shape, dtype=np.float32):
    """A 0/1 mask of ``shape`` whose keep-density is drawn from `densities` (0 and 1 included)."""
    density = draw(densities)
    seed = draw(st.integers(0, 2**32 - 1))
    keep = np.random.default_rng(seed).random(shape) < density
    return keep.astype(dtype)


@st.composite
def csr_matrices(draw, max_rows=12, max_cols=12, rows=None, cols=None):
    """(CSRMatrix, dense float32 twin). The pattern comes from a mask, so a stored entry may hold
    an exact 0.0, as a surviving pruned weight can."""
    rows = draw(st.integers(1, max_rows)) if rows is None else rows
    cols = draw(st.integers(1, max_cols)) if cols is None else cols
    values = draw(float32_arrays((rows, cols)))
    mask = draw(masks((rows, cols)))
    dense = np.where(mask != 0, values, np.float32(0.0)).astype(np.float32)
    return CSRMatrix.from_dense(values, mask), dense
