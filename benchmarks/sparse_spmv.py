"""Batch-1 SpMV on AlexNet's fc6 shape (4096 x 9216) at 9% density: minprune's Numba kernels --
int32 CSR, and the paper's 8-bit relative indices read as stored (by row, and by column as EIE
stores them) -- vs scipy.sparse vs dense NumPy (BLAS GEMV), and torch's CSR when it imports.

    python benchmarks/sparse_spmv.py                  # all cores
    python benchmarks/sparse_spmv.py --threads 1 --rounds 100 --tag one_thread

Han et al. keep 9% of fc6 (Table 4); Deep Compression measured such a layer 2.5x faster sparse
than dense on a CPU with MKL at batch 1. Targets (the sparse engine's format, 8-bit steps by
row): <= 1.0 ms per call and >= 3.5x scipy, measured in the same run.

The bytes model: a call must read the weights (int32 CSR: 4 + 4 bytes a weight + 8 a row; 8-bit
steps: 4 + 1 a weight + 4 a line) plus x and y; ``bytes / bandwidth`` is the time a
memory-bound kernel would take. Two bandwidths are probed in the same run: streaming from an
array far larger than any cache ("DRAM"), and re-reading an array as large as the 8-bit weights
("resident", what repeated calls on the same weights see on a machine whose caches hold them).
The x "after ReLU" rows run the column layout on x with its negatives set to 0 (about half the
inputs, as a ReLU leaves them), beside scipy on the same x. Writes results/bench_sparse.json,
key "spmv_fc6".
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
from minprune.kernels.inference import csr_cpu, relative_cpu
from minprune.sparse.csr import CSRMatrix
from minprune.sparse.relative import RelativeIndexMatrix

ROWS, COLS, DENSITY = 4096, 9216, 0.09
NOMINAL_BANDWIDTH_GBS = 21.6  # the machine's read bandwidth as quoted in the task
TARGET_MS, TARGET_VS_SCIPY = 1.0, 3.5
TARGET_METHOD = "minprune 8-bit steps by row (relative_cpu.csr_spmv)"


def _one_thread(call):
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return call()
    finally:
        numba.set_num_threads(previous)


def build_methods(csr: CSRMatrix, x: np.ndarray, x_relu: np.ndarray) -> tuple[dict, dict]:
    """(method name -> call, method name -> bytes one call reads or writes)."""
    matrix = csr.to_scipy()
    dense = csr.to_dense()
    out = np.empty(ROWS, np.float32)
    zeros = np.zeros(ROWS, np.float32)
    indptr, indices = csr_cpu.unsigned_index_views(csr.indptr, csr.indices)
    by_row = RelativeIndexMatrix.from_csr(csr, "csr")
    by_column = RelativeIndexMatrix.from_csr(csr, "csc")
    parts = numba.get_num_threads()
    splits = relative_cpu.csc_split_points(by_column.pointers, parts)
    partials = np.empty((parts, ROWS), np.float32)

    def rows(vector):
        relative_cpu.csr_spmv(by_row.pointers, by_row.steps, by_row.values, zeros, vector, out)
        return out

    def columns(vector):
        relative_cpu.csc_spmv_split(by_column.pointers, by_column.steps, by_column.values,
                                    zeros, vector, splits, partials, out)
        return out

    methods = {
        "minprune spmv (checked wrapper)": lambda: products.spmv(csr, x, out=out),
        "minprune spmv_cpu (raw kernel)": lambda: csr_cpu.spmv_cpu(
            indptr, indices, csr.data, zeros, x, out
        ),
        "minprune spmv, 1 thread": lambda: _one_thread(lambda: products.spmv(csr, x, out=out)),
        TARGET_METHOD: lambda: rows(x),
        "minprune 8-bit steps by row, 1 thread": lambda: _one_thread(lambda: rows(x)),
        "minprune 8-bit steps by column (relative_cpu.csc_spmv_split)": lambda: columns(x),
        "minprune 8-bit steps by column, x after ReLU": lambda: columns(x_relu),
        "scipy.sparse csr @ x": lambda: matrix @ x,
        "scipy.sparse csr @ x after ReLU": lambda: matrix @ x_relu,
        "numpy dense @ x (BLAS)": lambda: dense @ x,
    }
    vectors = x.nbytes + ROWS * 4
    moved = {name: csr.nbytes + vectors for name in methods}
    for name in methods:
        if "8-bit" in name:
            moved[name] = (by_row if "by row" in name else by_column).nbytes + vectors
    moved["numpy dense @ x (BLAS)"] = dense.nbytes + vectors
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
        moved[f"torch {torch.__version__} csr @ x"] = csr.nbytes + 4 * csr.nnz + vectors
    except ImportError:
        pass
    return methods, moved


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
    x_relu = np.maximum(x, np.float32(0.0))
    want = csr.to_scipy().astype(np.float64) @ x.astype(np.float64)
    error = float(np.abs(products.spmv(csr, x) - want).max())
    methods, moved = build_methods(csr, x, x_relu)
    for name in (TARGET_METHOD, "minprune 8-bit steps by column (relative_cpu.csc_spmv_split)"):
        error = max(error, float(np.abs(methods[name]() - want).max()))

    load_before = os.getloadavg()[0]
    bandwidth = measure_read_bandwidth()
    resident_bandwidth = measure_read_bandwidth(
        megabytes=max(1, RelativeIndexMatrix.from_csr(csr, "csr").nbytes // 2**20), rounds=50)
    timings = time_interleaved(methods, args.rounds, args.calls_per_round)
    load_after = os.getloadavg()[0]

    print(f"SpMV {ROWS} x {COLS}, density {csr.density:.4f} (nnz {csr.nnz:,}), batch 1")
    print(f"numba threads {args.threads} ({numba.threading_layer()}), cores {os.cpu_count()}")
    print(f"max |minprune - float64 reference| = {error:.2e}")
    print(f"read bandwidth measured now: {bandwidth:.1f} GB/s streaming (quoted: "
          f"{NOMINAL_BANDWIDTH_GBS}), {resident_bandwidth:.1f} GB/s re-reading an array of the "
          f"8-bit weights' size")
    print(f"load average: {load_before:.2f} before, {load_after:.2f} after\n")
    print(f"{'method':62s} {'MB':>5s} {'median ms':>9s} {'best ms':>8s} {'GB/s':>6s} "
          f"{'bound ms':>8s} {'vs scipy':>9s}")
    for name, timing in timings.items():
        timing["bytes_per_call"] = moved[name]
        timing["gb_per_s"] = moved[name] / (timing["median_ms"] * 1e-3) / 1e9
        timing["memory_bound_ms"] = moved[name] / resident_bandwidth / 1e6
        timing["speedup_vs_scipy"] = (
            timings["scipy.sparse csr @ x after ReLU" if "ReLU" in name
                    else "scipy.sparse csr @ x"]["median_ms"] / timing["median_ms"])
        print(
            f"{name:62s} {moved[name] / 1e6:5.1f} {timing['median_ms']:9.3f} "
            f"{timing['best_ms']:8.3f} {timing['gb_per_s']:6.1f} {timing['memory_bound_ms']:8.3f} "
            f"{timing['speedup_vs_scipy']:8.2f}x"
        )
    ours = timings[TARGET_METHOD]
    dense_ms = timings["numpy dense @ x (BLAS)"]["median_ms"]
    print(
        f"\n{TARGET_METHOD}: {ours['median_ms']:.3f} ms median (target <= {TARGET_MS}: "
        f"{'met' if ours['median_ms'] <= TARGET_MS else 'not met'}), "
        f"{ours['speedup_vs_scipy']:.2f}x scipy (target >= {TARGET_VS_SCIPY}: "
        f"{'met' if ours['speedup_vs_scipy'] >= TARGET_VS_SCIPY else 'not met'}), "
        f"{dense_ms / ours['median_ms']:.2f}x dense; it reads {ours['gb_per_s']:.1f} GB/s, "
        f"the resident bound {resident_bandwidth:.1f} GB/s would take "
        f"{ours['memory_bound_ms']:.3f} ms"
    )
    path = update_results(
        "spmv_fc6" + (f"_{args.tag}" if args.tag else ""),
        {
            **machine_description(),
            "shape": [ROWS, COLS],
            "density": csr.density,
            "nnz": csr.nnz,
            "bytes_per_call_sparse": moved["minprune spmv (checked wrapper)"],
            "bytes_per_call_8bit": moved[TARGET_METHOD],
            "target_method": TARGET_METHOD,
            "targets": {"at_most_ms": TARGET_MS, "at_least_vs_scipy": TARGET_VS_SCIPY},
            "measured_read_bandwidth_gb_per_s": bandwidth,
            "resident_read_bandwidth_gb_per_s": resident_bandwidth,
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
