"""The FAISS structure under the index: exact inner-product search, or HNSW above a size (the index settings).

Why: exact (flat) search reads every vector for every query. Measured on this 2-core machine (with a heavy
job beside it), one 384-dim query: 0.2 ms at 5k chunks, 24 ms at 50k; issue 24 measured 36–45 ms retrieval at
100k, and 1M would be ten times that. HNSW (faiss `IndexHNSWFlat`, inner product) visits a few thousand
vectors instead. Synthetic 384-dim vectors (rank-48 structure plus noise: nearest-neighbour cosine ~0.6, random
pairs ~0, as MiniLM's are spread), 50k vectors, M=32, efConstruction=100: recall@10 against exact 0.943 at
efSearch 64, 0.989 at 128, 0.9995 at 256, p50 0.7 / 1.1 / 2.1 ms per query; the build took 42 s (0.8 ms a
vector). At 5k (the fast test's size) recall@10 is 0.997 at efSearch 64. So `auto` keeps exact search (perfect
recall, no build) up to `hnsw_threshold` chunks, where it stops being fast, and HNSW above it.
`rag bench` measures recall and p50 at any size (rag_eval/bench/ann.py). At 1M vectors (2026-12-07, same
structure and machine): recall@10 0.703 / 0.857 / 0.951 at efSearch 64 / 128 / 256, p50 1.0 / 1.9 / 3.4 ms
(exact: 140 ms); the build took 1,027 s. So efSearch defaults to 256: the 0.95 recall goal at 1M, 3.4 ms.

Vectors held once in memory: both structures keep the float32 vectors in their own flat storage (the flat
index's `xb`, the HNSW index's `storage`); `vectors_view` is a read-only numpy view of that storage, no copy, so
`VectorIndex.vectors` costs nothing beside the index. The HNSW graph adds about 2·M int32 neighbours a vector on
its bottom level (256 B at M=32, a sixth of a 384-dim vector's 1,536 B) plus a few upper levels.

The manifest records the structure (`{"kind": "hnsw", "m": 32, "ef_construction": 100}` or `{"kind": "exact"}`;
an index written before this has none and is exact). efSearch is a search-time knob: applied at load, not
recorded. An index whose structure is not what the settings choose for its size is an `IndexMismatch` when
served (building HNSW at start-up would take minutes at 1M); `rag ingest` rebuilds the structure from the
stored vectors, with no re-embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rag.settings import IndexSettings

EXACT, HNSW = "exact", "hnsw"


@dataclass(frozen=True)
class Layout:
    """Which structure to build for how many vectors: `kind` auto | exact | hnsw, and HNSW's parameters."""

    kind: str = EXACT
    threshold: int = 0
    m: int = 32
    ef_construction: int = 100
    ef_search: int = 256

    @classmethod
    def of(cls, settings: IndexSettings) -> Layout:
        return cls(
            settings.index_kind,
            settings.hnsw_threshold,
            settings.hnsw_m,
            settings.hnsw_ef_construction,
            settings.hnsw_ef_search,
        )

    def kind_for(self, n: int) -> str:
        if self.kind == "auto":
            return HNSW if n > self.threshold else EXACT
        return self.kind

    def structure(self, n: int) -> dict:
        """What the manifest records for an index of `n` vectors built with this layout."""
        if self.kind_for(n) == HNSW:
            return {"kind": HNSW, "m": self.m, "ef_construction": self.ef_construction}
        return {"kind": EXACT}

    def why(self, n: int) -> str:
        """The settings behind `structure(n)`, in the words a user sets them with."""
        if self.kind == "auto":
            side = "above" if n > self.threshold else "at or below"
            return f"RAG_INDEX_KIND=auto chooses {self.kind_for(n)} for {n:,} chunks ({side} RAG_HNSW_THRESHOLD={self.threshold:,})"
        return f"RAG_INDEX_KIND={self.kind} is configured"

    def build(self, vectors: np.ndarray, dim: int):
        """A FAISS index holding `vectors` (float32 rows, unit length), as this layout chooses for their number."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
        index = empty(self.structure(len(vectors)), dim)
        self.tune(index)
        if len(vectors):
            index.add(vectors)
        return index

    def tune(self, index) -> None:
        """Search-time parameters (efSearch) on a built or loaded index."""
        if structure_of(index)["kind"] == HNSW:
            index.hnsw.efSearch = self.ef_search


def empty(structure: dict, dim: int):
    import faiss

    if structure["kind"] == HNSW:
        index = faiss.IndexHNSWFlat(dim, structure["m"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = structure["ef_construction"]
        return index
    return faiss.IndexFlatIP(dim)


def structure_of(index) -> dict:
    """The manifest's record of a FAISS index, read from the index itself (a loaded file is checked against it)."""
    import faiss

    if isinstance(index, faiss.IndexHNSWFlat):
        return {"kind": HNSW, "m": int(index.hnsw.nb_neighbors(1)), "ef_construction": int(index.hnsw.efConstruction)}
    if isinstance(index, faiss.IndexFlat):
        return {"kind": EXACT}
    return {"kind": type(index).__name__}


def inner_product(index) -> bool:
    import faiss

    return index.metric_type == faiss.METRIC_INNER_PRODUCT


class _Keeps:
    """An array interface that keeps the FAISS object owning the memory alive as long as a view of it exists."""

    def __init__(self, array: np.ndarray, owner):
        self.__array_interface__ = array.__array_interface__
        self.owner = owner


def vectors_view(index) -> np.ndarray:
    """The index's stored vectors as a read-only (ntotal, d) float32 view of FAISS's own memory (no copy).

    Valid until vectors are added to `index` (its storage may move then); `VectorIndex` never adds to an index
    it has handed views of."""
    import faiss

    storage = faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSWFlat) else index
    n, d = int(index.ntotal), int(index.d)
    if n == 0:
        return np.zeros((0, d), dtype=np.float32)
    raw = faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)
    view = np.asarray(_Keeps(raw, index))
    view.flags.writeable = False
    return view
