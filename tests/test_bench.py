"""`rag bench`: the pure helpers (no models), and one slow end-to-end run of `--quick --json`.

No test asserts on speed: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from rag import bench
from rag.chunking import chunk_document
from rag.documents import load_document

from .conftest import ROOT  # noqa: E402

SENTENCES = [
    "Microsoft President Brad Smith met China's Minister of Commerce, Wang Wentao, on December 6, 2023.",
    "The talks covered artificial intelligence and trade between the United States and Beijing.",
    "Tesla CEO Elon Musk also visited China, where Tesla operates one of its largest factories.",
    "Both sides said they would keep talking.",
    "Apple CEO Tim Cook visited China in 2023 as well.",
]


# --- percentiles -----------------------------------------------------------------------------------------


def test_percentile_matches_linear_interpolation():
    values = [5, 1, 4, 2, 3]
    assert bench.percentile(values, 50) == 3
    assert bench.percentile(values, 0) == 1
    assert bench.percentile(values, 100) == 5
    assert bench.percentile(values, 95) == pytest.approx(4.8)
    assert bench.percentile([10, 20], 25) == pytest.approx(12.5)


def test_percentile_edge_cases():
    assert bench.percentile([7.0], 95) == 7.0
    assert math.isnan(bench.percentile([], 50))
    with pytest.raises(ValueError):
        bench.percentile([1, 2], 101)


# --- synthetic corpus ---------------------------------------------------------------------------------------


def test_synthetic_names_are_unique_and_pronounceable():
    names = [bench.synthetic_name(i) for i in range(20_000)]
    assert len(set(names)) == len(names)
    assert all(n.isalpha() and n[0].isupper() and len(n) == 8 for n in names)


def test_perturbed_sentence_varies_names_and_numbers_or_gains_a_place():
    rng = random.Random(1)
    names = {"Brad": "Kovi", "Smith": "Talu", "Wang": "Rema", "Wentao": "Sofi", "China": "Dune",
             "Commerce": "Pala", "December": "Bosa", "Minister": "Lira", "Microsoft": "Vexa"}  # fmt: skip
    varied = bench.perturb_sentence(SENTENCES[0], names, rng, "Zanu")
    assert "Brad" not in varied and "Kovi" in varied and "Vexa" in varied
    assert "2023" not in varied or "6" not in varied.split("Bosa")[1][:3]
    plain = bench.perturb_sentence(SENTENCES[3], names, rng, "Zanu")
    assert plain == "In Zanu, both sides said they would keep talking."


def test_synthetic_documents_are_distinct_and_deterministic():
    corpus = bench.SyntheticCorpus(SENTENCES, seed=3)
    docs = corpus.documents(40)
    assert len({doc_id for doc_id, _ in docs}) == 40
    assert len({text for _, text in docs}) == 40
    assert bench.SyntheticCorpus(SENTENCES, seed=3).documents(40) == docs
    assert bench.SyntheticCorpus(SENTENCES, seed=4).documents(40) != docs


def test_synthetic_documents_chunk_into_distinct_chunks(tmp_path):
    corpus = bench.SyntheticCorpus(SENTENCES)
    chunks = []
    for doc_id, text in corpus.documents(30):
        path = tmp_path / doc_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        chunks += chunk_document(load_document(path, tmp_path), 160, 0)
    texts = [c.text for c in chunks]
    assert len(texts) > 60
    assert len(set(texts)) == len(texts)


def test_synthetic_chunk_texts_hit_the_count_and_respect_the_size():
    corpus = bench.SyntheticCorpus(SENTENCES)
    chunks = corpus.chunk_texts(500, 200)
    assert len(chunks) == 500
    assert len({text for _, text in chunks}) == 500
    longest_sentence = max(len(s) for s in SENTENCES) + 40  # names and numbers change lengths a little
    assert all(len(text) <= max(200, longest_sentence) for _, text in chunks)


def test_group_sentences_never_exceeds_the_size_unless_one_sentence_does():
    assert bench.group_sentences(["aaaa.", "bbbb.", "cccc."], 11) == ["aaaa. bbbb.", "cccc."]
    assert bench.group_sentences(["x" * 30 + "."], 10) == ["x" * 30 + "."]
    assert bench.group_sentences([], 10) == []


def test_synthetic_corpus_needs_sentences():
    with pytest.raises(ValueError):
        bench.SyntheticCorpus(["  ", ""])


def test_tile_count():
    assert bench.tile_count(150, 10_000) == 9_850
    assert bench.tile_count(20_000, 10_000) == 0


# --- report ------------------------------------------------------------------------------------------------


def fake_results(**overrides) -> dict:
    results = {key: 1.5 for key in bench.REQUIRED_KEYS}
    results.update(
        date="2025-01-01 00:00", machine="2 CPUs", model="m.gguf", mode="extractive", quick=True, bench_seconds=12.0,
        ask_via="HTTP", ask_n=3, clients=4, size_a=10_000, size_b=100_000, seed_chunks=16,
        pipeline_steps_ms={"search": 12.5, "plan": 3.0}, ask_p50_ms=1500.0, retrieve_p50_ms_10k=float("nan"),
        help_top_imports="rag.evaluation 60 ms", embedder_shared=True, notes=["a note"],
    )  # fmt: skip
    results.update(overrides)
    return results


def test_markdown_table_has_values_targets_and_methods():
    text = bench.render_markdown(fake_results())
    assert text.startswith("# rag bench")
    assert "| measure | value | target | how it was measured |" in text
    assert "| /ask median, 1 client (ms) | 1,500.0 | <= 1,000.0 **missed** | HTTP; 3 eval questions, model warm |" in text
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


def test_top_imports_reads_importtime_output():
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |   _io",
        "import time:      4557 |     135444 | site",
        "import time:     62171 |     138391 | rag.evaluation",
        "import time:      9000 |     200000 |     deep.child",
        "import time:      2000 |      20000 | logging",
    ])  # fmt: skip
    assert bench.top_imports(stderr, 2) == [("rag.evaluation", 138.391), ("site", 135.444)]


def test_module_imports_only_the_standard_library():
    code = "import sys, rag.bench; heavy = {'numpy', 'torch', 'faiss', 'llama_cpp', 'fastapi', 'pydantic'}; " \
           "print(sorted(heavy & set(sys.modules)))"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_arguments():
    import argparse

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--json", "--quick", "--out", "x.md"])
    assert args.json and args.quick and args.out == Path("x.md")
    assert parser.parse_args([]).out == bench.DEFAULT_OUT


# --- end to end --------------------------------------------------------------------------------------------

# Until `bench` is registered in rag.cli, the same arguments go straight to run_command.
FALLBACK_RUNNER = """
import argparse, sys
from rag import bench, cli
parser = argparse.ArgumentParser()
cli.model_options(parser)
bench.add_arguments(parser)
sys.exit(bench.run_command(parser.parse_args(sys.argv[1:])))
"""


def bench_command() -> list[str]:
    registered = subprocess.run([sys.executable, "-m", "rag.cli", "bench", "--help"], capture_output=True, cwd=ROOT)
    if registered.returncode == 0:
        return [sys.executable, "-m", "rag.cli", "bench"]
    return [sys.executable, "-c", FALLBACK_RUNNER]


@pytest.mark.slow
def test_quick_bench_end_to_end(tmp_path):
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [*bench_command(), "--quick", "--json", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=1800
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in bench.REQUIRED_KEYS:
        assert isinstance(report[key], (int, float)) and report[key] > 0, key
    assert report["quick"] is True
    assert out.read_text("utf-8").startswith("# rag bench")


def test_findings_explain_missed_targets_from_the_measurements():
    results = fake_results(ask_p50_ms=1500.0, raw_generate_p50_ms=900.0, overhead_ratio=1.3, generate_overhead_ratio=1.01,
                           cold_start_s=20.0, cold_start_phases_s={"embedder": 14.0}, load_average={"start": 2.0})  # fmt: skip
    notes = " ".join(bench.findings(results))
    assert "/ask over target" in notes and "900" in notes
    assert "overhead_ratio 1.3" in notes and "search 12.5" in notes
    assert "embedder 14" in notes
    assert "load average" in notes


def test_chunk_texts_can_start_after_the_documents_already_ingested():
    corpus = bench.SyntheticCorpus(SENTENCES)
    early = {text for _, text in corpus.chunk_texts(100, 200)}
    late = corpus.chunk_texts(100, 200, first_doc=1000)
    assert all(doc_id >= "synthetic/001000.txt" for doc_id, _ in late)
    assert not early & {text for _, text in late}


def test_scaled_vectors_keep_the_real_rows_and_stay_unit_length():
    import numpy as np

    rng = np.random.default_rng(0)
    real = rng.standard_normal((7, 16)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    scaled = bench.scaled_vectors(real, 50)
    assert scaled.shape == (50, 16) and scaled.dtype == np.float32
    assert np.allclose(scaled[:7], real)
    assert np.allclose(np.linalg.norm(scaled, axis=1), 1, atol=1e-5)
    assert len({row.tobytes() for row in scaled}) == 50
    assert bench.scaled_vectors(real, 5).shape == (5, 16)
