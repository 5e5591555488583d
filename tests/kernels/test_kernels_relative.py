"""CPU kernels on 8-bit relative steps (relative_cpu) against the float64 NumPy references.

Each kernel reads a `RelativeIndexMatrix`'s arrays as the engine passes them and is compared with
`csr_reference` on the same matrix (its `to_csr()`, or the dense weight for convolutions), on
generated matrices: the small ones of `kernel_strategies` (densities 0 and 1, empty lines, exact
zeros) and lines longer than 256 positions, so fillers sit between the weights. Inputs hold exact
zeros, which the CSC kernels skip. Sizes stay small for the ``NUMBA_DISABLE_JIT=1`` pass.
"""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kernel_strategies import KERNEL_SETTINGS, csr_matrices, float32_arrays, masks

from minprune.kernels.inference import csr_reference as reference
from minprune.kernels.inference import relative_cpu
from minprune.kernels.training.im2col import conv_output_size
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.relative import MAX_STEP, RelativeIndexMatrix

TOLERANCE = {"rtol": 1e-5, "atol": 1e-4}

# Steps around the 8-bit limit: 256 fits one code, 257 and 512 need one filler, 513 two.
GAPS = st.sampled_from([1, 2, 3, 255, 256, 257, 300, 511, 512, 513])


@st.composite
def long_patterns(draw, lines, extent=None):
    """A (lines, extent) CSRMatrix whose lines are built from `GAPS` steps (so fillers fall
    between their weights), weights non-zero multiples of 1/4; ``extent`` drawn when None."""
    positions = [np.cumsum(draw(st.lists(GAPS, max_size=5)), dtype=np.int64) - 1
                 for _ in range(lines)]
    if extent is None:
        extent = max((int(p[-1]) + 1 for p in positions if p.size), default=1)
        extent += draw(st.integers(0, 3))
    positions = [p[p < extent] for p in positions]
    indptr = np.zeros(lines + 1, np.int64)
    indptr[1:] = np.cumsum([p.size for p in positions])
    count = int(indptr[-1])
    quarters = draw(st.lists(st.integers(1, 32), min_size=count, max_size=count))
    signs = draw(st.lists(st.sampled_from([-1, 1]), min_size=count, max_size=count))
    data = (np.array(quarters, np.float32) * np.array(signs, np.float32)) / 4
    indices = np.concatenate(positions).astype(np.int32) if lines else np.zeros(0, np.int32)
    return CSRMatrix(indptr, indices, data.astype(np.float32), (lines, extent))


@st.composite
def matrices(draw, layout):
    """A (rows, cols) CSRMatrix: small, or with its stored lines (rows for "csr", columns for
    "csc") long enough to need fillers."""
    if draw(st.booleans()):
        return draw(csr_matrices())[0]
    long = draw(long_patterns(draw(st.integers(1, 5))))
    return long if layout == "csr" else long.transpose()


@st.composite
def vectors(draw, size):
    """A float32 vector with some or all entries exactly zero (a mask of any density, 0 and 1
    included); drawn element by element when small, from a seeded generator when long."""
    if size <= 12:
        values = draw(float32_arrays((size,)))
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        values = rng.uniform(-8, 8, size).astype(np.float32)
    return (values * draw(masks((size,)))).astype(np.float32)


@st.composite
def spmv_cases(draw, layout):
    """(RelativeIndexMatrix in ``layout``, the CSRMatrix, x with exact zeros, bias)."""
    csr = draw(matrices(layout))
    rows, cols = csr.shape
    x = draw(vectors(cols))
    bias = draw(vectors(rows))
    return RelativeIndexMatrix.from_csr(csr, layout), csr, x, bias


def spmv_want(csr, x, bias):
    return reference.spmv_reference(csr.indptr, csr.indices, csr.data, x, bias)


def run_csc_spmv(matrix, bias, x):
    out = np.full(matrix.shape[0], np.nan, np.float32)
    relative_cpu.csc_spmv(matrix.pointers, matrix.steps, matrix.values, bias, x, out)
    return out


def run_csc_spmv_split(matrix, bias, x, parts):
    splits = relative_cpu.csc_split_points(matrix.pointers, parts)
    partials = np.full((parts, matrix.shape[0]), np.nan, np.float32)  # the kernel zeroes them
    out = np.full(matrix.shape[0], np.nan, np.float32)
    relative_cpu.csc_spmv_split(matrix.pointers, matrix.steps, matrix.values, bias, x, splits,
                                partials, out)
    return out


def run_csr_spmv(matrix, bias, x):
    out = np.full(matrix.shape[0], np.nan, np.float32)
    relative_cpu.csr_spmv(matrix.pointers, matrix.steps, matrix.values, bias, x, out)
    return out


# -- products with a vector ------------------------------------------------------------------


@KERNEL_SETTINGS
@given(spmv_cases("csc"))
def test_csc_spmv_matches_reference(case):
    matrix, csr, x, bias = case
    np.testing.assert_allclose(run_csc_spmv(matrix, bias, x), spmv_want(csr, x, bias),
                               **TOLERANCE)


@KERNEL_SETTINGS
@given(spmv_cases("csc"), st.sampled_from(["1", "2", "3", "more than columns"]))
def test_csc_spmv_split_matches_reference(case, parts):
    matrix, csr, x, bias = case
    parts = matrix.shape[1] + 2 if parts == "more than columns" else int(parts)
    np.testing.assert_allclose(run_csc_spmv_split(matrix, bias, x, parts),
                               spmv_want(csr, x, bias), **TOLERANCE)


@KERNEL_SETTINGS
@given(spmv_cases("csr"))
def test_csr_spmv_matches_reference(case):
    matrix, csr, x, bias = case
    np.testing.assert_allclose(run_csr_spmv(matrix, bias, x), spmv_want(csr, x, bias),
                               **TOLERANCE)


@pytest.mark.parametrize(
    "dense",
    [
        np.zeros((4, 7), np.float32),  # all-zero: every line empty
        np.array([[0, 0, 0], [1, 0, 2], [0, 0, 0], [0, 3, 0]], np.float32),  # empty rows, column
        np.arange(1, 8, dtype=np.float32).reshape(1, 7),  # 1 x N, density 1
        np.arange(1, 8, dtype=np.float32).reshape(7, 1),  # N x 1, density 1
        np.zeros((0, 5), np.float32),  # no rows
        np.zeros((3, 0), np.float32),  # no columns
    ],
)
def test_vector_kernels_on_edge_shapes(dense):
    csr = CSRMatrix.from_dense(dense)
    x = np.linspace(-1, 1, dense.shape[1]).astype(np.float32)  # an exact 0 when odd-sized
    bias = np.linspace(2, 3, dense.shape[0]).astype(np.float32)
    want = dense.astype(np.float64) @ x + bias
    csc = RelativeIndexMatrix.from_csr(csr, "csc")
    np.testing.assert_allclose(run_csc_spmv(csc, bias, x), want, atol=1e-6)
    for parts in (1, 2, 3, dense.shape[1] + 2):
        np.testing.assert_allclose(run_csc_spmv_split(csc, bias, x, parts), want, atol=1e-6)
    np.testing.assert_allclose(run_csr_spmv(RelativeIndexMatrix.from_csr(csr, "csr"), bias, x),
                               want, atol=1e-6)


def test_csc_kernels_never_read_a_zero_inputs_column():
    """EIE's skip, made visible: column 1 holds NaN and x[1] is 0, so reading it would spoil
    every row it touches. (The by-row kernel has no skip: it gathers every stored weight.)"""
    dense = np.array([[1, np.nan, 0], [0, np.nan, 2], [3, 0, 4]], np.float32)
    csc = RelativeIndexMatrix.from_csr(CSRMatrix.from_dense(dense), "csc")
    x = np.array([1.0, 0.0, -1.0], np.float32)
    bias = np.zeros(3, np.float32)
    want = [1.0, -2.0, -1.0]
    np.testing.assert_array_equal(run_csc_spmv(csc, bias, x), want)
    for parts in (1, 2, 3, 5):
        np.testing.assert_array_equal(run_csc_spmv_split(csc, bias, x, parts), want)


# -- the column split ------------------------------------------------------------------------


@KERNEL_SETTINGS
@given(matrices("csc"), st.sampled_from(["1", "2", "3", "more than columns"]))
def test_split_points_rise_from_zero_to_the_columns(csr, parts):
    matrix = RelativeIndexMatrix.from_csr(csr, "csc")
    cols = matrix.shape[1]
    parts = cols + 2 if parts == "more than columns" else int(parts)
    splits = relative_cpu.csc_split_points(matrix.pointers, parts)
    assert splits.dtype == np.int64 and splits.shape == (parts + 1,)
    assert splits[0] == 0 and splits[-1] == cols
    assert np.all(np.diff(splits) >= 0)


@KERNEL_SETTINGS
@given(matrices("csc"))
@example(CSRMatrix.from_dense(np.ones((10, 2), np.float32),
                              np.array([[1, 1]] + [[0, 1]] * 9, np.float32)))
def test_two_halves_hold_entries_within_one_column_of_each_other(csr):
    """Entries count fillers: they are the work a thread walks. The best boundary always
    meets this: moving it one column changes the difference by twice that column's entries."""
    matrix = RelativeIndexMatrix.from_csr(csr, "csc")
    pointers = matrix.pointers.astype(np.int64)
    splits = relative_cpu.csc_split_points(matrix.pointers, 2)
    first, second = pointers[splits[1]] - pointers[0], pointers[splits[2]] - pointers[splits[1]]
    widest = int(np.diff(pointers).max()) if pointers.size > 1 else 0
    assert abs(first - second) <= widest


# -- convolutions ----------------------------------------------------------------------------


@st.composite
def conv_cases(draw):
    """(images, the filters as CSRMatrix (out, in * kh * kw), dense weight, bias, kernel, stride,
    padding): small filters from `csr_matrices`, or filters of more than 256 taps with fillers
    (then the images come from a seeded generator, a quarter of them exact zeros)."""
    batch = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    out_channels = draw(st.integers(1, 4))
    taps = kernel[0] * kernel[1]
    if draw(st.booleans()):
        in_channels = draw(st.integers(1, 3))
        csr = draw(csr_matrices(rows=out_channels, cols=in_channels * taps))[0]
    else:
        in_channels = draw(st.integers(256 // taps + 1, 520 // taps))
        csr = draw(long_patterns(out_channels, extent=in_channels * taps))
    height = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 6))
    width = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 6))
    shape = (batch, in_channels, height, width)
    if in_channels <= 3:
        images = draw(float32_arrays(shape))
    else:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        images = rng.uniform(-8, 8, shape).astype(np.float32)
        images[rng.random(shape) < 0.25] = 0.0
    weight = csr.to_dense().reshape(out_channels, in_channels, *kernel)
    bias = draw(float32_arrays((out_channels,)))
    return images, csr, weight, bias, kernel, stride, padding


def conv_output(images, csr, kernel, stride, padding):
    out_h = conv_output_size(images.shape[2], kernel[0], stride[0], padding[0])
    out_w = conv_output_size(images.shape[3], kernel[1], stride[1], padding[1])
    return np.full((images.shape[0], csr.shape[0], out_h, out_w), np.nan, np.float32)


@KERNEL_SETTINGS
@given(conv_cases())
def test_conv2d_images_matches_direct_convolution(case):
    images, csr, weight, bias, kernel, stride, padding = case
    filters = RelativeIndexMatrix.from_csr(csr, "csr")
    want = reference.conv2d_reference(images, weight, bias, *stride, *padding)
    for kernel_function in (relative_cpu.conv2d_images, relative_cpu.conv2d_images_parallel):
        out = conv_output(images, csr, kernel, stride, padding)
        kernel_function(filters.pointers, filters.steps, filters.values, bias, images, *kernel,
                        *stride, *padding, out)
        np.testing.assert_allclose(out, want, **TOLERANCE)


@KERNEL_SETTINGS
@given(conv_cases())
def test_conv2d_wide_matches_direct_convolution(case):
    """Stride 1, no padding (the cases' own strides and padding dropped): no patches at all."""
    images, csr, weight, bias, kernel, _, _ = case
    channels, height, width = images.shape[1:]
    if height < kernel[0] or width < kernel[1]:
        return
    filters = RelativeIndexMatrix.from_csr(csr, "csr")
    starts = relative_cpu.conv2d_wide_starts(channels, *kernel, height, width)
    want = reference.conv2d_reference(images, weight, bias, 1, 1, 0, 0)
    for kernel_function in (relative_cpu.conv2d_wide, relative_cpu.conv2d_wide_parallel):
        out = conv_output(images, csr, kernel, (1, 1), (0, 0))
        kernel_function(filters.pointers, filters.steps, filters.values, bias, starts, images,
                        out)
        np.testing.assert_allclose(out, want, **TOLERANCE)


def test_wide_starts_are_each_taps_window_start():
    starts = relative_cpu.conv2d_wide_starts(2, 2, 3, 5, 7)
    assert starts.dtype == np.int64 and starts.shape == (2 * 2 * 3,)
    for channel in range(2):
        for ky in range(2):
            for kx in range(3):
                assert starts[(channel * 2 + ky) * 3 + kx] == channel * 35 + ky * 7 + kx


def test_conv_filters_with_fillers_at_each_gap():
    """One filter per gap (256, 257, 512, 513 taps apart) over 60 channels of 3 x 3 taps: both
    conv kernels, batches of 1 and 3, strides 1-2 and paddings 0-2 for the patch kernel."""
    in_channels, kernel = 60, (3, 3)
    taps = in_channels * 9
    dense = np.zeros((5, taps), np.float32)
    for row, gap in enumerate((256, 257, 512, 513)):
        dense[row, [3, 3 + gap]] = [1.5, -0.75]
    dense[4, [0, 255, 511, 539]] = [1, 2, 3, 4]  # steps 1, 255, 256, 28 from -1
    csr = CSRMatrix.from_dense(dense)
    filters = RelativeIndexMatrix.from_csr(csr, "csr")
    assert filters.fillers == 0 + 1 + 1 + 2 + 0
    weight = dense.reshape(5, in_channels, *kernel)
    bias = np.arange(5, dtype=np.float32)
    rng = np.random.default_rng(7)
    for batch in (1, 3):
        images = rng.uniform(-1, 1, (batch, in_channels, 5, 4)).astype(np.float32)
        images[:, :, 0, 0] = 0.0
        starts = relative_cpu.conv2d_wide_starts(in_channels, *kernel, 5, 4)
        want = reference.conv2d_reference(images, weight, bias, 1, 1, 0, 0)
        for kernel_function in (relative_cpu.conv2d_wide, relative_cpu.conv2d_wide_parallel):
            out = conv_output(images, csr, kernel, (1, 1), (0, 0))
            kernel_function(filters.pointers, filters.steps, filters.values, bias, starts,
                            images, out)
            np.testing.assert_allclose(out, want, **TOLERANCE)
        for stride in (1, 2):
            for pad in (0, 1, 2):
                want = reference.conv2d_reference(images, weight, bias, stride, stride, pad, pad)
                for kernel_function in (relative_cpu.conv2d_images,
                                        relative_cpu.conv2d_images_parallel):
                    out = conv_output(images, csr, kernel, (stride, stride), (pad, pad))
                    kernel_function(filters.pointers, filters.steps, filters.values, bias,
                                    images, *kernel, stride, stride, pad, pad, out)
                    np.testing.assert_allclose(out, want, **TOLERANCE)


def test_filler_codes_are_what_the_kernels_walk():
    """The kernels' decoding and the format's agree on a line that needs fillers: each filler
    lands MAX_STEP on with 0.0, so csr_spmv sees only the two weights."""
    dense = np.zeros((1, 600), np.float32)
    dense[0, [10, 599]] = [2.0, 3.0]
    matrix = RelativeIndexMatrix.from_csr(CSRMatrix.from_dense(dense), "csr")
    assert matrix.fillers == (599 - 10 - 1) // MAX_STEP == 2
    x = np.zeros(600, np.float32)
    x[10], x[599], x[10 + MAX_STEP], x[10 + 2 * MAX_STEP] = 1.0, 1.0, 100.0, 100.0
    np.testing.assert_array_equal(run_csr_spmv(matrix, np.zeros(1, np.float32), x), [5.0])
