#!/usr/bin/env bash
# The device backend's checks on a real GPU, in one run: one epoch of LeNet-300-100 on the GPU
# against the CPU, every layer kind AlexNet uses, the fused masked SGD kernel on CuPy arrays, and
# the existing CUDA kernel and sparse-engine tests (tests marked `cuda`), then the AlexNet step
# benchmark.
#
#   pip install -e ".[dev,cuda]"      # CuPy (cupy-cuda12x) and numba-cuda
#   tools/gpu_check.sh                # PY=path/to/python to choose the interpreter
#
# Fails at once when CuPy or the GPU is missing, rather than letting every test skip.
# Its running time on a GPU has not been measured (written on a machine without one).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
unset NUMBA_ENABLE_CUDASIM  # the simulator cannot run kernels on CuPy arrays
"$PY" -c "from minprune.base.arrays import cupy_module; import numba; c = cupy_module(); \
print('CuPy', c.__version__, '| GPUs:', c.cuda.runtime.getDeviceCount(), '| Numba', numba.__version__)"
"$PY" -m pytest -q -rs -m cuda tests/test_device_cuda.py tests/kernels/test_kernels_cuda.py \
    tests/sparse/test_engine.py "$@"
# One AlexNet training step at batch 256 on the GPU, minprune against PyTorch (when PyTorch has a
# CUDA build there); the result is appended to results/bench_alexnet.json.
"$PY" benchmarks/alexnet_step.py --batch 256 --device cuda --steps 5
# fc6 and fc7 at 9% as CSR against cuSPARSE and dense cuBLAS, batch 1 and 64
# (results/bench_sparse_gpu.json).
"$PY" benchmarks/sparse_gpu.py
