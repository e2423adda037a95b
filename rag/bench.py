"""`rag bench`: how fast is it, where does the time go, and how far is each number from its target.

Everything is measured on this machine with the configured model and embedder; nothing is estimated
unless the table says so. Only the standard library is imported at module level: the CLI imports this
module to build its parser, and `rag --help` must stay instant. Heavy imports live inside functions.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

DEFAULT_OUT = Path("eval") / "bench.md"
QUESTIONS_FILE = Path("eval") / "questions.jsonl"
FALLBACK_QUESTIONS = (
    "When did Brad Smith meet Wang Wentao?",
    "Who is China's Minister of Commerce?",
    "Which company developed ChatGPT?",
    "What is the capital of France?",
)

# The keys `--json` always carries (the tests check them); everything else measured is added alongside.
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
    "peak_rss_mb": (1536.0, "<="),
}


class Plan(NamedTuple):
    """How much of each measurement to run; `quick` is for tests and smoke runs (about a minute or two)."""

    questions: int  # questions per generation pass
    retrieval_queries: int  # timed searches per index size
    ingest_chunks: int  # real embedding for the ingest rate (and the real vectors scaled up below)
    scale_sizes: tuple[int, ...]  # index sizes (chunks) for retrieval latency
    concurrent_clients: int
    help_runs: int


RESET_PROMPTS = 4  # prompts evaluated from an empty KV cache in the (a)/(b) before-and-after

FULL = Plan(questions=10, retrieval_queries=60, ingest_chunks=2000, scale_sizes=(10_000, 100_000),
            concurrent_clients=4, help_runs=3)  # fmt: skip
QUICK = Plan(questions=3, retrieval_queries=10, ingest_chunks=150, scale_sizes=(10_000, 20_000),
             concurrent_clients=2, help_runs=1)  # fmt: skip


# ================================================================================================
# Pure helpers (tested without models)
# ================================================================================================


def percentile(values: Iterable[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]; NaN for no values."""
    data = sorted(float(v) for v in values)
    if not data:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


_CONSONANTS = "bdfgklmnprstvzhj"
_VOWELS = "aeiou"
_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]


_NAME_WIDTH = 4  # syllables per name: 80**4 (about 41 million) distinct names
_NAME_SPACE = len(_SYLLABLES) ** _NAME_WIDTH
_NAME_STRIDE = 7_919_003  # odd and not a multiple of 5, so coprime to the space: i -> name is one-to-one


def synthetic_name(i: int) -> str:
    """A pronounceable made-up name unique to `i` (< 80**4): a scrambled fixed-width base-80 number.

    Fixed width and two-letter syllables make the spelling unambiguous, and the scramble keeps
    neighbouring ids from sharing a prefix, so names look varied.
    """
    if not 0 <= i < _NAME_SPACE:
        raise ValueError(f"name id {i} out of range")
    n = (i * _NAME_STRIDE + 12345) % _NAME_SPACE
    digits = []
    for _ in range(_NAME_WIDTH):
        n, r = divmod(n, len(_SYLLABLES))
        digits.append(_SYLLABLES[r])
    return "".join(digits).capitalize()


_NUMBER = re.compile(r"\d+")
_PROPER_MID = re.compile(r"(?<=\s)[A-Z][a-z]{2,}\b")  # capitalised mid-sentence: a name, not a sentence start
_CAPITALISED = re.compile(r"\b[A-Z][a-z]{2,}\b")


def _random_like(number: str, rng: random.Random) -> str:
    digits = len(number)
    return str(rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits))


def perturb_sentence(sentence: str, names: dict[str, str], rng: random.Random, place: str) -> str:
    """Vary a seed sentence: other numbers, this document's names; a document-unique place when nothing varied.

    The place guarantees every synthetic sentence holds a token unique to its document, so chunks never repeat.
    """
    varied = _NUMBER.sub(lambda m: _random_like(m.group(), rng), sentence)
    varied = _CAPITALISED.sub(lambda m: names.get(m.group(), m.group()), varied)
    if not _NUMBER.search(sentence) and not any(w in names for w in _CAPITALISED.findall(sentence)):
        varied = f"In {place}, {varied[:1].lower()}{varied[1:]}"
    return varied


class SyntheticCorpus:
    """Documents made from the seed's sentences: shuffled, perturbed, regrouped into paragraphs.

    Document `d` maps every name in the seed to its own made-up names and redraws every number, so its
    chunks differ from every other document's while reading like the seed (same vocabulary and length).
    """

    def __init__(self, sentences: list[str], seed: int = 0):
        self.sentences = list(dict.fromkeys(s.strip() for s in sentences if s.strip()))
        if not self.sentences:
            raise ValueError("no seed sentences to build a synthetic corpus from")
        self.proper = sorted({w for s in self.sentences for w in _PROPER_MID.findall(s)})
        self.seed = seed

    def paragraphs(self, d: int) -> tuple[str, list[list[str]]]:
        """Document `d`'s title and paragraphs (each a list of sentences); deterministic in (seed, d)."""
        rng = random.Random(self.seed * 1_000_003 + d)
        base = d * (len(self.proper) + 1)
        names = {w: synthetic_name(base + j + 1) for j, w in enumerate(self.proper)}
        place = synthetic_name(base)
        picked = rng.sample(self.sentences, max(1, round(len(self.sentences) * rng.uniform(0.6, 1.0))))
        body = [perturb_sentence(s, names, rng, place) for s in picked]
        paragraphs, i = [], 0
        while i < len(body):
            n = rng.randint(1, 4)
            paragraphs.append(body[i : i + n])
            i += n
        return f"Report {place}", paragraphs

    def document(self, d: int) -> tuple[str, str]:
        """(document id, text): the title line, then one paragraph per blank-line separated block."""
        title, paragraphs = self.paragraphs(d)
        text = title + "\n\n" + "\n\n".join(" ".join(p) for p in paragraphs) + "\n"
        return f"synthetic/{d:06d}.txt", text

    def documents(self, n_docs: int) -> list[tuple[str, str]]:
        return [self.document(d) for d in range(n_docs)]

    def chunk_texts(self, n_chunks: int, chunk_size: int, first_doc: int = 0) -> list[tuple[str, str]]:
        """`n_chunks` (doc id, text) chunks of documents `first_doc`, `first_doc + 1`…, grouped as rag.chunking
        groups sentences (whole sentences up to chunk_size characters, never across paragraphs) but without
        writing or re-splitting documents, which would dominate the time at 100k chunks."""
        out: list[tuple[str, str]] = []
        d = first_doc
        while len(out) < n_chunks:
            doc_id = f"synthetic/{d:06d}.txt"
            for paragraph in self.paragraphs(d)[1]:
                out.extend((doc_id, text) for text in group_sentences(paragraph, chunk_size))
            d += 1
        return out[:n_chunks]


def group_sentences(sentences: list[str], chunk_size: int) -> list[str]:
    """Consecutive sentences joined while the chunk stays within chunk_size (a long sentence stands alone)."""
    chunks, current = [], ""
    for s in sentences:
        if current and len(current) + 1 + len(s) > chunk_size:
            chunks.append(current)
            current = s
        else:
            current = f"{current} {s}" if current else s
    if current:
        chunks.append(current)
    return chunks


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
     "same messages + LlamaGrammar.from_string(same GBNF), temperature 0, same max_tokens"),
    ("Overhead vs raw llama-cpp-python", "raw_prompt_eval_p50_ms", "  of which prompt eval (ms, median)",
     "llama.cpp perf counters; {raw_prompt_eval_tokens_p50} new tokens after the reused prefix"),
    ("Overhead vs raw llama-cpp-python", "raw_decode_p50_ms", "  of which decoding (ms, median)",
     "{raw_decode_ms_per_token} ms per token"),
    ("Overhead vs raw llama-cpp-python", "raw_other_p50_ms", "  of which sampling, grammar, Python (ms, median)",
     "wall time minus llama.cpp's eval clocks"),
    ("Overhead vs raw llama-cpp-python", "pipeline_generate_p50_ms", "pipeline generator.generate (ms, median)",
     "lock, seed, streamed chunks"),
    ("Overhead vs raw llama-cpp-python", "pipeline_ask_stream_p50_ms", "pipeline.ask_stream (ms, median)",
     "whole answer"),
    ("Overhead vs raw llama-cpp-python", "pipeline_steps_ms", "pipeline steps besides generation (ms, median)",
     "search, fit_budget (token counting), plan (sentence selection + grammar)"),
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
    ("Ingest and index", "ingest_s_per_1k_chunks", "ingest seconds per 1,000 chunks",
     "rag ingest from scratch of {synthetic_docs} synthetic documents ({synthetic_chunks} chunks), real embedder"),
    ("Ingest and index", "index_size_mb_seed", "index size on disk, seed (MB)", "{seed_chunks} chunks"),
    ("Ingest and index", "index_size_mb_synthetic", "index size on disk, synthetic (MB)", "{synthetic_chunks} chunks"),
    ("Ingest and index", "index_size_mb_10k", "index size on disk, {size_a} chunks (MB)", "VectorIndex.save"),
    ("Ingest and index", "index_size_mb_100k", "index size on disk, {size_b} chunks (MB)", "VectorIndex.save"),
    ("Startup and memory", "cold_start_s", "cold start to ready (s)",
     "fresh child process, spawn to pipeline loaded (embedder, index, GGUF, BM25)"),
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
     "pipeline.answerer.embedder is pipeline.embedder"),
    ("Speed work", "help_s", "(d) `python -m rag.cli --help` (s, median)", "wall time, fresh interpreter"),
    ("Speed work", "help_top_imports", "(d) slowest top-level imports for --help", "python -X importtime, cumulative"),
    ("llama.cpp threads", "llama_threads", "threads the pipeline's context uses", "RAG_N_THREADS, or all cores "
     "when unset (llama-cpp-python's own default is cores/2 for decoding)"),
    ("llama.cpp threads", "prompt_ms_per_token_1t", "prompt eval, 1 thread (ms/token)", "llama.eval of one prompt"),
    ("llama.cpp threads", "prompt_ms_per_token_all", "prompt eval, {cpus} threads (ms/token)", "same"),
    ("llama.cpp threads", "decode_ms_per_token_1t", "decoding, 1 thread (ms/token)", "16 single-token evals"),
    ("llama.cpp threads", "decode_ms_per_token_all", "decoding, {cpus} threads (ms/token)", "same"),
]


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
        lines.append(f"| {label.format_map(_Default(ctx))} | {_fmt(results[key])} | {target} | "
                     f"{how.format_map(_Default(ctx))} |")  # fmt: skip
    notes = results.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


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


def progress(message: str) -> None:
    print(f"rag bench: {message}", file=sys.stderr, flush=True)


def top_imports(importtime_stderr: str, n: int = 3) -> list[tuple[str, float]]:
    """The `n` slowest top-level imports (name, cumulative ms) from `python -X importtime` output."""
    found = []
    for line in importtime_stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and len(m.group(3)) <= 1:  # one space after "|" marks a top-level import
            found.append((m.group(4), int(m.group(2)) / 1000))
    return sorted(found, key=lambda x: -x[1])[:n]


def tile_count(have: int, want: int) -> int:
    """Rows to synthesise when scaling `have` real rows up to `want` (never negative)."""
    return max(0, want - have)


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _timed(fn: Callable, *args, **kwargs) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, _ms(t0)


def _dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6, 3)


def _rss_mb() -> float:
    """Peak RSS of this process so far (Linux reports ru_maxrss in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def load_question_texts(path: Path = QUESTIONS_FILE) -> list[str]:
    """The evaluation questions (answerable and not, a realistic mix); a built-in few if the file is absent."""
    if not path.exists():
        return list(FALLBACK_QUESTIONS)
    texts = [json.loads(line)["question"] for line in path.read_text("utf-8").splitlines() if line.strip()]
    return texts or list(FALLBACK_QUESTIONS)


def _cycle(items: list, n: int) -> list:
    return [items[i % len(items)] for i in range(n)]


# ================================================================================================
# Measurements (heavy imports inside)
# ================================================================================================


def measure_help(runs: int) -> dict:
    """(d) `rag --help` in a fresh interpreter: the CLI must not import torch, faiss or llama.cpp to print usage."""
    import subprocess

    cmd = [sys.executable, "-m", "rag.cli", "--help"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    trace = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], capture_output=True, text=True)
    top = top_imports(trace.stderr)
    return {"help_s": round(statistics.median(times), 3),
            "help_top_imports": ", ".join(f"{name} {ms:.0f} ms" for name, ms in top)}  # fmt: skip


_COLD_CHILD = r"""
import json, resource, sys, time
marks = {"start": time.perf_counter()}
from rag.pipeline import Pipeline, load_embedder, load_generator, load_index
from rag.settings import Settings
settings = Settings(**json.loads(sys.argv[1]))
marks["imports"] = time.perf_counter()
embedder = load_embedder(settings)
marks["embedder"] = time.perf_counter()
index = load_index(settings, embedder)
marks["index"] = time.perf_counter()
generator = load_generator(settings)
marks["model"] = time.perf_counter()
pipeline = Pipeline(settings, embedder, index, generator)  # what Pipeline.load does, one phase at a time
marks["retriever"] = time.perf_counter()
print("ready", flush=True)
answer = pipeline.ask(sys.argv[2])
names = list(marks)
phases = {b: round(marks[b] - marks[a], 2) for a, b in zip(names, names[1:])}
print(json.dumps({"phases_s": phases, "answer_s": time.perf_counter() - marks["retriever"],
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
"""


def measure_cold_start(settings, question: str) -> dict:
    """A fresh process loads the pipeline (embedder, index, BM25, GGUF) and answers once: what a user waits for.

    Wall time is taken here, from spawn to the child's "ready" line, so interpreter start-up counts; the child
    reports how long each loading phase took.
    """
    import subprocess
    import tempfile

    # Settings travel on the command line (env RAG_* is inherited anyway); the API token has no business there.
    cmd = [sys.executable, "-c", _COLD_CHILD, settings.model_dump_json(exclude={"api_token"}), question]
    with tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        first = child.stdout.readline()
        ready = time.perf_counter() - t0
        last = child.stdout.readline()
        answered = time.perf_counter() - t0
        child.wait()
        if child.returncode or first.strip() != "ready":
            err.seek(0)
            raise RuntimeError(f"cold-start child failed ({child.returncode}): {err.read()[-2000:]}")
    report = json.loads(last)
    return {
        "cold_start_s": round(ready, 2),
        "cold_first_answer_s": round(answered, 2),
        "cold_start_phases_s": report["phases_s"],
        "first_answer_ms": round(report["answer_s"] * 1000, 1),
        "peak_rss_mb": round(report["maxrss_kb"] / 1024, 1),
    }


def measure_embedder(settings, queries: list[str]) -> tuple[object, dict]:
    """(c) Load the embedder once; compare its first call (lazy initialisation) with warmed calls."""
    from rag.pipeline import load_embedder

    t0 = time.perf_counter()
    embedder = load_embedder(settings)
    load_s = time.perf_counter() - t0
    _, first = _timed(embedder.embed, [queries[0]])
    warm = [_timed(embedder.embed, [q])[1] for q in _cycle(queries, 20)]
    return embedder, {
        "embedder": embedder.id,
        "embedder_load_s": round(load_s, 2),
        "embed_first_ms": round(first, 1),
        "embed_warm_p50_ms": round(statistics.median(warm), 2),
    }


def seed_sentences(settings) -> list[str]:
    """Content sentences of the seed corpus (web furniture and fragments under five words left out)."""
    from rag.chunking import split_sentences
    from rag.documents import is_boilerplate, load_corpus

    out = []
    for doc in load_corpus(settings.seeds_dir):
        for seg in doc.segments:
            for a, b in split_sentences(doc.text, seg.start, seg.end):
                s = doc.text[a:b]
                if len(s.split()) >= 5 and not is_boilerplate(s):
                    out.append(s)
    return out


def write_synthetic_corpus(corpus: SyntheticCorpus, folder: Path, n_chunks: int, settings) -> int:
    """Write documents until they chunk to at least `n_chunks`; returns the number of documents."""
    from rag.chunking import chunk_document
    from rag.documents import load_document

    total, d = 0, 0
    while total < n_chunks:
        doc_id, text = corpus.document(d)
        path = folder / doc_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        total += len(chunk_document(load_document(path, folder), settings.chunk_size, settings.chunk_overlap))
        d += 1
    return d


def measure_ingest(settings, embedder, corpus: SyntheticCorpus, n_chunks: int, workdir: Path):
    """Ingest a synthetic corpus from scratch with the real embedder: seconds per 1,000 chunks, size on disk."""
    from rag.pipeline import run_ingest

    synthetic = settings.model_copy(update={"seeds_dir": workdir / "seeds", "index_dir": workdir / "index"})
    docs = write_synthetic_corpus(corpus, synthetic.seeds_dir, n_chunks, settings)
    index, report = run_ingest(synthetic, embedder)
    return index, {
        "synthetic_docs": docs,
        "synthetic_chunks": report.chunks_added,
        "ingest_s_per_1k_chunks": round(report.seconds / max(1, report.chunks_added) * 1000, 2),
        "index_size_mb_synthetic": _dir_mb(synthetic.index_dir),
    }


def time_searches(pipeline, queries: list[str], n: int) -> list[float]:
    """Search latency in ms for `n` queries (after one untimed warm-up search)."""
    pipeline.search(queries[0])
    return [_timed(pipeline.search, q)[1] for q in _cycle(queries, n)]


def scaled_vectors(real, n: int, seed: int = 0):
    """`n` unit vectors: the real ones first, then noisy copies of them (cosine ~0.9 to their source), so the
    scaled index has the real embedding distribution. Flat inner-product search costs the same for any vectors."""
    import numpy as np

    from rag.embedding import normalise

    extra = tile_count(len(real), n)
    rng = np.random.default_rng(seed)
    src = real[np.arange(extra) % len(real)]
    noise = rng.standard_normal(src.shape).astype(np.float32) * (0.5 / math.sqrt(real.shape[1]))
    return np.concatenate([real[:n], normalise(src + noise)]) if extra else real[:n]


def scaled_rows(real_index, corpus: SyntheticCorpus, n: int, chunk_size: int) -> tuple[list, object]:
    """Chunks and vectors for an `n`-chunk index: the real ingested chunks and vectors first, then synthetic
    chunk texts from documents the ingest did not use (so BM25 has distinct, real-looking text at that size)
    paired with perturbed copies of the real vectors."""
    from rag.chunking import Chunk

    chunks = list(real_index.chunks[:n])
    extra = corpus.chunk_texts(tile_count(len(chunks), n), chunk_size, first_doc=len(real_index.documents))
    for i, (doc_id, text) in enumerate(extra):
        chunks.append(Chunk(f"scaled/{doc_id}", f"scaled/{doc_id}#{i}", 0, len(text), text))
    return chunks, scaled_vectors(real_index.vectors, n)


def retrieval_breakdown(pipeline, queries: list[str]) -> dict:
    """Median ms of each step of one hybrid search, to say which part grows with the index."""
    import numpy as np

    retriever = pipeline.retriever
    n = min(retriever.candidates, len(pipeline.index))
    steps = {"embed": [], "faiss": [], "bm25": [], "sort": []}
    for q in queries:
        qvec, ms = _timed(pipeline.embedder.embed, [q])
        steps["embed"].append(ms)
        steps["faiss"].append(_timed(pipeline.index.search, qvec[0], n)[1])
        scores, ms = _timed(retriever.bm25.scores, q)
        steps["bm25"].append(ms)
        steps["sort"].append(_timed(lambda: np.argsort(-scores, kind="stable")[:n])[1])
    return {k: round(statistics.median(v), 2) for k, v in steps.items()}


def measure_scaling(settings, embedder, real_index, corpus, plan: Plan, queries: list[str], workdir: Path) -> dict:
    """Retrieval latency at the plan's sizes (10k and 100k in a full run), built as `scaled_rows` says."""
    from rag.index import VectorIndex
    from rag.pipeline import Pipeline

    out: dict = {}
    for label, size in zip(("10k", "100k"), plan.scale_sizes):
        progress(f"retrieval at {size:,} chunks: building the index")
        chunks, vectors = scaled_rows(real_index, corpus, size, settings.chunk_size)
        t0 = time.perf_counter()
        index = VectorIndex({**real_index.manifest, "documents": {}}, chunks, vectors)
        pipeline = Pipeline(settings, embedder, index)  # builds BM25 over every chunk
        build_s = time.perf_counter() - t0
        del chunks, vectors
        times = time_searches(pipeline, queries, plan.retrieval_queries)
        out[f"retrieve_p50_ms_{label}"] = round(percentile(times, 50), 2)
        out[f"retrieve_p95_ms_{label}"] = round(percentile(times, 95), 2)
        out[f"index_build_s_{label}"] = round(build_s, 2)
        steps = retrieval_breakdown(pipeline, queries[: plan.retrieval_queries])
        out[f"retrieve_steps_ms_{label}"] = steps
        out[f"retrieve_embed_share_{label}"] = round(steps["embed"] / max(1e-9, out[f"retrieve_p50_ms_{label}"]), 2)
        index.save(workdir / f"index-{label}")
        out[f"index_size_mb_{label}"] = _dir_mb(workdir / f"index-{label}")
        del pipeline, index
    return out


class Prompt(NamedTuple):
    """One question exactly as the pipeline would send it to llama.cpp, plus the all-passages variant."""

    question: str
    messages: list[dict]
    grammar: str
    full_messages: list[dict]
    steps_ms: dict


def build_prompts(pipeline, questions: list[str], n: int) -> list[Prompt]:
    """The first `n` questions the pipeline would send to the model (off-topic refusals never reach it),
    built the way `Answerer.stream` builds them, timing each pipeline step on the way."""
    from rag.citations import number_passages

    answerer, prompts = pipeline.answerer, []
    for q in questions:
        passages, search_ms = _timed(pipeline.search, q)
        if not passages or max(p.dense for p in passages) < answerer.policy.min_relevance:
            continue
        passages, fit_ms = _timed(answerer.fit_budget, q, passages)
        numbered = number_passages(passages)
        (messages, grammar, _), plan_ms = _timed(answerer.plan, q, numbered)
        if grammar is None:
            continue
        steps = {"search": search_ms, "fit_budget": fit_ms, "plan": plan_ms}
        prompts.append(Prompt(q, messages, grammar, answerer.messages(q, numbered), steps))
        if len(prompts) == n:
            break
    return prompts


def raw_completion(llama, messages: list[dict], grammar: str | None, max_tokens: int, reset: bool = False) -> dict:
    """Plain llama-cpp-python, as a user of the library would call it: the baseline for the overhead ratio.

    Returns wall ms, the completion's usage, and llama.cpp's own clock for prompt evaluation and decoding,
    so whatever is left (sampling under the grammar, detokenising, the chat template, Python) shows too.
    """
    import llama_cpp
    from llama_cpp import LlamaGrammar

    compiled = LlamaGrammar.from_string(grammar, verbose=False) if grammar else None
    if reset:
        llama.reset()
    ctx = llama._ctx.ctx  # noqa: SLF001 - llama.cpp's perf counters need the raw context
    llama_cpp.llama_perf_context_reset(ctx)
    t0 = time.perf_counter()
    out = llama.create_chat_completion(messages=messages, grammar=compiled, temperature=0, max_tokens=max_tokens)
    ms = _ms(t0)
    perf = llama_cpp.llama_perf_context(ctx)
    return {"ms": ms, "usage": out["usage"], "prompt_eval_ms": perf.t_p_eval_ms, "prompt_eval_tokens": perf.n_p_eval,
            "decode_ms": perf.t_eval_ms, "decode_tokens": perf.n_eval}  # fmt: skip


def stream_pass(pipeline, prompts: list[Prompt]) -> list[dict]:
    """pipeline.ask_stream per question: total ms, time to first token, and token arrival times."""
    rows = []
    for p in prompts:
        t0 = time.perf_counter()
        stamps = []
        for event in pipeline.ask_stream(p.question):
            if event[0] == "token":
                stamps.append(time.perf_counter())
        rows.append({"total_ms": _ms(t0), "ttft_ms": (stamps[0] - t0) * 1000 if stamps else math.nan,
                     "tokens": len(stamps), "decode_s": stamps[-1] - stamps[0] if stamps else 0.0})  # fmt: skip
    return rows


def raw_pass(llama, prompts: list[Prompt], max_tokens: int) -> list[dict]:
    return [raw_completion(llama, p.messages, p.grammar, max_tokens) for p in prompts]


def generator_pass(generator, prompts: list[Prompt], max_tokens: int) -> list[float]:
    def consume(p):
        for _ in generator.generate(p.messages, p.grammar, max_tokens):
            pass

    return [_timed(consume, p)[1] for p in prompts]


def _median(values: Iterable[float], digits: int = 1) -> float:
    data = [v for v in values if not math.isnan(v)]
    return round(statistics.median(data), digits) if data else math.nan


def measure_generation(pipeline, prompts: list[Prompt]) -> dict:
    """TTFT, tokens/s and the overhead ratio against raw llama-cpp-python on the same prompts.

    Passes run A B C C B A (pipeline, raw, generator) so drift in machine load falls on every side alike, and
    each pass visits the questions in the same order, so each call finds the previous question's prompt in the
    KV cache whichever side it is on.
    """
    llama, max_tokens = pipeline.generator.llama, pipeline.settings.max_answer_tokens
    stream_pass(pipeline, prompts)  # warm-up: every side then starts from the same cache state
    a, b, c = [], [], []
    sides = {
        "pipeline": (a, lambda: stream_pass(pipeline, prompts)),
        "raw": (b, lambda: raw_pass(llama, prompts, max_tokens)),
        "generator": (c, lambda: generator_pass(pipeline.generator, prompts, max_tokens)),
    }
    order = ["pipeline", "raw", "generator", "generator", "raw", "pipeline"]
    for i, side in enumerate(order, 1):
        rows, run = sides[side]
        rows.extend(run())
        progress(f"  pass {i}/{len(order)} ({side}) done")
    totals, raw = [r["total_ms"] for r in a], [r["ms"] for r in b]
    decoded = sum(max(0, r["tokens"] - 1) for r in a)
    decode_s = sum(r["decode_s"] for r in a)
    return {
        "ttft_ms": _median(r["ttft_ms"] for r in a),
        "gen_tokens_per_s": round(decoded / decode_s, 1) if decode_s else math.nan,
        "tokens_per_answer_p50": statistics.median(r["tokens"] for r in a),
        "raw_generate_p50_ms": _median(raw),
        "raw_prompt_eval_p50_ms": _median(r["prompt_eval_ms"] for r in b),
        "raw_prompt_eval_tokens_p50": statistics.median(r["prompt_eval_tokens"] for r in b),
        "raw_decode_p50_ms": _median(r["decode_ms"] for r in b),
        "raw_decode_ms_per_token": round(sum(r["decode_ms"] for r in b) / max(1, sum(r["decode_tokens"] for r in b)),
                                         1),  # fmt: skip
        "raw_other_p50_ms": _median(r["ms"] - r["prompt_eval_ms"] - r["decode_ms"] for r in b),
        "pipeline_generate_p50_ms": _median(c),
        "pipeline_ask_stream_p50_ms": _median(totals),
        "overhead_ratio": round(sum(totals) / sum(raw), 3),
        "generate_overhead_ratio": round(sum(c) / sum(raw), 3),
        "pipeline_steps_ms": {k: _median((p.steps_ms[k] for p in prompts), 2) for k in prompts[0].steps_ms},
        "overhead_questions": len(prompts),
    }


def measure_threads(llama, tokens: list[int], decode_steps: int = 16) -> dict:
    """llama.cpp speed per token at 1 thread and at every core, for prompt evaluation (batched) and decoding.

    Uses llama_set_n_threads on the loaded context and restores its setting afterwards.
    """
    import llama_cpp

    ctx, params = llama._ctx.ctx, llama.context_params  # noqa: SLF001
    saved = (params.n_threads, params.n_threads_batch)
    out = {"llama_threads": f"{saved[0]} decode / {saved[1]} prompt", "cpus": os.cpu_count() or 1}
    try:
        for n in sorted({1, os.cpu_count() or 1}):
            llama_cpp.llama_set_n_threads(ctx, n, n)
            llama.reset()
            _, batch_ms = _timed(llama.eval, tokens)
            t0 = time.perf_counter()
            for tok in tokens[:decode_steps]:
                llama.eval([tok])
            label = "1t" if n == 1 else "all"
            out[f"prompt_ms_per_token_{label}"] = round(batch_ms / len(tokens), 2)
            out[f"decode_ms_per_token_{label}"] = round(_ms(t0) / decode_steps, 2)
    finally:
        llama_cpp.llama_set_n_threads(ctx, *saved)
        llama.reset()
    return out


def prompt_eval(llama, messages: list[dict], reset: bool) -> tuple[float, int]:
    """(ms, prompt tokens) of evaluating a prompt and sampling one token: prompt processing time."""
    out = raw_completion(llama, messages, None, 1, reset=reset)
    return out["ms"], out["usage"]["prompt_tokens"]


def measure_prompt_work(pipeline, prompts: list[Prompt]) -> dict:
    """(a) KV-cache reuse of the fixed prefix and (b) the prompt budget, each before and after."""
    llama, generator = pipeline.generator.llama, pipeline.generator
    reused = [prompt_eval(llama, p.messages, reset=False) for p in prompts]
    few = prompts[:RESET_PROMPTS]  # a whole prompt from scratch takes seconds: a few are enough
    reset = [prompt_eval(llama, p.messages, reset=True) for p in few]
    full = [prompt_eval(llama, p.full_messages, reset=True) for p in few]
    prefix = sum(generator.count_tokens(m["content"]) for m in prompts[0].messages[:-1])
    return {
        "kv_prompt_p50_ms_reused": round(statistics.median(ms for ms, _ in reused[: len(few)]), 1),
        "kv_prompt_p50_ms_reset": round(statistics.median(ms for ms, _ in reset), 1),
        "kv_prefix_tokens": prefix,
        "kv_questions": len(few),
        "prompt_tokens_p50": statistics.median(t for _, t in reused),
        "prompt_tokens_max": max(t for _, t in reused),
        "budget_prompt_tokens_p50": statistics.median(t for _, t in reset),
        "budget_prompt_p50_ms": round(statistics.median(ms for ms, _ in reset), 1),
        "full_prompt_tokens_p50": statistics.median(t for _, t in full),
        "full_prompt_p50_ms": round(statistics.median(ms for ms, _ in full), 1),
        "prompt_token_budget": pipeline.settings.prompt_token_budget,
    }


Ask = Callable[[object, str], float]  # (client, question) -> the server's own total_ms for that answer


def _timed_ask(ask: Ask, client, question: str) -> tuple[float, float]:
    """(client-side ms, server-side ms) of one request."""
    t0 = time.perf_counter()
    server_ms = ask(client, question)
    return _ms(t0), server_ms


def _concurrently(clients: int, requests: list[str], ask: Ask, make_client) -> list[tuple[float, float]]:
    """(client ms, server ms) of each request when `clients` threads share the list, each with its own client."""
    import threading

    results: list[tuple[float, float]] = []
    lock = threading.Lock()
    queue = list(requests)

    def worker():
        client = make_client()
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    q = queue.pop(0)
                timing = _timed_ask(ask, client, q)
                with lock:
                    results.append(timing)
        finally:
            close = getattr(client, "close", None)
            if close:
                close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class _Server:
    """The real FastAPI app (rag/api) under uvicorn in a thread, on an ephemeral port, around a loaded pipeline."""

    def __init__(self, settings, pipeline, queue_size: int):
        import threading

        import uvicorn

        from rag.api import create_app

        settings = settings.model_copy(update={"api_token": None, "queue_size": max(settings.queue_size, queue_size)})
        config = uvicorn.Config(create_app(settings, pipeline=pipeline), host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="bench-uvicorn", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _asks(ask: Ask, make_client, questions: list[str], clients: int) -> tuple[list, list]:
    """1 client over the questions, then `clients` sharing twice as many requests. The warm-up asks the last
    question, so the first timed one finds the same KV-cache state as in every other pass."""
    client = make_client()
    try:
        ask(client, questions[-1])
        one = [_timed_ask(ask, client, q) for q in questions]
    finally:
        getattr(client, "close", lambda: None)()
    many = _concurrently(clients, _cycle(questions, 2 * len(questions)), ask, make_client)
    return one, many


def measure_asks(pipeline, settings, questions: list[str], clients: int) -> dict:
    """End-to-end ask latency, 1 client then `clients` at once: over HTTP (/ask) when the API package is
    importable, else pipeline.ask from threads. HTTP's own cost is each response's client-side time minus the
    server-side `timings.total_ms` of the same answer, so machine-load drift does not leak into it."""
    try:
        import httpx

        server = _Server(settings, pipeline, clients)
    except ImportError:
        server = None
    if server is None:
        via = "pipeline.ask, concurrent calls from threads (the HTTP API was not importable)"
        one, many = _asks(lambda _, q: pipeline.ask(q).timings["total_ms"], object, questions, clients)
    else:
        via = "HTTP POST /ask (rag.api.create_app under uvicorn in a thread, httpx clients)"
        with server as base:

            def post(client, question: str) -> float:
                response = client.post("/ask", json={"question": question})
                response.raise_for_status()
                return response.json()["timings"]["total_ms"]

            one, many = _asks(post, lambda: httpx.Client(base_url=base, timeout=300), questions, clients)
    client_one, server_one = [c for c, _ in one], [s for _, s in one]
    return {
        "ask_via": via,
        "ask_n": len(one),
        "clients": clients,
        "ask_p50_ms": round(percentile(client_one, 50), 1),
        "ask_p95_ms": round(percentile(client_one, 95), 1),
        "ask_p50_ms_concurrent": round(percentile([c for c, _ in many], 50), 1),
        "ask_p95_ms_concurrent": round(percentile([c for c, _ in many], 95), 1),
        "ask_pipeline_p50_ms": round(percentile(server_one, 50), 1),
        "http_overhead_ms": round(percentile([c - s for c, s in one], 50), 1),
    }


# ================================================================================================
# The run
# ================================================================================================


def _load() -> float:
    """1-minute load average: other work on the machine slows every measurement, so the report records it."""
    return round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else math.nan


def _startup(settings, plan: Plan, questions: list[str]) -> tuple[object, dict]:
    progress("(d) timing `rag --help`")
    results = measure_help(plan.help_runs)
    progress("cold start in a child process (load + one answer)")
    results.update(measure_cold_start(settings, questions[0]))
    progress("(c) loading the embedder")
    embedder, emb = measure_embedder(settings, questions)
    results.update(emb)
    return embedder, results


def _answering(settings, embedder, plan: Plan, questions: list[str], loads: dict) -> dict:
    """Everything that needs the model, on the seed index; the model is released at the end."""
    from rag.pipeline import Pipeline

    progress("loading the pipeline on the seed index")
    pipeline = Pipeline.load(settings, embedder=embedder, with_generator=True)
    seed_times = time_searches(pipeline, questions, plan.retrieval_queries)
    results = {
        "model": pipeline.generator.model_name,
        "mode": pipeline.answerer.mode,
        "seed_chunks": len(pipeline.index),
        "embedder_shared": pipeline.answerer.embedder is pipeline.embedder,
        "index_size_mb_seed": _dir_mb(settings.index_dir),
        "retrieve_p50_ms_seed": round(percentile(seed_times, 50), 2),
        "retrieve_p95_ms_seed": round(percentile(seed_times, 95), 2),
    }
    prompts = build_prompts(pipeline, questions, plan.questions)
    if not prompts:
        raise RuntimeError("no question reached the model; check the index and the questions file")
    progress(f"time to first token, tokens/s, overhead vs raw llama-cpp-python ({len(prompts)} questions x 6 passes)")
    results.update(measure_generation(pipeline, prompts))
    loads["generation passes done"] = _load()
    progress("(a) KV-cache reuse, (b) prompt budget, llama.cpp threads")
    results.update(measure_prompt_work(pipeline, prompts))
    text = "\n".join(m["content"] for m in prompts[0].messages)
    results.update(measure_threads(pipeline.generator.llama, pipeline.generator.llama.tokenize(text.encode())))
    progress(f"/ask latency, 1 and {plan.concurrent_clients} concurrent clients")
    results.update(measure_asks(pipeline, settings, questions[: plan.questions], plan.concurrent_clients))
    loads["asks done"] = _load()
    results["bench_rss_mb_after_asks"] = _rss_mb()
    return results


def _scale(settings, embedder, plan: Plan, questions: list[str]) -> dict:
    """Ingest rate on a synthetic corpus, then retrieval at the plan's sizes (temporary folders, removed after)."""
    import tempfile

    from rag.pipeline import Pipeline

    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        workdir = Path(tmp)
        corpus = SyntheticCorpus(seed_sentences(settings))
        progress(f"ingest: embedding about {plan.ingest_chunks:,} synthetic chunks")
        real_index, results = measure_ingest(settings, embedder, corpus, plan.ingest_chunks, workdir)
        times = time_searches(Pipeline(settings, embedder, real_index), questions, plan.retrieval_queries)
        results["retrieve_p50_ms_synthetic"] = round(percentile(times, 50), 2)
        results.update(measure_scaling(settings, embedder, real_index, corpus, plan, questions, workdir))
    results["size_a"], results["size_b"] = plan.scale_sizes
    results["scale_how"] = (
        f"the {results['synthetic_chunks']:,} really embedded synthetic chunks, plus synthetic chunk texts "
        "(for BM25) paired with noisy copies of the real vectors (cosine ~0.9); query embedding is real"
    )
    return results


def ensure_index(settings) -> None:
    """The cold-start child loads the seed index from settings.index_dir: build it first on a fresh clone."""
    from rag.index import IndexError_, VectorIndex

    try:
        VectorIndex.load(settings.index_dir)
    except IndexError_ as exc:
        from rag.pipeline import load_embedder, run_ingest

        progress(f"building the seed index first ({exc})")
        run_ingest(settings, load_embedder(settings))


def run_bench(settings, plan: Plan, quick: bool = False) -> dict:
    """Every measurement in order; returns the flat results dict the report and --json are made from."""
    t_start = time.perf_counter()
    questions = load_question_texts()
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} CPUs", "quick": quick}
    loads, stages = {"start": _load()}, {}
    ensure_index(settings)
    t0 = time.perf_counter()
    embedder, startup = _startup(settings, plan, questions)
    results.update(startup)
    loads["startup done"], stages["startup"] = _load(), round(time.perf_counter() - t0)
    t0 = time.perf_counter()
    results.update(_answering(settings, embedder, plan, questions, loads))
    stages["answering"] = round(time.perf_counter() - t0)
    t0 = time.perf_counter()
    results.update(_scale(settings, embedder, plan, questions))
    loads["end"], stages["ingest and scale"] = _load(), round(time.perf_counter() - t0)
    results["load_average"], results["stage_seconds"] = loads, stages
    results["bench_peak_rss_mb"] = _rss_mb()
    results["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    results["notes"] = findings(results)
    return results


def findings(r: dict) -> list[str]:
    """Plain-language reading of the numbers: which targets are missed and what the measurements say limits them."""
    notes = []
    met = check_targets(r)
    steps = _fmt(r.get("pipeline_steps_ms", {}))
    if not met.get("ask_p50_ms", True) or not met.get("ask_p95_ms", True):
        notes.append(
            f"/ask over target. Raw llama.cpp alone takes {_fmt(r.get('raw_generate_p50_ms'))} ms median per answer: "
            f"prompt eval {_fmt(r.get('raw_prompt_eval_p50_ms'))} ms ({_fmt(r.get('raw_prompt_eval_tokens_p50'))} "
            f"new tokens after the reused prefix) + decoding {_fmt(r.get('raw_decode_p50_ms'))} ms "
            f"({_fmt(r.get('raw_decode_ms_per_token'))} ms/token) + sampling/grammar/Python "
            f"{_fmt(r.get('raw_other_p50_ms'))} ms. The pipeline's own steps (median ms): {steps}."
        )
    if not met.get("overhead_ratio", True):
        notes.append(
            f"overhead_ratio {_fmt(r['overhead_ratio'])} over 1.10; the generate-only ratio is "
            f"{_fmt(r.get('generate_overhead_ratio'))}, so the excess is the pipeline's work around the model "
            f"(median ms: {steps})."
        )
    if not met.get("retrieve_p50_ms_10k", True):
        notes.append(f"retrieval at {_fmt(r.get('size_a'))} chunks over 20 ms; step medians (ms): "
                     f"{_fmt(r.get('retrieve_steps_ms_10k', {}))}.")  # fmt: skip
    if not met.get("cold_start_s", True):
        notes.append(f"cold start over 15 s; phases in the child (s): {_fmt(r.get('cold_start_phases_s', {}))}.")
    one, many = r.get("decode_ms_per_token_1t"), r.get("decode_ms_per_token_all")
    if one and many:
        notes.append(f"llama.cpp decoding: {_fmt(one)} ms/token on 1 thread vs {_fmt(many)} on {r.get('cpus')} "
                     f"(the pipeline runs {r.get('llama_threads')}).")  # fmt: skip
    loads = r.get("load_average", {})
    if loads and max(loads.values()) > 0.5:
        notes.append(f"other work was running (1-minute load average {_fmt(loads)}, {os.cpu_count()} CPUs): every "
                     "timing here is an upper bound, and phases run at different loads compare loosely.")  # fmt: skip
    return notes


def write_report(results: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(results), "utf-8")


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object with every measurement")
    parser.add_argument("--quick", action="store_true",
                        help="a few questions and small sizes, a minute or two (the 100k retrieval figure is taken "
                             "at 20k chunks; size_b says so)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"markdown report path (default {DEFAULT_OUT})")


def run_command(args) -> int:
    from rag.cli import _settings

    settings = _settings(args)
    results = run_bench(settings, QUICK if args.quick else FULL, quick=args.quick)
    write_report(results, args.out)
    progress(f"wrote {args.out} ({results['bench_seconds']} s)")
    if args.json:
        print(json.dumps(json_report(results), ensure_ascii=False), flush=True)
    else:
        print(render_markdown(results))
    return 0
