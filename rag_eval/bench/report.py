"""The bench's report: the markdown table of every measured value and how, the targets, findings, `--json`."""

from __future__ import annotations

import math
import os
from pathlib import Path

REQUIRED_KEYS = (
    "ask_p50_ms",
    "ask_p95_ms",
    "ttft_ms",
    "gen_tokens_per_s",
    "retrieve_p50_ms_10k",
    "retrieve_p50_ms_100k",
    "overhead_ratio",
    "cold_start_s",
    "peak_rss_mb",
)

# key -> (target, "<=" or ">="): the targets for the default model.


TARGETS = {
    "ask_p50_ms": (1000.0, "<="),
    "ask_p95_ms": (2000.0, "<="),
    "retrieve_p50_ms_10k": (20.0, "<="),
    "overhead_ratio": (1.10, "<="),
    "cold_start_s": (15.0, "<="),
    "serve_ready_s": (3.0, "<="),  # issue 24 part 2: `rag serve` to /health "ready"
    "peak_rss_mb": (1536.0, "<="),
    "ann_recall_at_10": (0.95, ">="),  # issue 24 part 4, at 1M chunks
    "ann_p50_ms": (20.0, "<="),
}


def check_targets(results: dict) -> dict[str, bool]:
    """Which targets are met (keys without a numeric result are left out)."""
    met = {}
    for key, (target, op) in TARGETS.items():
        value = results.get(key)
        if isinstance(value, (int, float)) and not math.isnan(value):
            met[key] = value <= target if op == "<=" else value >= target
    return met


def _fmt(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# (section, key, label, how it was measured); {names} in label and how are filled from the results.


ROWS: list[tuple[str, str, str, str]] = [
    ("Answering", "ask_p50_ms", "/ask median, 1 client (ms)", "{ask_via}; {ask_n} eval questions, model warm"),
    ("Answering", "ask_p95_ms", "/ask p95, 1 client (ms)", "same requests"),
    ("Answering", "ask_p50_ms_concurrent", "/ask median, {clients} concurrent clients (ms)",
     "same route, {clients} clients sharing twice the questions; one llama context, so requests queue"),
    ("Answering", "ask_p95_ms_concurrent", "/ask p95, {clients} concurrent clients (ms)", "same requests"),
    ("Answering", "ask_pipeline_p50_ms", "server-side answer time, 1 client (ms, median)",
     "timings.total_ms of the same responses: pipeline.ask from retrieval to verified answer"),
    ("Answering", "http_overhead_ms", "HTTP cost per request (ms, median)",
     "client-side time minus the server-side total_ms of the same response"),
    ("Answering", "first_answer_ms", "first answer after loading (ms)",
     "cold-start child's first ask: empty KV cache, so the whole prompt is evaluated"),
    ("Answering", "ttft_ms", "time to first token (ms, median)",
     "pipeline.ask_stream: call to first token event (retrieval, sentence selection, prompt eval, 1st token)"),
    ("Answering", "gen_tokens_per_s", "generation speed (tokens/s)",
     "streamed tokens after the first / time from first to last token, under the answer grammar"),
    ("Answering", "tokens_per_answer_p50", "tokens per answer (median)", "same streams"),
    ("Answering", "prompt_tokens_p50", "prompt tokens per question (median)",
     "usage.prompt_tokens of the exact chat the pipeline sends; budget {prompt_token_budget}"),
    ("Answering", "prompt_tokens_max", "prompt tokens per question (max)", "same"),
    ("Overhead vs raw llama-cpp-python", "overhead_ratio", "overhead_ratio (end to end)",
     "sum of pipeline.ask_stream time / sum of raw llama time on the same {overhead_questions} questions; "
     "the pipeline side includes retrieval, sentence selection, grammar building and citation checks"),
    ("Overhead vs raw llama-cpp-python", "generate_overhead_ratio", "generate-only ratio",
     "sum of pipeline generator.generate time / sum of raw llama time, same messages and grammar"),
    ("Overhead vs raw llama-cpp-python", "raw_generate_p50_ms", "raw create_chat_completion (ms, median)",
     "same messages + LlamaGrammar.from_string(same GBNF), temperature 0, same max_tokens, streamed"),
    ("Overhead vs raw llama-cpp-python", "raw_first_token_p50_ms", "  of which to the first token (ms, median)",
     "wall clock: prompt eval after the reused prefix + one sampling step"),
    ("Overhead vs raw llama-cpp-python", "raw_decode_p50_ms", "  of which first to last token (ms, median)",
     "wall clock; {raw_decode_ms_per_token} ms per token, sampling under the grammar included"),
    ("Overhead vs raw llama-cpp-python", "pipeline_generate_p50_ms", "pipeline generator.generate (ms, median)",
     "lock, seed, streamed chunks"),
    ("Overhead vs raw llama-cpp-python", "pipeline_ask_stream_p50_ms", "pipeline.ask_stream (ms, median)",
     "whole answer"),
    ("Overhead vs raw llama-cpp-python", "pipeline_steps_ms", "pipeline steps before generation (ms, median)",
     "Pipeline.prepare's step timings on the questions that reach the model (every answer's steps: the table below)"),
    ("Retrieval", "retrieve_p50_ms_seed", "search p50, seed corpus, {seed_chunks} chunks (ms)",
     "pipeline.search: query embedding + FAISS flat IP + BM25 + fusion"),
    ("Retrieval", "retrieve_p95_ms_seed", "search p95, seed corpus (ms)", "same"),
    ("Retrieval", "retrieve_p50_ms_synthetic", "search p50, {synthetic_chunks} synthetic chunks (ms)",
     "the index built by the ingest below (all vectors real)"),
    ("Retrieval", "retrieve_p50_ms_10k", "search p50, {size_a} chunks (ms)", "{scale_how}"),
    ("Retrieval", "retrieve_p95_ms_10k", "search p95, {size_a} chunks (ms)", "same"),
    ("Retrieval", "retrieve_steps_ms_10k", "search steps at {size_a} (ms, median)", "each step timed alone"),
    ("Retrieval", "retrieve_p50_ms_100k", "search p50, {size_b} chunks (ms)", "{scale_how}"),
    ("Retrieval", "retrieve_p95_ms_100k", "search p95, {size_b} chunks (ms)", "same"),
    ("Retrieval", "retrieve_steps_ms_100k", "search steps at {size_b} (ms, median)", "each step timed alone"),
    ("Retrieval", "index_build_s_100k", "index + BM25 build at {size_b} chunks (s)",
     "VectorIndex + HybridRetriever construction, about what loading that index costs"),
    ("Retrieval", "ann_recall_at_10", "HNSW recall@10 against exact, {ann_n} vectors",
     "synthetic {ann_dim}-dim vectors (rank-48 structure + noise, rag_eval/bench/ann.py), {ann_queries} held-out "
     "queries; M={ann_m}, efConstruction={ann_ef_construction}, efSearch={ann_ef_search} (the index settings)"),
    ("Retrieval", "ann_p50_ms", "HNSW search p50, {ann_n} vectors (ms)", "one query at a time, top 10, FAISS only"),
    ("Retrieval", "ann_p95_ms", "HNSW search p95, {ann_n} vectors (ms)", "same"),
    ("Retrieval", "ann_exact_p50_ms", "exact search p50, {ann_n} vectors (ms)",
     "faiss.knn over the same stored vectors, 50 single queries"),
    ("Retrieval", "ann_sweep", "HNSW by efSearch", "recall@10 and p50 at each efSearch (RAG_HNSW_EF_SEARCH)"),
    ("Ingest and index", "ann_build_s", "HNSW build, {ann_n} vectors (s)", "IndexHNSWFlat.add of every vector"),
    ("Ingest and index", "ingest_s_per_1k_chunks", "ingest seconds per 1,000 chunks",
     "rag ingest from scratch of {synthetic_docs} synthetic documents ({synthetic_chunks} chunks), real embedder"),
    ("Ingest and index", "index_size_mb_seed", "index size on disk, seed (MB)", "{seed_chunks} chunks"),
    ("Ingest and index", "index_size_mb_synthetic", "index size on disk, synthetic (MB)", "{synthetic_chunks} chunks"),
    ("Ingest and index", "index_size_mb_10k", "index size on disk, {size_a} chunks (MB)", "VectorIndex.save"),
    ("Ingest and index", "index_size_mb_100k", "index size on disk, {size_b} chunks (MB)", "VectorIndex.save"),
    ("Startup and memory", "serve_ready_s", "`rag serve` to /health ready (s)",
     "spawn to /health \"ready\", median of the starts {serve_ready_runs_s} (port answering: {serve_listening_s} s)"),
    ("Startup and memory", "cold_start_s", "cold start to ready (s)",
     "fresh child process, spawn to pipeline loaded and warm (embedder, index, GGUF, reader, BM25)"),
    ("Startup and memory", "cold_start_phases_s", "cold start phases (s)", "timed inside that child"),
    ("Startup and memory", "cold_first_answer_s", "cold start to first answer (s)", "same child, one question"),
    ("Startup and memory", "peak_rss_mb", "peak RSS of a serving process (MB)",
     "ru_maxrss of that child after its first answer"),
    ("Startup and memory", "bench_rss_mb_after_asks", "peak RSS of this process after the /ask runs (MB)",
     "pipeline + uvicorn + httpx, before the large synthetic indexes"),
    ("Startup and memory", "bench_peak_rss_mb", "peak RSS of this process at the end (MB)",
     "includes the {size_b}-chunk index"),
    ("Speed work", "kv_prompt_p50_ms_reused", "(a) prompt eval, prefix reused from the last question (ms, median)",
     "raw, max_tokens=1, the first {kv_questions} questions; the fixed system + worked-example prefix is "
     "~{kv_prefix_tokens} tokens"),
    ("Speed work", "kv_prompt_p50_ms_reset", "(a) prompt eval after llama.reset() (ms, median)",
     "same prompts, KV cache emptied before each"),
    ("Speed work", "budget_prompt_tokens_p50", "(b) prompt tokens, the pipeline's prompt (median)",
     "selected sentence only, passages fitted to the {prompt_token_budget}-token budget"),
    ("Speed work", "full_prompt_tokens_p50", "(b) prompt tokens with all k passages shown (median)", "same questions"),
    ("Speed work", "budget_prompt_p50_ms", "(b) prompt eval, the pipeline's prompt (ms, median)",
     "max_tokens=1 after reset"),
    ("Speed work", "full_prompt_p50_ms", "(b) prompt eval, all k passages (ms, median)", "max_tokens=1 after reset"),
    ("Speed work", "embedder_load_s", "(c) embedder load (s)", "SentenceTransformer from the bundled folder"),
    ("Speed work", "embed_first_ms", "(c) first embed call (ms)", "one query right after load"),
    ("Speed work", "embed_warm_p50_ms", "(c) warmed embed call (ms, median)", "20 single queries"),
    ("Speed work", "embedder_shared", "(c) one embedder for retrieval and sentence selection",
     "the answer strategy's embedder is pipeline.embedder"),
    ("Speed work", "help_s", "(d) `python -m rag.cli --help` (s, median)", "wall time, fresh interpreter"),
    ("Speed work", "help_top_imports", "(d) slowest top-level imports for --help", "python -X importtime, cumulative"),
    ("llama.cpp threads", "llama_threads", "threads the pipeline's context uses", "RAG_N_THREADS, or all cores "
     "when unset (llama-cpp-python's own default is cores/2 for decoding)"),
    ("llama.cpp threads", "prompt_ms_per_token_1t", "prompt eval, 1 thread (ms/token)",
     "llama.eval of one prompt on a separate Llama(n_threads=1) of the same GGUF"),
    ("llama.cpp threads", "prompt_ms_per_token_all", "prompt eval, {cpus} threads (ms/token)", "same"),
    ("llama.cpp threads", "decode_ms_per_token_1t", "decoding, 1 thread (ms/token)", "16 single-token evals"),
    ("llama.cpp threads", "decode_ms_per_token_all", "decoding, {cpus} threads (ms/token)", "same"),
]  # fmt: skip


TABLE_HEAD = "| measure | value | target | how it was measured |"


class _Default(dict):
    """Placeholders in ROWS whose value was not measured read "?" instead of raising."""

    def __missing__(self, key: str) -> str:
        return "?"


def render_markdown(results: dict) -> str:
    """The report: one table of every measured value, how it was measured, and the targets."""
    ctx = {k: _fmt(v) for k, v in results.items()}
    met = check_targets(results)
    lines = [
        "# rag bench",
        "",
        f"Measured {results.get('date', '?')} on {results.get('machine', '?')} (load average: "
        f"{_fmt(results.get('load_average', {}))}); model "
        f"{results.get('model', '?')} ({results.get('mode', '?')} mode), embedder {results.get('embedder', '?')}; "
        f"{'quick' if results.get('quick') else 'full'} run took {_fmt(results.get('bench_seconds', math.nan))} s "
        f"({_fmt(results.get('stage_seconds', {}))}).",
        "",
    ]
    section = None
    for sec, key, label, how in ROWS:
        if key not in results:
            continue
        if sec != section:
            section = sec
            lines += ["", f"## {sec}", "", TABLE_HEAD, "| --- | ---: | --- | --- |"]
        target = ""
        if key in TARGETS:
            goal, op = TARGETS[key]
            target = f"{op} {_fmt(goal)} " + ("met" if met.get(key) else "**missed**")
        lines.append(
            f"| {label.format_map(_Default(ctx))} | {_fmt(results[key])} | {target} | {how.format_map(_Default(ctx))} |"
        )
    lines += steps_table(results)
    lines += concurrency_table(results)
    notes = results.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


STEP_TOTALS = ("generate", "total")  # the rows of the steps table that are not steps besides generation
STEPS_HEAD = "| step | p50 (ms) | p95 (ms) | answers | what it covers |"


def steps_table(results: dict) -> list[str]:
    """Where a server-side answer's time goes (rag_eval/bench/server.py `answer_steps`): every step besides
    generation with its p50 over the one-client /ask answers, then generation and the total; nothing without them."""
    rows = results.get("answer_steps")
    if not rows:
        return []
    lines = [
        "",
        "## Per-answer steps",
        "",
        f"Each answer's own `timings.steps_ms` over the {_fmt(results.get('ask_n', '?'))} one-client /ask answers "
        "(server side); a step is counted over the answers that ran it (a refusal before the model has no read or "
        "plan). The steps are timed back to back: with generate they add up to the total, but for the time spent "
        "passing the stream's events along.",
        "",
        STEPS_HEAD,
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        cells = [r.get("step", "?"), r.get("p50_ms", math.nan), r.get("p95_ms", math.nan), r.get("answers", math.nan)]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + f" | {r.get('what', '')} |")
    return lines


CONCURRENCY_HEAD = (
    "| backend | clients | answered / requests | 503 | errors | p50 (ms) | p95 (ms) | answers/s | 1 client: p50 (ms) "
    "| 1 client: answers/s | speed-up | model calls per answer | how |"
)


def concurrency_table(results: dict) -> list[str]:
    """`rag bench --concurrency N`'s rows (rag_eval/bench/concurrency.py), one per backend; nothing without them."""
    rows = results.get("concurrency")
    if not rows:
        return []
    lines = [
        "",
        f"## Concurrent clients ({_fmt(results.get('concurrency_clients', '?'))} at once)",
        "",
        f"Queue size {_fmt(results.get('queue_size', '?'))}; llama.cpp threads "
        f"{_fmt(results.get('llama_threads', '?'))} on every backend; latency is per answered request, client side; answers/s over the wall time of the "
        "concurrent run; speed-up is answers/s against one client asking alone.",
        "",
        CONCURRENCY_HEAD,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        counts = f"{_fmt(r.get('answered', math.nan))} / {_fmt(r.get('requests', math.nan))}"
        cells = [r.get("backend", "?"), r.get("clients", math.nan), counts]
        cells += [r.get(k, math.nan) for k in ("busy_503", "errors", "p50_ms", "p95_ms", "answers_per_s")]
        cells += [r.get(k, math.nan) for k in ("single_p50_ms", "single_answers_per_s", "speedup")]
        cells += [r.get("model_calls_per_answer", math.nan), r.get("how", "")]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    if results.get("llama_server") and not any(r.get("backend") == "llama-server" for r in rows):
        lines += ["", f"llama-server: {results['llama_server']}."]
    return lines


def _json_safe(value):
    """NaN is not JSON: unmeasured numbers become null, inside nested dicts and lists too."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def json_report(results: dict) -> dict:
    """The `--json` object: every result, with the required keys always present (NaN -> null)."""
    out = _json_safe(results)
    for key in REQUIRED_KEYS:
        out.setdefault(key, None)
    out["targets_met"] = check_targets(results)
    return out


def findings(r: dict) -> list[str]:
    """Plain-language reading of the numbers: which targets are missed and what the measurements say limits them."""
    notes = []
    met = check_targets(r)
    # the answers' own steps when the /ask runs measured them (every answer), else prepare's on the prompts
    answered = {row["step"]: row["p50_ms"] for row in r.get("answer_steps") or [] if row["step"] not in STEP_TOTALS}
    steps = _fmt(answered or r.get("pipeline_steps_ms", {}))
    if not met.get("ask_p50_ms", True) or not met.get("ask_p95_ms", True):
        notes.append(
            f"/ask over target. Raw llama.cpp alone takes {_fmt(r.get('raw_generate_p50_ms'))} ms median per answer: "
            f"{_fmt(r.get('raw_first_token_p50_ms'))} ms to the first token (prompt eval after the reused prefix) + "
            f"{_fmt(r.get('raw_decode_p50_ms'))} ms from first to last token "
            f"({_fmt(r.get('raw_decode_ms_per_token'))} ms/token). The pipeline's own steps (median ms): {steps}."
        )
    if not met.get("overhead_ratio", True):
        notes.append(
            f"overhead_ratio {_fmt(r['overhead_ratio'])} over 1.10; the generate-only ratio is "
            f"{_fmt(r.get('generate_overhead_ratio'))}, so the excess is the pipeline's work around the model "
            f"(median ms: {steps})."
        )
    if not met.get("retrieve_p50_ms_10k", True):
        notes.append(
            f"retrieval at {_fmt(r.get('size_a'))} chunks over 20 ms; step medians (ms): "
            f"{_fmt(r.get('retrieve_steps_ms_10k', {}))}."
        )
    if not met.get("ann_recall_at_10", True) or not met.get("ann_p50_ms", True):
        notes.append(
            f"HNSW at {_fmt(r.get('ann_n'))} vectors misses a target; by efSearch: {_fmt(r.get('ann_sweep', {}))} "
            "(RAG_HNSW_EF_SEARCH trades one for the other; RAG_HNSW_M and RAG_HNSW_EF_CONSTRUCTION need an "
            "ingest)."
        )
    if not met.get("cold_start_s", True):
        notes.append(f"cold start over 15 s; phases in the child (s): {_fmt(r.get('cold_start_phases_s', {}))}.")
    one, many = r.get("decode_ms_per_token_1t"), r.get("decode_ms_per_token_all")
    if one and many:
        notes.append(
            f"llama.cpp decoding: {_fmt(one)} ms/token on 1 thread vs {_fmt(many)} on {r.get('cpus')} "
            f"(the pipeline runs {r.get('llama_threads')})."
        )
    for row in r.get("concurrency") or []:
        if row.get("errors"):
            notes.append(
                f"{row['backend']}: {row['errors']} of {row['requests']} concurrent requests failed; the first: "
                f"{row.get('first_error', '?')}"
            )
        if row.get("busy_503"):
            notes.append(
                f"{row['backend']}: {row['busy_503']} requests got 503 (queue full, RAG_QUEUE_SIZE="
                f"{r.get('queue_size', '?')}): each client retried nothing, so they count as not answered."
            )
    loads = r.get("load_average", {})
    if loads and max(loads.values()) > 0.5:
        notes.append(
            f"other work was running (1-minute load average {_fmt(loads)}, {os.cpu_count()} CPUs): every "
            "timing here is an upper bound, and phases run at different loads compare loosely."
        )
    return notes


def write_report(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(results), "utf-8")
