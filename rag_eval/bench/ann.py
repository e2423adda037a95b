"""The approximate index at size: recall@10 against exact search and search latency, on synthetic vectors.

Why synthetic: embedding 1M real chunks takes hours on this machine, and FAISS's cost depends only on the
vectors' number, dimension and spread. Uniform random vectors are the wrong stand-in: in 384 dimensions they
have no near neighbours at all (at 5k, HNSW's recall@10 was 0.81 at efSearch 64 on them, against 0.997 on the
vectors below), which no text embedding looks like. `synthetic_vectors` gives each vector a rank-48 structure
plus noise: nearest-neighbour cosine ~0.6 and random pairs ~0, like MiniLM's. Measured here (2 cores, a heavy
job beside): 50k vectors, M=32, efConstruction=100: build 42 s, recall@10 0.943 / 0.989 / 0.9995 at efSearch
64 / 128 / 256, p50 0.7 / 1.1 / 2.1 ms; exact search 24 ms.

What is held: the vectors once, inside the HNSW index (its flat storage); exact search for the ground truth
and the exact timing reads that same memory through `faiss.knn` (no second copy). At 1M 384-dim vectors that
is 1.5 GB plus ~0.3 GB of graph.
"""

from __future__ import annotations

import time

FULL_SIZE = 1_000_000  # the size
QUICK_SIZE = 20_000
EF_SEARCHES = (64, 128, 256)


def synthetic_vectors(n: int, dim: int = 384, seed: int = 0, rank: int = 48, noise: float = 0.3):
    """`n` unit float32 vectors with a rank-`rank` structure plus isotropic noise (made in blocks)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((rank, dim)).astype(np.float32) / np.sqrt(rank)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = rng.standard_normal((m, rank)).astype(np.float32) @ basis
        block += rng.standard_normal((m, dim)).astype(np.float32) * (noise / np.sqrt(dim))
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def recall_at(found, truth, k: int = 10) -> float:
    """Mean share of each query's true top `k` that the approximate search found."""
    return float(sum(len(set(a[:k]) & set(b[:k])) for a, b in zip(found, truth)) / (k * len(truth)))


def measure_ann(
    n: int, settings=None, n_queries: int = 200, ef_searches=EF_SEARCHES, dim: int = 384, k: int = 10, progress=None
) -> dict:
    """Build the HNSW index `settings` (IndexSettings; None: production's) describe over `n` synthetic vectors and
    measure recall@`k` against exact search and single-query latency at each efSearch (the configured one too).

    Keys: ann_n, ann_build_s, ann_exact_p50_ms, ann_recall_at_10 / ann_p50_ms (at the configured efSearch, the
    issue's figures), ann_sweep ({efSearch: "recall, p50 ms"}), ann_m, ann_ef_construction, ann_ef_search."""
    import dataclasses

    import faiss
    import numpy as np

    from rag.ann import HNSW, Layout, vectors_view
    from rag.settings import IndexSettings

    say = progress or (lambda text: None)
    layout = dataclasses.replace(Layout.of(settings or IndexSettings()), kind=HNSW)
    data = synthetic_vectors(n + n_queries, dim)
    queries = np.ascontiguousarray(data[n:])
    say(f"ANN: building HNSW (M={layout.m}, efConstruction={layout.ef_construction}) over {n:,} vectors")
    t0 = time.perf_counter()
    index = layout.build(data[:n], dim)
    build_s = time.perf_counter() - t0
    del data  # from here the vectors live once, in the index
    stored = vectors_view(index)
    say("ANN: exact top-10 of the queries (ground truth)")
    _, truth = faiss.knn(queries, stored, k, metric=faiss.METRIC_INNER_PRODUCT)
    exact_ms = [
        _timed_ms(lambda q=q: faiss.knn(q, stored, k, metric=faiss.METRIC_INNER_PRODUCT))
        for q in _one_by_one(queries, 50)
    ]
    sweep, out = {}, {}
    for ef in sorted({*ef_searches, layout.ef_search}):
        index.hnsw.efSearch = ef
        _, found = index.search(queries, k)
        recall = recall_at(found, truth, k)
        index.search(queries[:1], k)  # untimed first query
        times = [_timed_ms(lambda q=q: index.search(q, k)) for q in _one_by_one(queries, len(queries))]
        p50 = float(np.median(times))
        sweep[ef] = f"recall {recall:.4f}, p50 {p50:.2f} ms"
        if ef == layout.ef_search:
            out = {
                "ann_recall_at_10": round(recall, 4),
                "ann_p50_ms": round(p50, 3),
                "ann_p95_ms": round(float(np.percentile(times, 95)), 3),
            }
    return {
        "ann_n": n,
        "ann_dim": dim,
        "ann_queries": len(queries),
        "ann_m": layout.m,
        "ann_ef_construction": layout.ef_construction,
        "ann_ef_search": layout.ef_search,
        "ann_build_s": round(build_s, 1),
        "ann_exact_p50_ms": round(float(np.median(exact_ms)), 2),
        **out,
        "ann_sweep": sweep,
    }


def _one_by_one(queries, n: int):
    return [queries[i : i + 1] for i in range(min(n, len(queries)))]


def _timed_ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000
