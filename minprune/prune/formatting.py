"""The paper's tables as text: counts and percents printed as the paper prints them, and our
numbers beside the paper's (`minprune.base.paper`)."""

from __future__ import annotations

import math

__all__ = ["format_table", "format_summary", "format_count", "format_percent", "COLUMNS"]

COLUMNS = ("Layer", "Weights", "FLOP", "Act%", "Weights%", "FLOP%")


def _half_up(x: float, digits: int = 0) -> str:
    """``x`` rounded half up (as printed tables round: 430.5 -> 431), without trailing zeros."""
    scale = 10**digits
    text = f"{math.floor(x * scale + 0.5) / scale:.{digits}f}"
    return text.rstrip("0").rstrip(".") if digits else text


def format_count(n) -> str:
    """A count as the paper prints it: ``0.5K``, ``235K``, ``4586K``, ``38M``, ``1.5B``.

    Thousands up to 10 million (the LeNet tables print 4586K), millions up to a billion; counts
    below 50 print as they are.
    """
    if n is None:
        return "-"
    n = float(n)
    if n >= 1e9:
        return f"{_half_up(n / 1e9, 1)}B"
    if n >= 1e7:
        return f"{_half_up(n / 1e6)}M"
    if n >= 1e4:
        return f"{_half_up(n / 1e3)}K"
    if n >= 50:
        return f"{_half_up(n / 1e3, 1)}K"
    return f"{n:.0f}"


def format_percent(fraction) -> str:
    """A fraction as a whole percent (``38%``); one decimal below 1%, so small values show."""
    if fraction is None:
        return "-"
    percent = 100.0 * fraction
    if 0 < percent < 1:
        return f"{percent:.1f}%"
    return f"{percent:.0f}%"


def _cells(row) -> list[str]:
    return [
        str(row["layer"]),
        format_count(row["weights"]),
        format_count(row["flop"]),
        format_percent(row["act"]),
        format_percent(row["weights_kept"]),
        format_percent(row["flop_kept"]),
    ]


def _render(header, body) -> str:
    """Columns padded to a common width: the first left-aligned, numbers right-aligned."""
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]
    lines = [
        " | ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in [header, *body]
    ]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def format_table(rows, paper=None) -> str:
    """A text table in the paper's layout (Layer | Weights | FLOP | Act% | Weights% | FLOP%).

    With ``paper`` (e.g. :data:`minprune.base.paper.PAPER_LENET_300_100`), each cell reads
    ``ours (paper)``; rows are matched by layer name and a layer the paper does not list shows
    ``-``.
    """
    if not rows:
        raise ValueError("format_table: no rows to print")
    if paper is None:
        return _render(list(COLUMNS), [_cells(row) for row in rows])
    by_name = {row["layer"]: _cells(row) for row in paper}
    body = []
    for row in rows:
        ours = _cells(row)
        theirs = by_name.get(row["layer"], ["-"] * len(ours))
        body.append([ours[0]] + [f"{a} ({b})" for a, b in zip(ours[1:], theirs[1:], strict=True)])
    header = [COLUMNS[0]] + [f"{name} (paper)" for name in COLUMNS[1:]]
    return _render(header, body)


def format_summary(summary: dict, paper: dict | None = None) -> str:
    """The Table 1 line as text, e.g. ``error 1.64% -> 1.59%, parameters 267K -> 22K (12x)``,
    with the paper's line (from :data:`minprune.base.paper.PAPER_SUMMARY`) after it when given."""
    def text(line):
        return (
            f"error {line['error_before']:.2%} -> {line['error_after']:.2%}, parameters "
            f"{format_count(line['parameters_before'])} -> "
            f"{format_count(line['parameters_after'])} ({line['compression']:.1f}x)"
        )
    if paper is None:
        return text(summary)
    return f"ours:  {text(summary)}\npaper: {text(paper)}"
