"""Small statistics for evaluation and benchmarks: one percentile, Wilson intervals, proportions, means,
and calibration (expected calibration error and its reliability table: does "80% sure" mean right 80% of
the time?).

Standard library only: the CLI imports the modules that use these to build its parser.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

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
    lo, hi = max(0.0, centre - half), min(1.0, centre + half)
    # at a share of 0 or 1 the bound is exactly the share (the formula leaves a rounding error: 5.6e-17 for 0/3,
    # which drew a negative error bar and crashed the chart of an evaluation)
    return (0.0 if successes == 0 else lo), (1.0 if successes == n else hi)


def proportion(successes: int, n: int) -> dict:
    """A share as a metric: value (None for no items), n, and its Wilson 95% interval."""
    ci = wilson(successes, n)
    return {"value": successes / n if n else None, "n": n, "ci": list(ci) if ci else None}


def mean(values: list[float]) -> dict:
    """A mean as a metric: value (None for no items), n, and no interval."""
    return {"value": statistics.fmean(values) if values else None, "n": len(values), "ci": None}


def calibration(pairs: Iterable[tuple[float, bool]], bins: int = 10) -> dict:
    """Expected calibration error and the reliability table of (stated confidence, was it right) pairs.

    `bins` equal-width bins over [0, 1] (a confidence of exactly 1 falls in the last); per bin the number of
    answers, their mean confidence and the share that were right. ECE is the standard one: the mean over
    bins of |accuracy - mean confidence|, weighted by the share of answers in the bin. A decider whose
    "0.8" is right four times in five scores 0; one sure of everything and right about nothing scores ~1.
    No pairs: ECE None (nothing was measured), never 0.
    """
    table = [{"lo": i / bins, "hi": (i + 1) / bins, "n": 0, "confidence": None, "accuracy": None} for i in range(bins)]
    sums = [[0.0, 0] for _ in range(bins)]
    n = 0
    for confidence, right in pairs:
        i = min(bins - 1, max(0, int(float(confidence) * bins)))
        sums[i][0] += float(confidence)
        sums[i][1] += int(bool(right))
        table[i]["n"] += 1
        n += 1
    ece = 0.0
    for row, (total, hits) in zip(table, sums):
        if row["n"]:
            row["confidence"], row["accuracy"] = total / row["n"], hits / row["n"]
            ece += row["n"] / n * abs(row["accuracy"] - row["confidence"])
    return {"ece": ece if n else None, "n": n, "bins": table}
