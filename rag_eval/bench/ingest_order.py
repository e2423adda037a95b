"""Ingest per chunk, three ways on one synthetic corpus, runs interleaved so a busy moment hits all three.

    python -m rag_eval.bench.ingest_order [--runs 3] [--chunks 1000]

`torch-1`: sentence-transformers on one thread with chunks embedded in document order (how `rag ingest` ran when
issue 24 was filed); `onnx-doc`: ONNX Runtime on all cores, document order (the previous session's state);
`onnx-sorted`: as `rag ingest` runs now (rag.index.embed_all, longest first). Each run is a fresh child process
ingesting into an empty index folder; prints one line per run and the means as JSON. Measured 2026-12-07 on
2 cores, 1,010 chunks: torch-1 29.0, onnx-doc 15.1, onnx-sorted 10.4 s per 1,000 chunks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ("torch-1", "onnx-doc", "onnx-sorted")


def _child(mode: str, seeds: Path, index_dir: Path) -> float:
    """Ingest `seeds` into `index_dir` in `mode`; seconds per 1,000 chunks."""
    import numpy as np

    import rag.index as ri
    from rag.pipeline import ingest_settings, load_embedder, run_ingest
    from rag.settings import Settings

    if mode in ("torch-1", "onnx-doc"):

        def document_order(texts, embedder, progress=None):
            parts = [embedder.embed(texts[i : i + ri.EMBED_GROUP]) for i in range(0, len(texts), ri.EMBED_GROUP)]
            return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)

        ri.embed_all = document_order
    settings = Settings().model_copy(update={"seeds_dir": seeds, "index_dir": index_dir})
    if mode == "torch-1":
        settings = settings.model_copy(update={"encoder_runtime": "torch", "embed_threads": 1, "ingest_threads": 1})
    embedder = load_embedder(ingest_settings(settings))
    _, report = run_ingest(settings, embedder)
    return report.seconds / max(1, report.chunks_added) * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag_eval.bench.ingest_order", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--chunks", type=int, default=1000, help="synthetic chunks to ingest (at least)")
    p.add_argument("--child", nargs=3, metavar=("MODE", "SEEDS", "INDEX"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        mode, seeds, index_dir = args.child
        print(json.dumps({"mode": mode, "s_per_1k": round(_child(mode, Path(seeds), Path(index_dir)), 2)}))
        return 0

    from rag.settings import Settings
    from rag_eval.bench.corpus import SyntheticCorpus, seed_sentences, write_synthetic_corpus

    settings = Settings()
    results: dict[str, list[float]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory(prefix="rag-ingest-order-") as tmp:
        seeds = Path(tmp) / "seeds"
        write_synthetic_corpus(SyntheticCorpus(seed_sentences(settings)), seeds, args.chunks, settings)
        for run in range(args.runs):
            for mode in MODES:
                index_dir = Path(tmp) / f"index-{mode}-{run}"
                out = subprocess.run(
                    [sys.executable, "-m", "rag_eval.bench.ingest_order", "--child", mode, str(seeds), str(index_dir)],
                    capture_output=True,
                    text=True,
                )
                if out.returncode:
                    print(out.stderr[-2000:], file=sys.stderr)
                    return out.returncode
                figure = json.loads(out.stdout.strip().splitlines()[-1])["s_per_1k"]
                results[mode].append(figure)
                print(f"run {run + 1} {mode}: {figure:.2f} s per 1,000 chunks", flush=True)
    means = {m: round(statistics.mean(v), 2) for m, v in results.items()}
    print(
        json.dumps(
            {
                "s_per_1k_chunks": means,
                "runs": results,
                "speed_up_vs_torch_1": round(means["torch-1"] / means["onnx-sorted"], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
