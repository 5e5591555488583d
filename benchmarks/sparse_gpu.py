"""CSR against dense on a GPU, on AlexNet's fc6 and fc7 shapes at 9%: minprune's Numba CUDA kernels
(int32 CSR, and the sparse engine's 8-bit relative-index layout by row and by column,
`minprune.kernels.inference.relative_cuda`) against CuPy's cuSPARSE (``cupyx.scipy.sparse``) and
CuPy's dense product (cuBLAS).

    python benchmarks/sparse_gpu.py            # needs CuPy and a CUDA GPU (tools/gpu_check.sh)

Han et al.'s group (paper-notes: Deep Compression / EIE) measured fc6 at 9% 4.0x faster as CSR
than dense on a Titan X at batch 1, fc7 3.7x, and CSR slower than dense at batch 64. This script
measures the same comparison on the GPU it runs on, batch 1 and batch 64, each time the median
of ``--repeats`` calls after a warm-up, synchronised; everything in one run. Results are appended
to ``results/bench_sparse_gpu.json`` with the GPU's name. It has not been run yet: no GPU was
lent to the sessions that wrote it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from minprune.base.arrays import cupy_module
from minprune.inference.products_cuda import (
    csr_to_device,
    linear_forward_relative_cuda,
    relative_to_device,
    spmm_cuda,
    spmv_cuda,
)
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.relative import RelativeIndexMatrix

RESULTS = Path(__file__).resolve().parent.parent / "results" / "bench_sparse_gpu.json"
SHAPES = {"fc6": (4096, 9216), "fc7": (4096, 4096)}
DENSITY = 0.09  # Table 4: fc6 and fc7 keep 9%


def _median_ms(call, cp, repeats: int) -> float:
    call()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        cp.cuda.Device().synchronize()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def _compare(device_csr, cusparse_matrix, dense_gpu, operand, cp, repeats: int):
    """Milliseconds of minprune's CSR kernel, cuSPARSE and cuBLAS on one operand (a vector: SpMV;
    a matrix: SpMM)."""
    product = spmv_cuda if operand.ndim == 1 else spmm_cuda
    return (_median_ms(lambda: product(device_csr, operand), cp, repeats),
            _median_ms(lambda: cusparse_matrix @ operand, cp, repeats),
            _median_ms(lambda: dense_gpu @ operand, cp, repeats))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    cp = cupy_module()
    import cupyx.scipy.sparse as cusparse

    rng = np.random.default_rng(0)
    rows_out = []
    for name, (rows, cols) in SHAPES.items():
        mask = rng.random((rows, cols)) < DENSITY
        dense = (rng.standard_normal((rows, cols)) * mask).astype(np.float32)
        csr = CSRMatrix.from_dense(dense, mask.astype(np.float32))
        device_csr = csr_to_device(csr)
        by_row = relative_to_device(RelativeIndexMatrix.from_csr(csr, "csr"))
        by_column = relative_to_device(RelativeIndexMatrix.from_csr(csr, "csc"))
        bias = cp.zeros(rows, dtype=cp.float32)
        dense_gpu = cp.asarray(dense)
        cusparse_matrix = cusparse.csr_matrix(dense_gpu)
        for batch in (1, 64):
            x = cp.asarray(rng.standard_normal((cols, batch)).astype(np.float32))
            operand = x[:, 0].copy() if batch == 1 else x
            ours, theirs, blas = _compare(device_csr, cusparse_matrix, dense_gpu, operand, cp,
                                          args.repeats)
            samples = cp.ascontiguousarray(x.T)  # (batch, cols), as the engine's layers take it
            eight_bit = {
                layout: _median_ms(lambda m=matrix, s=samples, b=bias:
                                   linear_forward_relative_cuda(m, s, b), cp, args.repeats)
                for layout, matrix in (("by_row", by_row), ("by_column", by_column))}
            row = {"layer": name, "shape": [rows, cols], "density": DENSITY, "batch": batch,
                   "minprune_csr_ms": ours, "cusparse_csr_ms": theirs, "dense_cublas_ms": blas,
                   "minprune_8bit_by_row_ms": eight_bit["by_row"],
                   "minprune_8bit_by_column_ms": eight_bit["by_column"],
                   "dense_over_minprune": blas / ours, "dense_over_cusparse": blas / theirs}
            rows_out.append(row)
            print(f"{name} batch {batch:3d}: minprune CSR {ours:.3f} ms, 8-bit by row "
                  f"{eight_bit['by_row']:.3f} ms, by column {eight_bit['by_column']:.3f} ms, "
                  f"cuSPARSE {theirs:.3f} ms, dense {blas:.3f} ms -> dense / CSR "
                  f"{blas / ours:.2f}x (minprune), {blas / theirs:.2f}x (cuSPARSE)")
    gpu = cp.cuda.runtime.getDeviceProperties(0)["name"]
    record = {"gpu": gpu.decode() if isinstance(gpu, bytes) else str(gpu), "rows": rows_out,
              "command": "python benchmarks/sparse_gpu.py " + " ".join(sys.argv[1:])}
    records = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    records.append(record)
    RESULTS.write_text(json.dumps(records, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
