"""rag_eval.stats: the one percentile, Wilson intervals."""

from __future__ import annotations

import math

import pytest

from rag_eval.stats import mean, percentile, proportion, wilson


def test_wilson_interval_matches_published_values():
    lo, hi = wilson(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and round(hi, 4) == 0.2775
    lo, hi = wilson(10, 10)
    assert round(lo, 4) == 0.7225 and hi == pytest.approx(1.0)
    assert wilson(0, 0) is None


def test_percentile_matches_linear_interpolation():
    values = [5, 1, 4, 2, 3]
    assert percentile(values, 50) == 3
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 5
    assert percentile(values, 95) == pytest.approx(4.8)
    assert percentile([10, 20], 25) == pytest.approx(12.5)
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)


def test_percentile_edge_cases():
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_percentile_agrees_with_statistics_quantiles_inclusive():
    import statistics

    values = [0.3, 9.1, 2.2, 4.8, 4.8, 7.0, 1.5]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    assert [percentile(values, q) for q in range(1, 100)] == pytest.approx(cuts)


def test_proportion_and_mean_have_none_for_no_items():
    assert proportion(0, 0) == {"value": None, "n": 0, "ci": None}
    assert proportion(1, 2)["ci"] == pytest.approx(list(wilson(1, 2)))
    assert mean([]) == {"value": None, "n": 0, "ci": None}
    assert mean([1, 2]) == {"value": 1.5, "n": 2, "ci": None}


@pytest.mark.parametrize("n", range(1, 60))
def test_wilson_bounds_at_none_and_all_are_exact(n):
    """0/3 gave a lower bound of 5.6e-17 > 0, a negative error bar, and an evaluation whose chart crashed."""
    assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0


def test_a_chart_of_shares_at_zero_with_their_intervals_draws(tmp_path):
    from rag_eval.report import write_bar_chart
    from rag_eval.stats import proportion

    metrics = {"a": proportion(0, 3), "b": proportion(3, 3)}
    groups = {"cat": {k: m["value"] for k, m in metrics.items()}}
    intervals = {"cat": {k: m["ci"] for k, m in metrics.items()}}
    write_bar_chart(groups, [("a", "A"), ("b", "B")], tmp_path / "c.png", "t", intervals=intervals)
    assert (tmp_path / "c.png").stat().st_size > 0
