"""Density sweep on AlexNet's fc6 shape (4096 x 9216): when does CSR beat dense BLAS?

    python benchmarks/sparse_sweep.py
    python benchmarks/sparse_sweep.py --densities 0.01 0.1 1.0 --rounds 3

For each density, minprune's Numba CSR kernels against dense NumPy (BLAS), measured in the same
run: SpMV (batch 1: y = W x) and SpMM at batch 256 (Y^T = W X^T, the layout minprune's Linear
path uses; dense: the same product with W dense, one SGEMM). scipy.sparse is timed too, for
reference (its SpMM only up to 20% density: it is single-threaded and takes seconds beyond).
Prints the break-even density (log-linear interpolation between the two measured densities where
sparse stops being faster), draws results/sparse_sweep.png and stores the numbers in
results/bench_sparse.json under "sweep".

The paper's context (Deep Compression / EIE): at ~10% density sparse wins at batch 1 and tends to
lose at large batches, where dense BLAS reuses each weight across the batch.
"""

from __future__ import annotations

import argparse
import os

import numba
import numpy as np
import scipy.sparse
from sparse_timing import RESULTS_JSON, machine_description, time_interleaved, update_results

from minprune.inference import products
from minprune.sparse.csr import CSRMatrix

ROWS, COLS, BATCH = 4096, 9216, 256
DEFAULT_DENSITIES = [0.01, 0.02, 0.05, 0.09, 0.2, 0.3, 0.5, 0.7, 1.0]
PNG = RESULTS_JSON.parent / "sparse_sweep.png"
SCIPY_SPMM_MAX_DENSITY = 0.2  # scipy's SpMM is single-threaded: seconds per call beyond this


def break_even(densities: list[float], sparse_ms: list[float], dense_ms: list[float]):
    """First density at which sparse is no longer faster, interpolated in log(time ratio)
    between the two measured densities around the crossing; None if it never crosses."""
    ratios = np.log(np.array(sparse_ms) / np.array(dense_ms))
    for i in range(1, len(densities)):
        if ratios[i - 1] < 0 <= ratios[i]:
            fraction = -ratios[i - 1] / (ratios[i] - ratios[i - 1])
            return densities[i - 1] + fraction * (densities[i] - densities[i - 1])
    return None if ratios[0] < 0 else densities[0]


def sweep_one(density: float, rng, rounds: int) -> dict:
    matrix = scipy.sparse.random(
        ROWS, COLS, density=density, format="csr", dtype=np.float32, rng=rng
    )
    csr = CSRMatrix.from_scipy(matrix)
    dense = csr.to_dense()
    x = rng.standard_normal(COLS).astype(np.float32)
    x_t = rng.standard_normal((COLS, BATCH)).astype(np.float32)  # X^T: (in, batch)
    out_vector = np.empty(ROWS, np.float32)
    out_batch = np.empty((ROWS, BATCH), np.float32)
    spmv = time_interleaved(
        {
            "minprune": lambda: products.spmv(csr, x, out=out_vector),
            "scipy": lambda: matrix @ x,
            "dense": lambda: dense @ x,
        },
        rounds=rounds * 4,
        calls_per_round=5,
    )
    spmm_methods = {
        "minprune": lambda: products.spmm(csr, x_t, out=out_batch),
        "dense": lambda: np.matmul(dense, x_t, out=out_batch),
    }
    if density <= SCIPY_SPMM_MAX_DENSITY:
        spmm_methods["scipy"] = lambda: matrix @ x_t
    spmm = time_interleaved(spmm_methods, rounds=rounds, calls_per_round=1, warmup=1)
    row = {"density": csr.density, "nnz": csr.nnz, "spmv": spmv, "spmm": spmm}
    print(
        f"{density:7.2%}  SpMV ms: minprune {spmv['minprune']['median_ms']:7.3f} "
        f"scipy {spmv['scipy']['median_ms']:7.3f} dense {spmv['dense']['median_ms']:7.3f} | "
        f"SpMM ms: minprune {spmm['minprune']['median_ms']:8.1f} "
        f"scipy {spmm.get('scipy', {}).get('median_ms', float('nan')):8.1f} "
        f"dense {spmm['dense']['median_ms']:8.1f}",
        flush=True,
    )
    return row


def plot(rows: list[dict], crossings: dict, threads: int, load: float) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, kind, title in zip(
        axes, ("spmv", "spmm"), ("SpMV, batch 1", f"SpMM, batch {BATCH}"), strict=True
    ):
        for method, style in (("minprune", "o-"), ("scipy", "s--"), ("dense", "^-")):
            measured = [row for row in rows if method in row[kind]]
            times = [row[kind][method]["median_ms"] for row in measured]
            label = {"minprune": "minprune CSR (Numba)", "scipy": "scipy.sparse CSR"}.get(
                method, "dense BLAS (NumPy)"
            )
            axis.plot([100 * row["density"] for row in measured], times, style, label=label)
        if crossings[kind] is not None:
            axis.axvline(100 * crossings[kind], color="grey", linestyle=":")
            axis.annotate(
                f"break-even {crossings[kind]:.0%}",
                (100 * crossings[kind], axis.get_ylim()[1]),
                textcoords="offset points",
                xytext=(4, -14),
                fontsize=8,
            )
        axis.axvline(9, color="tab:red", alpha=0.3, linewidth=6, label="AlexNet fc6 pruned: 9%")
        axis.set(xscale="log", yscale="log", xlabel="density (% of weights kept)", ylabel="ms")
        axis.set_title(f"{title}: {ROWS} x {COLS} (fc6)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    shared = ": other jobs shared the cores" if load > 1.5 else ""
    figure.suptitle(
        f"CSR vs dense, {os.cpu_count()} cores, {threads} Numba threads "
        f"(load average {load:.1f}{shared})",
        fontsize=10,
    )
    figure.tight_layout()
    PNG.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(PNG, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--densities", type=float, nargs="+", default=DEFAULT_DENSITIES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()[0]
    rows = [sweep_one(density, rng, args.rounds) for density in sorted(args.densities)]
    load_after = os.getloadavg()[0]
    crossings = {}
    for kind in ("spmv", "spmm"):
        crossings[kind] = break_even(
            [row["density"] for row in rows],
            [row[kind]["minprune"]["median_ms"] for row in rows],
            [row[kind]["dense"]["median_ms"] for row in rows],
        )
        text = (
            "never (sparse faster at every density)"
            if crossings[kind] is None
            else (f"{crossings[kind]:.1%}")
        )
        print(f"break-even density, {kind}: {text}")
    print(f"load average: {load_before:.2f} before, {load_after:.2f} after")
    plot(rows, crossings, args.threads, max(load_before, load_after))
    path = update_results(
        "sweep",
        {
            **machine_description(),
            "shape": [ROWS, COLS],
            "batch": BATCH,
            "rounds": args.rounds,
            "load_average_before_after": [load_before, load_after],
            "break_even_density": crossings,
            "rows": rows,
            "plot": str(PNG.relative_to(RESULTS_JSON.parent.parent)),
        },
    )
    print(f"wrote {PNG} and {path}")


if __name__ == "__main__":
    main()
