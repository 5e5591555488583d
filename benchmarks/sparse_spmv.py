"""Batch-1 SpMV on AlexNet's fc6 shape (4096 x 9216) at 9% density: minprune's Numba kernel vs
scipy.sparse vs dense NumPy (BLAS GEMV), and torch's CSR when torch is importable.

    python benchmarks/sparse_spmv.py                  # all cores
    python benchmarks/sparse_spmv.py --threads 1 --rounds 100 --tag one_thread

Han et al. keep 9% of fc6 (Table 4); Deep Compression measured such a layer 2.5x faster sparse
than dense on a CPU with MKL at batch 1. Targets for this repository: <= 1.4 ms per call and
>= 1.6x scipy, all measured in the same run. GB/s counts the bytes one call must read or write:
the CSR arrays (values, int32 indices, int64 row pointers) + x + y (dense: the matrix + x + y).
Note the CSR arrays (27 MB) nearly fit this machine's 32 MB L3, so repeated calls can beat the
DRAM figure. Writes results/bench_sparse.json, key "spmv_fc6".
"""

from __future__ import annotations

import argparse
import os
import warnings

import numba
import numpy as np
import scipy.sparse
from sparse_timing import (
    machine_description,
    measure_read_bandwidth,
    time_interleaved,
    update_results,
)

from minprune.inference import products
from minprune.kernels.inference import csr_cpu
from minprune.sparse.csr import CSRMatrix

ROWS, COLS, DENSITY = 4096, 9216, 0.09
NOMINAL_BANDWIDTH_GBS = 21.6  # the machine's read bandwidth as quoted in the task
TARGET_MS, TARGET_VS_SCIPY = 1.4, 1.6


def _one_thread(call):
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return call()
    finally:
        numba.set_num_threads(previous)


def build_methods(csr: CSRMatrix, x: np.ndarray) -> dict:
    matrix = csr.to_scipy()
    dense = csr.to_dense()
    out = np.empty(ROWS, np.float32)
    zeros = np.zeros(ROWS, np.float32)
    indptr, indices = csr_cpu.unsigned_index_views(csr.indptr, csr.indices)
    methods = {
        "minprune spmv (checked wrapper)": lambda: products.spmv(csr, x, out=out),
        "minprune spmv_cpu (raw kernel)": lambda: csr_cpu.spmv_cpu(
            indptr, indices, csr.data, zeros, x, out
        ),
        "minprune spmv, 1 thread": lambda: _one_thread(lambda: products.spmv(csr, x, out=out)),
        "scipy.sparse csr @ x": lambda: matrix @ x,
        "numpy dense @ x (BLAS)": lambda: dense @ x,
    }
    try:
        import torch

        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        torch_csr = torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.copy()),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data.copy()),
            size=csr.shape,
            check_invariants=False,  # CSRMatrix validated them already
        )
        torch_x = torch.from_numpy(x).reshape(-1, 1)
        methods[f"torch {torch.__version__} csr @ x"] = lambda: torch_csr @ torch_x
    except ImportError:
        pass
    return methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--calls-per-round", type=int, default=10)
    parser.add_argument("--tag", default="", help='stored as "spmv_fc6_<tag>" in the JSON')
    args = parser.parse_args()
    numba.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    csr = CSRMatrix.from_scipy(
        scipy.sparse.random(ROWS, COLS, density=DENSITY, format="csr", dtype=np.float32, rng=rng)
    )
    x = rng.standard_normal(COLS).astype(np.float32)
    want = csr.to_scipy().astype(np.float64) @ x.astype(np.float64)
    error = float(np.abs(products.spmv(csr, x) - want).max())

    load_before = os.getloadavg()[0]
    bandwidth = measure_read_bandwidth()
    timings = time_interleaved(build_methods(csr, x), args.rounds, args.calls_per_round)
    load_after = os.getloadavg()[0]

    sparse_bytes = csr.nbytes + x.nbytes + ROWS * 4
    dense_bytes = ROWS * COLS * 4 + x.nbytes + ROWS * 4
    scipy_ms = timings["scipy.sparse csr @ x"]["median_ms"]
    print(f"SpMV {ROWS} x {COLS}, density {csr.density:.4f} (nnz {csr.nnz:,}), batch 1")
    print(f"numba threads {args.threads} ({numba.threading_layer()}), cores {os.cpu_count()}")
    print(f"max |minprune - float64 reference| = {error:.2e}")
    print(f"read bandwidth measured now: {bandwidth:.1f} GB/s (quoted: {NOMINAL_BANDWIDTH_GBS})")
    print(f"load average: {load_before:.2f} before, {load_after:.2f} after\n")
    print(f"{'method':36s} {'median ms':>9s} {'best ms':>8s} {'GB/s':>6s} {'vs scipy':>9s}")
    for name, timing in timings.items():
        moved = dense_bytes if name.startswith("numpy dense") else sparse_bytes
        timing["gb_per_s"] = moved / (timing["median_ms"] * 1e-3) / 1e9
        timing["speedup_vs_scipy"] = scipy_ms / timing["median_ms"]
        print(
            f"{name:36s} {timing['median_ms']:9.3f} {timing['best_ms']:8.3f} "
            f"{timing['gb_per_s']:6.1f} {timing['speedup_vs_scipy']:8.2f}x"
        )
    ours = timings["minprune spmv (checked wrapper)"]
    dense_ms = timings["numpy dense @ x (BLAS)"]["median_ms"]
    print(
        f"\nminprune: {ours['median_ms']:.3f} ms median (target <= {TARGET_MS}), "
        f"{ours['speedup_vs_scipy']:.2f}x scipy (target >= {TARGET_VS_SCIPY}), "
        f"{dense_ms / ours['median_ms']:.2f}x dense, "
        f"{ours['gb_per_s']:.1f} GB/s = {ours['gb_per_s'] / NOMINAL_BANDWIDTH_GBS:.0%} of "
        f"{NOMINAL_BANDWIDTH_GBS} GB/s"
    )
    path = update_results(
        "spmv_fc6" + (f"_{args.tag}" if args.tag else ""),
        {
            **machine_description(),
            "shape": [ROWS, COLS],
            "density": csr.density,
            "nnz": csr.nnz,
            "bytes_per_call_sparse": sparse_bytes,
            "measured_read_bandwidth_gb_per_s": bandwidth,
            "nominal_read_bandwidth_gb_per_s": NOMINAL_BANDWIDTH_GBS,
            "load_average_before_after": [load_before, load_after],
            "max_abs_error_vs_float64": error,
            "rounds": args.rounds,
            "calls_per_round": args.calls_per_round,
            "timings": timings,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
