"""Hybrid retrieval: dense cosine (FAISS) and BM25 rankings merged by reciprocal rank fusion.

Dense retrieval alone misses rare names (a translator's name scores low in MiniLM space);
BM25 alone misses paraphrases. RRF needs no score calibration between the two.

`embed_query` is separate from `search` so a question is embedded once per answer (issue 24 part 3): the
answerer times the embedding as its own step, searches with the `Query`, and hands its vector to the
sentence engine (rag/evidence.py), which used to embed the question a second time with its sentences.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.chunking import Chunk
from rag.contract import PassageOut
from rag.embedding import Embedder
from rag.errors import QueryError
from rag.index import VectorIndex
from rag.text import terms

if TYPE_CHECKING:
    from rag.settings import RetrievalSettings

log = logging.getLogger(__name__)

__all__ = ["Passage", "Query", "Retriever", "HybridRetriever", "QueryError", "BM25", "rrf"]


@dataclass(frozen=True)
class Passage:
    chunk: Chunk
    score: float  # fused RRF score
    dense: float  # cosine similarity to the query
    bm25: float  # raw BM25 score
    dense_rank: int | None
    bm25_rank: int | None

    def to_out(self) -> PassageOut:
        c = self.chunk
        return PassageOut(
            doc=c.doc_id,
            chunk_id=c.chunk_id,
            start=c.start,
            end=c.end,
            text=c.text,
            score=round(self.score, 6),
            page=getattr(c, "page", None),
            heading=getattr(c, "heading", None),
        )


@dataclass(frozen=True, eq=False)
class Query:
    """A query as dense search reads it: the prepared text (stripped, cut to `max_query_chars`) and its unit
    vector, computed once and reused by whatever else compares text to the question."""

    text: str
    vector: np.ndarray


class Retriever(Protocol):
    def embed_query(self, query: str) -> Query: ...

    def search(self, query: str | Query, k: int) -> list[Passage]: ...


def rrf(rankings: list[tuple[list[int], float]], rrf_k: int) -> dict[int, float]:
    """Weighted reciprocal rank fusion: sum of weight / (rrf_k + rank) over the rankings a row appears in."""
    fused: dict[int, float] = {}
    for rows, weight in rankings:
        for rank, row in enumerate(rows, start=1):
            fused[row] = fused.get(row, 0.0) + weight / (rrf_k + rank)
    return fused


class BM25:
    def __init__(self, texts: list[str]):
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it turns its own DEBUG logging on at import
        self.n = len(texts)
        self.model = bm25s.BM25()
        tokenised = [terms(t) or ["\x00empty"] for t in texts]
        if texts:
            self.model.index(tokenised, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        if not self.n:
            return np.zeros(0, dtype=np.float32)
        vocab = self.model.vocab_dict
        ids = [vocab[t] for t in terms(query) if t in vocab]
        if not ids:
            return np.zeros(self.n, dtype=np.float32)
        return np.asarray(self.model.get_scores(ids), dtype=np.float32)


class HybridRetriever:
    """`retrieval`: the retrieval settings (`RetrievalSettings()`: production's)."""

    def __init__(self, index: VectorIndex, embedder: Embedder, retrieval: RetrievalSettings):
        self.index = index
        self.embedder = embedder
        self.bm25 = BM25([c.search_text for c in index.chunks])  # heading path + text
        self.candidates = retrieval.candidates
        self.rrf_k = retrieval.rrf_k
        self.dense_weight = retrieval.dense_weight
        self.bm25_weight = retrieval.bm25_weight
        self.max_query_chars = retrieval.max_query_chars

    def prepare(self, query: str) -> str:
        query = (query or "").strip()
        if not query:
            raise QueryError("the query is empty; ask about something in the documents")
        if len(query) > self.max_query_chars:
            log.warning("query of %d characters truncated to %d", len(query), self.max_query_chars)
            query = query[: self.max_query_chars]
        return query

    def embed_query(self, query: str) -> Query:
        """The prepared query and its embedding (QueryError when it is empty)."""
        text = self.prepare(query)
        return Query(text, self.embedder.embed([text])[0])

    def search(self, query: str | Query, k: int) -> list[Passage]:
        """The best `k` passages for a query text, or for a `Query` already embedded (`embed_query`)."""
        if not len(self.index):
            self.prepare(query if isinstance(query, str) else query.text)  # an empty query is still an error
            return []
        if isinstance(query, str):
            query = self.embed_query(query)
        n = min(max(self.candidates, k), len(self.index))
        qvec, query = query.vector, query.text
        hits = self.index.search(qvec, n)
        dense_rows = [h.row for h in hits]
        dense_score = {h.row: h.score for h in hits}
        bm25_all = self.bm25.scores(query)
        bm25_rows = [int(r) for r in np.argsort(-bm25_all, kind="stable")[:n] if bm25_all[r] > 0]
        for r in bm25_rows:
            if r not in dense_score:
                dense_score[r] = float(self.index.vectors[r] @ qvec)
        fused = rrf([(dense_rows, self.dense_weight), (bm25_rows, self.bm25_weight)], self.rrf_k)
        order = sorted(fused, key=lambda r: (-fused[r], -dense_score[r]))[:k]
        dense_rank = {r: i for i, r in enumerate(dense_rows, 1)}
        bm25_rank = {r: i for i, r in enumerate(bm25_rows, 1)}
        return [
            Passage(
                chunk=self.index.chunks[r],
                score=fused[r],
                dense=float(dense_score[r]),
                bm25=float(bm25_all[r]),
                dense_rank=dense_rank.get(r),
                bm25_rank=bm25_rank.get(r),
            )
            for r in order
        ]
