"""Retrieval and ingest at scale: search latency on the seed, on a synthetic ingest, and at 10k/100k chunks."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from rag_eval.bench.clock import cycle, dir_mb, progress, timed
from rag_eval.bench.corpus import SyntheticCorpus, scaled_rows, write_synthetic_corpus
from rag_eval.stats import percentile


def time_searches(pipeline, queries: list[str], n: int) -> list[float]:
    """Search latency in ms for `n` queries (after one untimed warm-up search)."""
    pipeline.search(queries[0])
    return [timed(pipeline.search, q)[1] for q in cycle(queries, n)]


def measure_ingest(settings, corpus: SyntheticCorpus, n_chunks: int, workdir: Path):
    """Ingest a synthetic corpus from scratch with the real embedder, as `rag ingest` does (its `ingest_threads`):
    seconds per 1,000 chunks, size on disk."""
    from rag.pipeline import ingest_settings, load_embedder, run_ingest

    synthetic = settings.model_copy(update={"seeds_dir": workdir / "seeds", "index_dir": workdir / "index"})
    docs = write_synthetic_corpus(corpus, synthetic.seeds_dir, n_chunks, settings)
    index, report = run_ingest(synthetic, load_embedder(ingest_settings(synthetic)))
    return index, {
        "synthetic_docs": docs,
        "synthetic_chunks": report.chunks_added,
        "ingest_s_per_1k_chunks": round(report.seconds / max(1, report.chunks_added) * 1000, 2),
        "index_size_mb_synthetic": dir_mb(synthetic.index_dir),
    }


def retrieval_breakdown(pipeline, queries: list[str]) -> dict:
    """Median ms of each step of one hybrid search, to say which part grows with the index."""
    import numpy as np

    retriever = pipeline.retriever
    n = min(retriever.candidates, len(pipeline.index))
    steps = {"embed": [], "faiss": [], "bm25": [], "sort": []}
    for q in queries:
        qvec, ms = timed(pipeline.embedder.embed, [q])
        steps["embed"].append(ms)
        steps["faiss"].append(timed(pipeline.index.search, qvec[0], n)[1])
        scores, ms = timed(retriever.bm25.scores, q)
        steps["bm25"].append(ms)
        steps["sort"].append(timed(lambda: np.argsort(-scores, kind="stable")[:n])[1])  # noqa: B023 - called here
    return {k: round(statistics.median(v), 2) for k, v in steps.items()}


def measure_scaling(
    settings, embedder, real_index, corpus, sizes: tuple[int, int], n_queries: int, queries: list[str], workdir: Path
) -> dict:
    """Retrieval latency at two sizes (10k and 100k in a full run), built as `scaled_rows` says."""
    from rag.index import VectorIndex
    from rag.pipeline import Pipeline

    out: dict = {}
    for label, size in zip(("10k", "100k"), sizes):
        progress(f"retrieval at {size:,} chunks: building the index")
        chunks, vectors = scaled_rows(real_index, corpus, size, settings.chunk_size)
        t0 = time.perf_counter()
        index = VectorIndex({**real_index.manifest, "documents": {}}, chunks, vectors)
        pipeline = Pipeline(settings, embedder, index)  # builds BM25 over every chunk
        build_s = time.perf_counter() - t0
        del chunks, vectors
        times = time_searches(pipeline, queries, n_queries)
        out[f"retrieve_p50_ms_{label}"] = round(percentile(times, 50), 2)
        out[f"retrieve_p95_ms_{label}"] = round(percentile(times, 95), 2)
        out[f"index_build_s_{label}"] = round(build_s, 2)
        steps = retrieval_breakdown(pipeline, queries[:n_queries])
        out[f"retrieve_steps_ms_{label}"] = steps
        out[f"retrieve_embed_share_{label}"] = round(steps["embed"] / max(1e-9, out[f"retrieve_p50_ms_{label}"]), 2)
        index.save(workdir / f"index-{label}")
        out[f"index_size_mb_{label}"] = dir_mb(workdir / f"index-{label}")
        del pipeline, index
    return out
