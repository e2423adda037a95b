"""Does the follow-up rewrite (rag/followup.py) help retrieval? Measured on eval/followups.jsonl.

Each row is a previous question (and its answer) plus a follow-up whose evidence is a span of the seed
document. With the real embedder and index, the evidence must land in the top 3 passages at least as
often with the rewrite as without, the mean reciprocal rank must not drop, no single pair may fall
out of the top 3, and standalone questions must be searched exactly as asked.

`pytest -s tests/test_ui_followups.py` prints the per-pair ranks.
"""

from __future__ import annotations

import json

import pytest

from rag.followup import Turn, passage_frequency, rewrite

pytestmark = pytest.mark.slow

from .conftest import ROOT  # noqa: E402

PAIRS = [json.loads(line) for line in (ROOT / "eval" / "followups.jsonl").read_text().splitlines() if line.strip()]
K = 3


def evidence_rank(pipeline, query: str, evidence: str) -> int | None:
    """1-based rank of the first passage holding `evidence` among all passages, or None."""
    for rank, passage in enumerate(pipeline.search(query, len(pipeline.index)), 1):
        if evidence in passage.chunk.text:
            return rank
    return None


@pytest.fixture(scope="module")
def pipeline(real_embedder, real_index_dir):
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    return Pipeline.load(Settings(seeds_dir=ROOT / "seeds", index_dir=real_index_dir), embedder=real_embedder)


def test_rewrite_helps_retrieval_of_followups(pipeline):
    freq = passage_frequency(c.text for c in pipeline.index.chunks)
    rows = []
    for pair in PAIRS:
        rw = rewrite(pair["followup"], [Turn(pair["previous"], pair["previous_answer"])], freq)
        before = evidence_rank(pipeline, pair["followup"], pair["evidence"])
        after = evidence_rank(pipeline, rw.query, pair["evidence"]) if rw.applied else before
        rows.append((pair, rw, before, after))

    def score(ranks):
        ranks = [r or 10**6 for r in ranks]
        return sum(r <= K for r in ranks), sum(r == 1 for r in ranks), sum(1 / r for r in ranks) / len(ranks)

    top_k_0, top1_0, mrr_0 = score([b for _, _, b, _ in rows])
    top_k_1, top1_1, mrr_1 = score([a for _, _, _, a in rows])
    print(f"\n{'id':6} {'without':>7} {'with':>5}  query searched")
    for pair, rw, before, after in rows:
        print(
            f"{pair['id']:6} {before or '-':>7} {after or '-':>5}  {rw.query if rw.applied else '(as asked: ' + rw.reason + ')'}"
        )
    print(
        f"top-{K}: {top_k_0}/{len(rows)} without, {top_k_1}/{len(rows)} with the rewrite; "
        f"top-1: {top1_0} -> {top1_1}; MRR {mrr_0:.3f} -> {mrr_1:.3f}; rewritten: {sum(rw.applied for _, rw, _, _ in rows)}"
    )

    for pair, rw, before, after in rows:
        if pair.get("standalone"):
            assert not rw.applied, pair["id"]
        if before is not None and before <= K:
            assert after is not None and after <= K, f"{pair['id']}: the rewrite {rw.query!r} lost the evidence"
    assert top_k_1 >= top_k_0
    assert mrr_1 >= mrr_0
    assert top1_1 > top1_0, "the rewrite never moved the evidence up: it is not worth applying"
