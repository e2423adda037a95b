"""Small statistics for evaluation and benchmarks: one percentile, Wilson intervals, proportions, means.

Standard library only: the CLI imports the modules that use these to build its parser.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable

Z95 = 1.959963984540054


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (q in [0, 100]) by linear interpolation between the closest ranks.

    This is numpy's default ("linear") and `statistics.quantiles(method="inclusive")`: the value at
    position (n - 1) * q / 100 of the sorted data. One value is its own percentile; no values give NaN
    (a float, so rounding and arithmetic still work; JSON writers turn it into null). A q outside
    [0, 100] is a ValueError.
    """
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    data = sorted(float(v) for v in values)
    if not data:
        return math.nan
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval: honest bounds for a proportion on a few dozen questions (never outside [0, 1])."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion(successes: int, n: int) -> dict:
    """A share as a metric: value (None for no items), n, and its Wilson 95% interval."""
    ci = wilson(successes, n)
    return {"value": successes / n if n else None, "n": n, "ci": list(ci) if ci else None}


def mean(values: list[float]) -> dict:
    """A mean as a metric: value (None for no items), n, and no interval."""
    return {"value": statistics.fmean(values) if values else None, "n": len(values), "ci": None}
