"""Every speed threshold minprune tunes by measurement, in one place, each with the command that
measured it.

These numbers choose between code paths that give the same results (up to float32 summation
order); they only change how fast. They were measured on this project's machine (x86_64, 2
cores, no GPU) and are worth re-measuring on another: run the named command and move the number
to where the two paths cross. Nothing else in minprune hard-codes a speed threshold.
"""

from __future__ import annotations

__all__: list[str] = [
    "SPARSE_CONV_MAX_DENSITY",
    "SPARSE_WIDE_CONV_MAX_DENSITY",
    "SPMM_MIN_BATCH",
    "SPMM_CHUNK",
    "MIN_BLOCK",
    "PER_IMAGE_MIN_POSITIONS_PER_TAP",
    "SPARSE_MAX_DENSITY",
]


# -- inference: which path the sparse engine runs a layer on (minprune.inference) ----------------
# Measured on one thread (OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1) on the paper's pruned
# LeNets, unless a comment says otherwise; the commit id names the message that records it.

# Where a dense conv pays, for compile_model(model, dense_above=...): the default engine holds no
# dense copy and runs every conv sparse. A conv run through patches (stride or padding) is
# faster dense above this density. The CSR product cost ~3.4x a dense GEMM per multiply-add, so
# LeNet-5's conv2 at 12% ran 2.4x faster sparse and conv1 at 66% 1.1-1.7x slower; break-even
# near 1 / 3.4 (benchmarks/engine_sweep.py, batch 1 to 256; commit 7db246a; int32 CSR then).
SPARSE_CONV_MAX_DENSITY = 0.3
# A conv with stride 1 and no padding (relative_cpu.conv2d_wide, no patches) is faster dense
# above this density: conv1 at 66% ran faster sparse (12.5 against 15.4 us at batch 1, 2.8
# against 3.3-4.0 ms at 256); break-even extrapolated near 80% (benchmarks/engine_sweep.py;
# c42d019; int32 CSR then).
SPARSE_WIDE_CONV_MAX_DENSITY = 0.75
# SPMM_MIN_BATCH 20: from this batch on the fused FC chain runs one SpMM per layer, below it the
# per-sample chain. The 8-bit chain on the trained LeNet-300-100, one thread: 76.5 us per sample
# chain against SpMM's 81.6 at batch 16, 121.5 against 100.9 at 24 (benchmarks/sparse_lenet.py
# --crossover, results/bench_lenet.json). LeNet-5's chain (fc1 gathered by row) crosses lower,
# near batch 8; one threshold serves both, set by LeNet-300-100's.
SPMM_MIN_BATCH = 20
# The fused FC chain stores a layer by column (EIE's layout: a zero input skips its column) only
# where it reads the network's input, by row (a gather) elsewhere -- also after a ReLU. Measured on
# the trained LeNet-300-100 at batch 1 on MNIST test images, one thread, the fused kernel alone
# (benchmarks/sparse_lenet.py's setting): fc1 on an image (82% zeros) 5.0 us by column, 6.9 by
# row; fc2 + fc3 after a ReLU (50% zeros) 3.2 us by column, 1.8 by row; the whole chain 6.2 us
# this way, 7.5 with fc2 by column too. A scattered multiply-add costs about twice a gathered one
# here, so inputs half zeros are at the break-even. No threshold: the rule is in engine_cpu.
# fc_chain_spmm runs the batch in chunks of this many samples: a chunk's activations (features x
# chunk floats; LeNet-300-100's fc1 input 784 x 64 x 4 = 200 KB) stay in the core's 2 MB L2 while
# every layer reads them. Chosen, not swept (benchmarks/sparse_lenet.py).
SPMM_CHUNK = 64
# compile_model(parallel=True) gives each thread at least this many samples of the FC chain's SpMM
# (fewer: one thread runs them all). Chosen, not swept (f573133). Parallel is off by default: on 2
# cores beside OpenBLAS's spinning workers LeNet-300-100 at batch 128 ran at 0.08x the dense forward
# with it, 3.6x without (benchmarks/engine_sweep.py, default threads; 3e4275a).
MIN_BLOCK = 32

# Kernel shapes chosen by measurement (no threshold to move; what re-measuring would check), one
# thread, LeNet-5 at the paper's densities (benchmarks/sparse_lenet.py, benchmarks/engine_sweep.py):
# - csr_cpu: slices indexed by the loop counter alone (not start + s) ran ~8x faster (7db246a).
# - csr_cpu.conv2d_images (patches per image, in cache) against conv2d_patches: conv2 at 12%,
#   35 -> 15 us at batch 1 and 12.5 -> 6.9 ms at 256, 2.4x faster than dense GEMM (7db246a).
# - conv2d_wide (no patches; now relative_cpu's): conv2 at batch 256 3.9 ms against 6.2 with
#   patches (c42d019, int32 CSR then).
# - fc_chain_cpu.fc_chain_per_sample is one flat function: split into small jitted helpers the
#   same loops ran ~20% slower at batch 1 (LeNet-300-100). Helpers jitted with inline="always"
#   (relative_cpu.gather_row, scatter_column) compile into it: alternating runs of the kernel with
#   and without them: a first pair 3-20% slower with them, a second within 1-4% (noise).


# -- training: the fast backend's layouts and the pattern op (minprune.autograd.fast, prune) ------

# conv per-image layout: Conv2d lays its patches out image by image (fast.per_image_layout, one
# GEMM per image whose result is already NCHW) when an ungrouped layer has at least this many
# output positions per image per tap of a filter. LeNet-5's conv1 (576 positions, 25 taps),
# kernels alone at batch 64: forward 3.66 -> 0.65 ms, weight and bias gradients 2.53 -> 0.55 ms;
# conv2's shape (64 positions, 500 taps) ran 2.5x slower per image; AlexNet's conv1 (3025, 363)
# forward 48.9 -> 40.7 ms at batch 16 (python benchmarks/train_speed.py for the whole step;
# f8e5866). The break-even between 64/500 and 576/25 was not swept.
PER_IMAGE_MIN_POSITIONS_PER_TAP = 1.0
# pattern training max density: prune.sparse_kernels trains a Linear layer on its pattern (the
# Numba pattern op, minprune.autograd.ops.pattern_linear) at or below this density. A 784 -> 300
# layer at batch 64 broke even at 15-20% density; LeNet-300-100's retraining passes 0.91 -> 0.65 s
# with the op (python benchmarks/sparse_retrain.py, results/bench_retrain.json; 41eb9bb).
SPARSE_MAX_DENSITY = 0.12
