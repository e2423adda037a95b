"""The FAISS structure under the index (rag/ann.py, issue 24 part 4): HNSW by setting or above a size, its
recall against exact search, the manifest's record of it, and the vectors held once (in FAISS)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from rag.ann import EXACT, HNSW, Layout, structure_of, vectors_view
from rag.errors import IndexCorrupt, IndexMismatch
from rag.index import MANIFEST, VectorIndex
from rag.pipeline import Pipeline, load_index, run_ingest
from rag_eval.bench.ann import measure_ann, recall_at, synthetic_vectors

FORCED = Layout(kind=HNSW, m=32, ef_construction=100, ef_search=128)


def manifest(dim: int) -> dict:
    return {"format_version": 2, "dim": dim, "documents": {}}


def test_hnsw_recall_at_10_against_exact_on_5k_vectors():
    data = synthetic_vectors(5_200, 384, seed=1)
    base, queries = data[:5_000], data[5_000:]
    hnsw = VectorIndex(manifest(384), [None] * 5_000, base, FORCED)  # chunks are not searched here
    exact = VectorIndex(manifest(384), [None] * 5_000, base)
    assert hnsw.structure == {"kind": HNSW, "m": 32, "ef_construction": 100} and exact.structure == {"kind": EXACT}
    found = [[h.row for h in hnsw.search(q, 10)] for q in queries]
    truth = [[h.row for h in exact.search(q, 10)] for q in queries]
    assert recall_at(found, truth) >= 0.95
    assert hnsw.faiss.hnsw.efSearch == 128


def test_the_vectors_live_once_inside_faiss_as_a_read_only_view():
    data = synthetic_vectors(300, 32)
    for layout in (None, FORCED):
        index = VectorIndex(manifest(32), [None] * 300, data, layout)
        assert np.array_equal(index.vectors, data) and not index.vectors.flags.writeable
        assert not np.shares_memory(index.vectors, data)  # FAISS copied them in; `vectors` is that copy
        again = vectors_view(index.faiss)
        assert np.shares_memory(index.vectors, again)  # both views of FAISS's own storage
    view = vectors_view(VectorIndex(manifest(32), [None] * 300, data, FORCED).faiss)
    assert np.array_equal(view, data)  # the view keeps its FAISS index alive after the VectorIndex is gone


def test_auto_chooses_by_the_threshold():
    auto = Layout(kind="auto", threshold=1_000)
    assert auto.kind_for(1_000) == EXACT and auto.kind_for(1_001) == HNSW
    assert "above RAG_HNSW_THRESHOLD=1,000" in auto.why(5_000)
    assert Layout(kind=EXACT).kind_for(10**9) == EXACT and Layout(kind=HNSW).kind_for(1) == HNSW
    assert structure_of(auto.build(synthetic_vectors(1_200, 16), 16))["kind"] == HNSW


def test_ingest_records_the_structure_and_a_new_setting_restructures_without_embedding(settings, keyword_embedder):
    index, _ = run_ingest(settings, keyword_embedder)
    n = len(index)
    assert n > 5 and json.loads((settings.index_dir / MANIFEST).read_text())["index"] == {"kind": EXACT}
    embedded = keyword_embedder.texts_embedded

    small = settings.model_copy(update={"hnsw_threshold": n - 1, "hnsw_m": 8, "hnsw_ef_construction": 40})
    with pytest.raises(IndexMismatch, match=r"is exact, but RAG_INDEX_KIND=auto chooses hnsw .*run `rag ingest`"):
        load_index(small, keyword_embedder)
    hnsw, report = run_ingest(small, keyword_embedder)
    assert keyword_embedder.texts_embedded == embedded and report.rebuilt_because is None  # vectors reused
    assert json.loads((small.index_dir / MANIFEST).read_text())["index"] == {
        "kind": HNSW,
        "m": 8,
        "ef_construction": 40,
    }
    loaded = load_index(small.model_copy(update={"hnsw_ef_search": 77}), keyword_embedder)
    assert loaded.faiss.hnsw.efSearch == 77 and np.allclose(loaded.vectors, index.vectors)
    hits = Pipeline(small, keyword_embedder, loaded).search("When did Brad Smith meet Wang Wentao?")
    assert "December 6, 2023" in " ".join(p.chunk.text for p in hits)
    embedded = keyword_embedder.texts_embedded  # the query

    with pytest.raises(IndexMismatch, match="is HNSW"):
        load_index(settings.model_copy(update={"index_kind": "exact"}), keyword_embedder)
    _, report = run_ingest(settings.model_copy(update={"index_kind": "exact"}), keyword_embedder)
    assert json.loads((settings.index_dir / MANIFEST).read_text())["index"] == {"kind": EXACT}
    assert keyword_embedder.texts_embedded == embedded


def test_adding_a_document_grows_the_hnsw_index_in_place(settings, keyword_embedder, corpus):
    forced = settings.model_copy(update={"index_kind": "hnsw", "hnsw_m": 8})
    first, _ = run_ingest(forced, keyword_embedder)
    (corpus / "extra.txt").write_text("The lighthouse keeper painted the tower red in 1911. " * 3)
    grown, report = run_ingest(forced, keyword_embedder)
    assert report.added == ["extra.txt"] and len(grown) == len(first) + report.chunks_added
    assert grown.structure["kind"] == HNSW and grown.faiss.ntotal == len(grown)
    reloaded = load_index(forced, keyword_embedder)
    assert np.allclose(reloaded.vectors, grown.vectors)
    assert (
        reloaded.chunks[reloaded.search(keyword_embedder.embed(["lighthouse keeper tower"])[0], 1)[0].row].doc_id
        == "extra.txt"
    )


def test_a_manifest_that_misstates_the_structure_is_corrupt_and_an_old_one_is_exact(settings, keyword_embedder):
    run_ingest(settings, keyword_embedder)
    path = settings.index_dir / MANIFEST
    data = json.loads(path.read_text())
    del data["index"]  # written before the structure was recorded: exact
    path.write_text(json.dumps(data))
    assert load_index(settings, keyword_embedder).structure == {"kind": EXACT}
    data["index"] = {"kind": HNSW, "m": 32, "ef_construction": 100}
    path.write_text(json.dumps(data))
    with pytest.raises(IndexCorrupt, match="the vector file is exact, the manifest says HNSW"):
        VectorIndex.load(settings.index_dir)


def test_the_bench_measurement_reports_recall_and_latency():
    out = measure_ann(2_000, n_queries=30, ef_searches=(16,))
    assert out["ann_n"] == 2_000 and out["ann_ef_search"] == 256 and set(out["ann_sweep"]) == {16, 256}
    assert out["ann_recall_at_10"] >= 0.95 and out["ann_p50_ms"] > 0 and out["ann_exact_p50_ms"] > 0


def test_layout_of_the_index_settings():
    from rag.settings import IndexSettings

    layout = Layout.of(IndexSettings())
    assert dataclasses.astuple(layout) == ("auto", 50_000, 32, 100, 256)


def test_bench_flags_for_the_ann_measurement():
    import argparse

    from rag_eval.bench import command

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--ann-only", "--ann-size", "50000"])
    assert args.ann_only and args.ann_size == 50_000
    assert command.FULL.ann_size == 1_000_000 and command.QUICK.ann_size < 50_000
