"""The structured-against-connection comparison drawn from its records
(``benchmarks/structured.py``, ``results/structured/MODEL.json``): validation error against
parameters kept and against measured latency, one line per road, the chosen points starred."""

from __future__ import annotations

__all__ = ["plot_roads"]

ROAD_STYLES = {"a": ("(a) connections, sparse engine", "C0", "o"),
               "b": ("(b) channels, dense", "C1", "s"),
               "c": ("(c) channels then connections, sparse engine", "C2", "^")}
AXES = (("parameters", "parameters kept (log)"),
        ("latency_us_batch1", "latency at batch 1, us (log)"),
        ("latency_us_batch256", "latency at batch 256, us (log)"))


def plot_roads(records: list):
    """One row per record (model), one column per x axis of `AXES` present in the records."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    axes_used = [axis for axis in AXES
                 if all(axis[0] in rung for record in records
                        for ladder in record["ladders"].values() for rung in ladder)]
    figure, grid = plt.subplots(len(records), len(axes_used), squeeze=False,
                                figsize=(4.2 * len(axes_used), 3.4 * len(records)))
    for row, record in zip(grid, records, strict=True):
        chosen = {rung["file"] for rung in record["chosen"].values()}
        for axis, (key, label) in zip(row, axes_used, strict=True):
            for road, (name, colour, marker) in ROAD_STYLES.items():
                ladder = record["ladders"][road]
                axis.plot([rung[key] for rung in ladder],
                          [100 * rung["validation_error"] for rung in ladder],
                          marker=marker, color=colour, label=name, alpha=0.8)
                for rung in ladder:
                    if rung["file"] in chosen and rung["road"] == road:
                        axis.plot(rung[key], 100 * rung["validation_error"], "*", ms=16,
                                  color=colour, markeredgecolor="black")
            dense = record["ladders"]["a"][0]
            axis.axhline(100 * (dense["validation_error"] + record["tolerance"]), ls=":",
                         color="grey", label="baseline + tolerance")
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(NullFormatter())  # decades only: no crowded labels
            axis.set_xlabel(label)
            axis.set_ylabel("validation error (%)")
            axis.set_title(f"{record['model']}", fontsize=10)
            axis.grid(alpha=0.3)
    grid[0][0].legend(fontsize=7)
    figure.tight_layout()
    return figure
