"""rag_eval.bench.report: the markdown table, targets, findings and `--json` (no models)."""

from __future__ import annotations

import json

from rag_eval.bench import report as bench


def fake_results(**overrides) -> dict:
    results = {key: 1.5 for key in bench.REQUIRED_KEYS}
    results.update(
        date="2025-01-01 00:00", machine="2 CPUs", model="m.gguf", mode="extractive", quick=True, bench_seconds=12.0,
        ask_via="HTTP", ask_n=3, clients=4, size_a=10_000, size_b=100_000, seed_chunks=16,
        pipeline_steps_ms={"search": 12.5, "plan": 3.0}, ask_p50_ms=1500.0, retrieve_p50_ms_10k=float("nan"),
        help_top_imports="rag_eval.evaluate 60 ms", embedder_shared=True, notes=["a note"],
    )  # fmt: skip
    results.update(overrides)
    return results


def test_markdown_table_has_values_targets_and_methods():
    text = bench.render_markdown(fake_results())
    assert text.startswith("# rag bench")
    assert "| measure | value | target | how it was measured |" in text
    assert (
        "| /ask median, 1 client (ms) | 1,500.0 | <= 1,000.0 **missed** | HTTP; 3 eval questions, model warm |" in text
    )
    assert "| peak RSS of a serving process (MB) | 1.5 | <= 1,536.0 met |" in text
    assert "search 12.5, plan 3" in text  # dicts are spelled out
    assert "| search p50, 10,000 chunks (ms) | n/a |" in text
    assert "- a note" in text
    assert "\n\n\n" not in text


def test_markdown_skips_rows_that_were_not_measured():
    results = fake_results()
    del results["cold_start_s"]
    assert "cold start to ready" not in bench.render_markdown(results)


def test_json_report_always_has_the_required_keys():
    report = bench.json_report({"ask_p50_ms": 900.0, "ttft_ms": float("nan"), "steps": {"a": float("nan")}})
    assert set(bench.REQUIRED_KEYS) <= set(report)
    assert report["ttft_ms"] is None and report["cold_start_s"] is None and report["steps"] == {"a": None}
    assert report["targets_met"] == {"ask_p50_ms": True}
    json.dumps(report, allow_nan=False)


def test_check_targets():
    met = bench.check_targets({"ask_p50_ms": 999.0, "overhead_ratio": 1.2, "peak_rss_mb": float("nan")})
    assert met == {"ask_p50_ms": True, "overhead_ratio": False}


def test_findings_explain_missed_targets_from_the_measurements():
    results = fake_results(
        ask_p50_ms=1500.0,
        raw_generate_p50_ms=900.0,
        overhead_ratio=1.3,
        generate_overhead_ratio=1.01,
        cold_start_s=20.0,
        cold_start_phases_s={"embedder": 14.0},
        load_average={"start": 2.0},
    )
    notes = " ".join(bench.findings(results))
    assert "/ask over target" in notes and "900" in notes
    assert "overhead_ratio 1.3" in notes and "search 12.5" in notes
    assert "embedder 14" in notes
    assert "load average" in notes
