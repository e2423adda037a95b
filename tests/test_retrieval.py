import pytest

from rag.pipeline import Pipeline, run_ingest
from rag.retrieval import QueryError, rrf


def test_rrf_rewards_agreement_and_weights():
    fused = rrf([([1, 2, 3], 1.0), ([3, 1], 1.0)], rrf_k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert max(fused, key=fused.get) == 1
    weighted = rrf([([1, 2], 0.0), ([2, 1], 1.0)], rrf_k=60)
    assert max(weighted, key=weighted.get) == 2


@pytest.fixture
def pipeline(settings, keyword_embedder):
    run_ingest(settings, keyword_embedder)
    return Pipeline.load(settings, embedder=keyword_embedder)


def test_bm25_finds_rare_word(pipeline):
    top = pipeline.search("Youdao", k=1)[0]
    assert "translated by Youdao" in top.chunk.text
    assert top.bm25 > 0 and top.bm25_rank == 1


def test_results_are_scored_passages_with_offsets(pipeline, settings):
    original = next(settings.seeds_dir.glob("*.txt")).read_text()
    results = pipeline.search("Nvidia chips export restrictions", k=3)
    assert len(results) == 3
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    for r in results:
        d = r.to_out().model_dump()
        assert set(d) == {"doc", "chunk_id", "start", "end", "text", "score", "page", "heading"}
        assert original[d["start"] : d["end"]] == d["text"]


def test_k_larger_than_index_returns_everything(pipeline):
    assert len(pipeline.search("anything at all", k=50)) == len(pipeline.index)


@pytest.mark.parametrize("query", ["", "   ", "\n"])
def test_empty_query_is_an_error(pipeline, query):
    with pytest.raises(QueryError, match="empty"):
        pipeline.search(query)


def test_huge_query_is_truncated_not_fatal(pipeline, caplog):
    results = pipeline.search("Youdao " * 15000, k=2)  # ~105 KB
    assert results and "truncated" in caplog.text
