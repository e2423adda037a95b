"""The real embedder over the real seed: the retrieval figures the chunking defaults were chosen by."""

import pytest

from rag.pipeline import Pipeline, run_ingest
from rag_eval.judging import evidence_rank
from rag_eval.metrics import retrieval_metrics
from rag_eval.questions import load_questions

from .conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_pipeline(tmp_path_factory, real_embedder):
    from rag.settings import Settings

    settings = Settings(seeds_dir=ROOT / "seeds", index_dir=tmp_path_factory.mktemp("index"))
    run_ingest(settings, real_embedder)
    return Pipeline.load(settings, embedder=real_embedder)


def test_youdao_sentence_ranks_first(real_pipeline):
    top = real_pipeline.search("Who translated the announcement?", k=3)[0]
    assert "translated by Youdao" in top.chunk.text


def test_hit_at_3_over_the_question_set(real_pipeline):
    questions = [q for q in load_questions(ROOT / "eval" / "questions.jsonl") if q.answerable]
    ranks = [evidence_rank(real_pipeline.search(q.question, k=3), q.evidence) for q in questions]
    metrics = retrieval_metrics(ranks, 3)
    misses = [q.question for q, r in zip(questions, ranks) if r is None]
    print(f"\nretrieval over {metrics['n']} answerable questions: {metrics}")
    assert metrics["hit@3"] == 1.0, misses
    assert metrics["hit@1"] >= 0.8
