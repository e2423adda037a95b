"""Timing and bookkeeping helpers shared by the bench's measurements (standard library only)."""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path


def progress(message: str) -> None:
    print(f"rag bench: {message}", file=sys.stderr, flush=True)


def ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    """(fn's result, wall ms it took)."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, ms_since(t0)


def median_of(values: Iterable[float], digits: int = 1) -> float:
    """Median of the measured values (NaN ones left out), rounded; NaN when none was measured."""
    data = [v for v in values if not math.isnan(v)]
    return round(statistics.median(data), digits) if data else math.nan


def cycle(items: list, n: int) -> list:
    """`n` items taken round-robin from `items`."""
    return [items[i % len(items)] for i in range(n)]


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6, 3)


def rss_mb() -> float:
    """Peak RSS of this process so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load_average() -> float:
    """1-minute load average: other work on the machine slows every measurement, so the report records it."""
    return round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else math.nan
