"""Helpers every benchmark shares: percentiles, matching, and the rich result table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def percentiles(values: Iterable[float], *, digits: int = 2) -> dict[str, float]:
    """p50, p95, max, mean and n of `values` (milliseconds, usually). Empty: n=0, NaN-free zeros."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0, "mean": 0.0, "n": 0}
    return {
        "p50": round(float(np.percentile(arr, 50)), digits),
        "p95": round(float(np.percentile(arr, 95)), digits),
        "max": round(float(arr.max()), digits),
        "mean": round(float(arr.mean()), digits),
        "n": int(arr.size),
    }


def prf(true_positives: int, n_predicted: int, n_expected: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (an empty side counts as perfect only if both are)."""
    if n_predicted == 0 and n_expected == 0:
        return {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    p = true_positives / n_predicted if n_predicted else 0.0
    r = true_positives / n_expected if n_expected else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4)}


def match_in_time(
    predicted: Sequence[tuple[str, float]],
    expected: Sequence[tuple[str, float]],
    tolerance_s: float,
) -> list[tuple[int, int]]:
    """Match (kind, t) items one-to-one: same kind, |dt| <= tolerance, nearest first.

    Returns (predicted index, expected index) pairs.
    """
    candidates = sorted(
        (abs(pt - et), i, j)
        for i, (pk, pt) in enumerate(predicted)
        for j, (ek, et) in enumerate(expected)
        if pk == ek and abs(pt - et) <= tolerance_s
    )
    used_p: set[int] = set()
    used_e: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, i, j in candidates:
        if i in used_p or j in used_e:
            continue
        used_p.add(i)
        used_e.add(j)
        pairs.append((i, j))
    return pairs


def table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> Table:
    """A rich table; floats are printed with 3 significant decimals. In a narrow terminal
    a cell wraps instead of being cut to "…" (a figure that is cut is a wrong figure)."""
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="left" if c == columns[0] else "right", overflow="fold")
    for row in rows:
        t.add_row(*(_cell(v) for v in row))
    return t


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def latency_rows(latency: Mapping[str, Mapping[str, float]]) -> list[list[Any]]:
    """Rows (stage, p50, p95, max, n) for a {stage: percentiles} mapping."""
    return [[k, v.get("p50"), v.get("p95"), v.get("max"), v.get("n")] for k, v in latency.items()]


def print_table(t: Table, console: Console | None = None) -> None:
    """Print a benchmark table whole, cells wrapped as `table()`'s are."""
    for column in t.columns:
        column.overflow = "fold"
    console = console or Console(stderr=True)
    if console.is_terminal:
        console.print(t)
    else:  # a file or a pipe has no width: print the table at its own, unwrapped
        natural = console.measure(t, options=console.options.update_width(1000)).maximum
        width = console.width  # print(width=…) is capped at the console's width
        console.width = max(width, natural)
        try:
            console.print(t)
        finally:
            console.width = width


def progress(console: Console) -> Progress:
    """A transient bar with a count and the time spent, for long benchmark steps."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
