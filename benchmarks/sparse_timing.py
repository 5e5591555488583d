"""Timing helpers shared by the sparse benchmarks (sparse_spmv.py, sparse_sweep.py).

Timings on a small shared machine are noisy, so every method is timed in interleaved rounds
(each round runs every method once, in a fresh random order): a burst of load from elsewhere then
hits all methods alike rather than one of them, and no method always follows the same neighbour
(BLAS and torch leave their worker threads spinning for a while after a call, which slows whatever
runs next). We report the median over rounds (typical) and the best round (what the code can
do on a quiet machine), plus the load average before and after, so a reader can judge the noise.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

__all__ = [
    "RESULTS_JSON",
    "time_interleaved",
    "measure_read_bandwidth",
    "machine_description",
    "update_results",
]

RESULTS_JSON = Path(__file__).resolve().parent.parent / "results" / "bench_sparse.json"


def time_interleaved(
    methods: dict[str, Callable[[], object]], rounds: int, calls_per_round: int, warmup: int = 2
) -> dict[str, dict[str, float]]:
    """Milliseconds per call for each method: {"median_ms", "best_ms"} over ``rounds`` rounds of
    ``calls_per_round`` back-to-back calls, after ``warmup`` untimed calls (JIT, caches)."""
    for method in methods.values():
        for _ in range(warmup):
            method()
    samples: dict[str, list[float]] = {name: [] for name in methods}
    order = np.random.default_rng(0)
    names = list(methods)
    for _ in range(rounds):
        for name in order.permutation(names):  # no method always runs right after another one
            method = methods[name]
            started = time.perf_counter()
            for _ in range(calls_per_round):
                method()
            samples[name].append((time.perf_counter() - started) / calls_per_round * 1e3)
    return {
        name: {"median_ms": float(np.median(times)), "best_ms": float(np.min(times))}
        for name, times in samples.items()
    }


@njit(parallel=True, fastmath=True, cache=True)
def _parallel_sum(values):
    total = np.float32(0.0)
    for i in prange(values.shape[0]):
        total += values[i]
    return total


def measure_read_bandwidth(megabytes: int = 256, rounds: int = 10) -> float:
    """Streaming read bandwidth in GB/s (parallel sum over an array far larger than the L3)."""
    values = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    _parallel_sum(values)
    best = min(_timed(lambda: _parallel_sum(values)) for _ in range(rounds))
    return values.nbytes / best / 1e9


def _timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def machine_description() -> dict[str, object]:
    cores = os.cpu_count()
    return {
        "machine": f"{cores} cores",
        "cpu": platform.processor() or platform.machine(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _threading_layer(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "python": platform.python_version(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "nice": os.nice(0),
        "environment": {
            name: os.environ[name] for name in ("OMP_WAIT_POLICY",) if name in os.environ
        },
    }


def _threading_layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return "not initialised"


def update_results(key: str, value: dict) -> Path:
    """Store ``value`` under ``key`` in results/bench_sparse.json (other keys kept), atomically,
    with the command line that produced it."""
    RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    results[key] = {"command": "python " + " ".join(sys.argv), **value}
    descriptor, temporary = tempfile.mkstemp(dir=RESULTS_JSON.parent, suffix=".tmp")
    with os.fdopen(descriptor, "w") as file:
        json.dump(results, file, indent=2)
        file.write("\n")
    os.replace(temporary, RESULTS_JSON)
    return RESULTS_JSON
