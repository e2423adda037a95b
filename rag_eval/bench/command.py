"""`rag bench`: the run (what is measured, in which order, how much) and the command line.

Only the standard library is imported at module level: the CLI imports this module to build its parser,
and `rag --help` must stay instant. Measurements import their heavy libraries inside functions.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from rag_eval import DEFAULT_QUESTIONS, RUNS_DIR
from rag_eval.bench.clock import dir_mb, load_average, progress, rss_mb
from rag_eval.bench.report import findings, json_report, render_markdown, write_report
from rag_eval.stats import percentile

FALLBACK_QUESTIONS = (
    "When did Brad Smith meet Wang Wentao?",
    "Who is China's Minister of Commerce?",
    "Which company developed ChatGPT?",
    "What is the capital of France?",
)


class Plan(NamedTuple):
    """How much of each measurement to run; `quick` is for tests and smoke runs (about a minute or two)."""

    questions: int  # questions per generation pass
    retrieval_queries: int  # timed searches per index size
    ingest_chunks: int  # real embedding for the ingest rate (and the real vectors scaled up below)
    scale_sizes: tuple[int, int]  # index sizes (chunks) for retrieval latency
    concurrent_clients: int
    help_runs: int
    ann_size: int = 1_000_000  # synthetic vectors for the HNSW recall / latency figures (rag_eval/bench/ann.py)


FULL = Plan(questions=10, retrieval_queries=60, ingest_chunks=2000, scale_sizes=(10_000, 100_000),
            concurrent_clients=4, help_runs=3, ann_size=1_000_000)  # fmt: skip
QUICK = Plan(questions=3, retrieval_queries=10, ingest_chunks=150, scale_sizes=(10_000, 20_000),
             concurrent_clients=2, help_runs=1, ann_size=20_000)  # fmt: skip


def load_question_texts(path: Path = DEFAULT_QUESTIONS) -> list[str]:
    """The evaluation questions (answerable and not, a realistic mix); a built-in few if the file is absent."""
    if not path.exists():
        return list(FALLBACK_QUESTIONS)
    from rag_eval.questions import question_texts

    return question_texts(path)


def default_out(now: datetime | None = None) -> Path:
    """Where a run's report goes unless --out says otherwise: a new folder under eval/runs/ (git ignores it), so
    a run never overwrites the tracked eval/bench.md."""
    return RUNS_DIR / f"bench-{(now or datetime.now()):%Y%m%d-%H%M%S}" / "bench.md"


def _startup(settings, plan: Plan, questions: list[str]) -> tuple[object, dict]:
    from rag_eval.bench.startup import measure_cold_start, measure_embedder, measure_help, measure_serve_ready

    progress("(d) timing `rag --help`")
    results = measure_help(plan.help_runs)
    progress("`rag serve` to /health ready, 3 starts")
    results.update(measure_serve_ready(settings, 3))
    progress("cold start in a child process (load + one answer)")
    results.update(measure_cold_start(settings, questions[0]))
    progress("(c) loading the embedder")
    embedder, emb = measure_embedder(settings, questions)
    results.update(emb)
    return embedder, results


def _answering(settings, embedder, plan: Plan, questions: list[str], loads: dict) -> dict:
    """Everything that needs the model, on the seed index; the model is released at the end."""
    from rag.pipeline import Pipeline
    from rag_eval.bench.generation import build_prompts, measure_generation, measure_prompt_work, measure_threads
    from rag_eval.bench.retrieval import time_searches
    from rag_eval.bench.server import measure_asks

    progress("loading the pipeline on the seed index")
    pipeline = Pipeline.load(settings, embedder=embedder, with_generator=True)
    seed_times = time_searches(pipeline, questions, plan.retrieval_queries)
    results = {
        "model": pipeline.generator.model_name,
        "mode": pipeline.info()["mode"],
        "seed_chunks": len(pipeline.index),
        "embedder_shared": getattr(pipeline.answerer.strategy, "embedder", pipeline.embedder) is pipeline.embedder,
        "index_size_mb_seed": dir_mb(settings.index_dir),
        "retrieve_p50_ms_seed": round(percentile(seed_times, 50), 2),
        "retrieve_p95_ms_seed": round(percentile(seed_times, 95), 2),
    }
    prompts = build_prompts(pipeline, questions, plan.questions)
    if not prompts:
        raise RuntimeError("no question reached the model; check the index and the questions file")
    progress(f"time to first token, tokens/s, overhead vs raw llama-cpp-python ({len(prompts)} questions x 6 passes)")
    results.update(measure_generation(pipeline, prompts))
    loads["generation passes done"] = load_average()
    progress("(a) KV-cache reuse, (b) prompt budget, llama.cpp threads")
    results.update(measure_prompt_work(pipeline, prompts))
    results.update(measure_threads(pipeline, "\n".join(m["content"] for m in prompts[0].messages)))
    progress(f"/ask latency, 1 and {plan.concurrent_clients} concurrent clients")
    results.update(measure_asks(pipeline, settings, questions[: plan.questions], plan.concurrent_clients))
    loads["asks done"] = load_average()
    results["bench_rss_mb_after_asks"] = rss_mb()
    return results


def _scale(settings, embedder, plan: Plan, questions: list[str]) -> dict:
    """Ingest rate on a synthetic corpus, then retrieval at the plan's sizes (temporary folders, removed after)."""
    import tempfile

    from rag.pipeline import Pipeline
    from rag_eval.bench.corpus import SyntheticCorpus, seed_sentences
    from rag_eval.bench.retrieval import measure_ingest, measure_scaling, time_searches

    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        workdir = Path(tmp)
        corpus = SyntheticCorpus(seed_sentences(settings))
        progress(f"ingest: embedding about {plan.ingest_chunks:,} synthetic chunks")
        real_index, results = measure_ingest(settings, corpus, plan.ingest_chunks, workdir)
        times = time_searches(Pipeline(settings, embedder, real_index), questions, plan.retrieval_queries)
        results["retrieve_p50_ms_synthetic"] = round(percentile(times, 50), 2)
        results.update(
            measure_scaling(
                settings, embedder, real_index, corpus, plan.scale_sizes, plan.retrieval_queries, questions, workdir
            )
        )
    results["size_a"], results["size_b"] = plan.scale_sizes
    results["scale_how"] = (
        f"the {results['synthetic_chunks']:,} really embedded synthetic chunks, plus synthetic chunk texts "
        "(for BM25) paired with noisy copies of the real vectors (cosine ~0.9); query embedding is real"
    )
    return results


def _ann(settings, size: int) -> dict:
    """HNSW at `size` synthetic vectors: recall@10 against exact and p50 search (the index settings' M, ef)."""
    from rag_eval.bench.ann import measure_ann

    return measure_ann(size, settings.index, progress=progress)


def _one_stage(stage: str, quick: bool, measure: Callable[[], dict]) -> dict:
    """A run of one measurement (`--ann-only`, `--concurrency`): its figures with the date, machine, load
    averages, time, peak RSS and notes every report carries."""
    t0 = time.perf_counter()
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} CPUs", "quick": quick}
    loads = {"start": load_average()}
    results.update(measure())
    loads["end"] = load_average()
    results["load_average"], results["stage_seconds"] = loads, {stage: round(time.perf_counter() - t0)}
    results["bench_peak_rss_mb"] = rss_mb()
    results["bench_seconds"] = round(time.perf_counter() - t0, 1)
    results["notes"] = findings(results)
    return results


def run_ann_only(settings, size: int) -> dict:
    """`rag bench --ann-only`: just the approximate-index figures (the 1M run takes a while and ~2 GB)."""
    return _one_stage("ann", False, lambda: _ann(settings, size))


def run_concurrency_only(settings, clients: int, quick: bool = False, llama_server: str | None = None) -> dict:
    """`rag bench --concurrency N`: N clients at once against each generation backend (rag_eval/bench/concurrency.py).
    Full: N x 2 questions per backend (each asked three times: warm-up, one client, N clients); quick: N x 1."""
    import signal
    import threading

    from rag_eval.bench.concurrency import measure_concurrency

    if threading.current_thread() is threading.main_thread():  # killed (timeout, CI): stop the servers it started
        signal.signal(signal.SIGTERM, signal.default_int_handler)

    def measure() -> dict:
        ensure_index(settings)
        per_client = 1 if quick else 2
        return measure_concurrency(settings, load_question_texts(), clients, per_client, llama_server)

    return _one_stage("concurrency", quick, measure)


def ensure_index(settings) -> None:
    """The cold-start child loads the seed index from settings.index_dir: build it first on a fresh clone."""
    from rag.index import IndexError_, VectorIndex

    try:
        VectorIndex.load(settings.index_dir)
    except IndexError_ as exc:
        from rag.pipeline import load_embedder, run_ingest

        progress(f"building the seed index first ({exc})")
        run_ingest(settings, load_embedder(settings))


def run_bench(settings, plan: Plan, quick: bool = False, ann_size: int | None = None) -> dict:
    """Every measurement in order; returns the flat results dict the report and --json are made from."""
    t_start = time.perf_counter()
    questions = load_question_texts()
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} CPUs", "quick": quick}
    loads, stages = {"start": load_average()}, {}
    ensure_index(settings)
    t0 = time.perf_counter()
    embedder, startup = _startup(settings, plan, questions)
    results.update(startup)
    loads["startup done"], stages["startup"] = load_average(), round(time.perf_counter() - t0)
    t0 = time.perf_counter()
    results.update(_answering(settings, embedder, plan, questions, loads))
    stages["answering"] = round(time.perf_counter() - t0)
    t0 = time.perf_counter()
    results.update(_scale(settings, embedder, plan, questions))
    loads["ingest and scale done"], stages["ingest and scale"] = load_average(), round(time.perf_counter() - t0)
    t0 = time.perf_counter()
    results.update(_ann(settings, ann_size or plan.ann_size))
    loads["end"], stages["ann"] = load_average(), round(time.perf_counter() - t0)
    results["load_average"], results["stage_seconds"] = loads, stages
    results["bench_peak_rss_mb"] = rss_mb()
    results["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    results["notes"] = findings(results)
    return results


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object with every measurement")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few questions and small sizes, a minute or two (the 100k retrieval figure is taken "
        "at 20k chunks; size_b says so)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"markdown report path (default {RUNS_DIR}/bench-<time>/bench.md; eval/bench.md is the tracked copy)",
    )
    parser.add_argument(
        "--ann-size",
        type=int,
        metavar="N",
        help=f"synthetic vectors for the HNSW recall/latency figures (default {FULL.ann_size:,}; "
        f"{QUICK.ann_size:,} with --quick)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="measure only N concurrent clients against each backend: in-process /ask, llama-cpp-python's server "
        "and llama-server (when found) through RAG_LLM_URL; latency p50/p95, answers/s, 503s, errors",
    )
    parser.add_argument(
        "--llama-server",
        metavar="PATH",
        help="llama.cpp's llama-server binary for --concurrency (default: $RAG_BENCH_LLAMA_SERVER, then PATH)",
    )
    parser.add_argument(
        "--ann-only",
        action="store_true",
        help="measure only the HNSW index (recall@10 against exact, p50 search) at --ann-size",
    )


def run_command(args) -> int:
    from rag.settings import build_settings, flag_values

    settings = build_settings(flag_values(args))
    out = args.out or default_out()
    plan = QUICK if args.quick else FULL
    ann_size = getattr(args, "ann_size", None)
    if ann_size is not None and ann_size < 1000:
        raise SystemExit("rag bench: --ann-size must be at least 1000")
    clients = getattr(args, "concurrency", None)
    if clients is not None and not 1 <= clients <= 64:
        raise SystemExit("rag bench: --concurrency must be between 1 and 64")
    if clients is not None:
        results = run_concurrency_only(settings, clients, args.quick, getattr(args, "llama_server", None))
    elif getattr(args, "ann_only", False):
        results = run_ann_only(settings, ann_size or plan.ann_size)
    else:
        results = run_bench(settings, plan, quick=args.quick, ann_size=ann_size)
    write_report(results, out)
    progress(f"wrote {out} ({results['bench_seconds']} s)")
    if args.json:
        print(json.dumps(json_report(results), ensure_ascii=False), flush=True)
    else:
        print(render_markdown(results))
    return 0
