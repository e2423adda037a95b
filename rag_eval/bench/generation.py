"""Generation: time to first token, tokens/s, the overhead against raw llama-cpp-python, prompt work, threads.

Every prompt is the one the pipeline itself builds (`Pipeline.prepare`), and llama.cpp is timed with
wall clocks through public llama-cpp-python calls only: a streamed completion gives the time to the first
token (prompt evaluation + one sampling step) and the decoding time after it; a completion with
max_tokens=1 gives prompt processing time.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from typing import NamedTuple

from rag_eval.bench.clock import median_of, ms_since, progress, timed

RESET_PROMPTS = 4  # prompts evaluated from an empty KV cache in the (a)/(b) before-and-after


class Prompt(NamedTuple):
    """One question exactly as the pipeline would send it to llama.cpp, plus the all-passages variant."""

    question: str
    messages: list[dict]
    grammar: str | None
    max_tokens: int
    steps_ms: dict
    full_messages: list[dict] | None  # None when the counterfactual cannot be built (see all_passages_messages)


def build_prompts(pipeline, questions: list[str], n: int) -> list[Prompt]:
    """The first `n` questions that reach the model (refusals before generation never do), as
    `pipeline.prepare` builds them, with the time each of its steps took."""
    prompts = []
    for q in questions:
        prepared = pipeline.prepare(q)
        if prepared.messages is None:
            continue
        full = all_passages_messages(pipeline, q, prepared.passages)
        prompts.append(Prompt(q, prepared.messages, prepared.grammar, prepared.max_tokens, prepared.steps_ms, full))
        if len(prompts) == n:
            break
    return prompts


def all_passages_messages(pipeline, question: str, passages: list) -> list[dict] | None:
    """The counterfactual prompt for the (b) comparison: every retrieved passage shown, no sentence selection.

    Not part of the answer flow, so no hook exists for it: built with the mode strategy's `messages`; None
    (and the two (b) rows left out of the report) when the pipeline has no such strategy.
    """
    from rag.citations import number_passages

    strategy = getattr(getattr(pipeline, "answerer", None), "strategy", None)
    build = getattr(strategy, "messages", None)
    return build(question.strip(), number_passages(passages)) if build else None


def raw_completion(llama, messages: list[dict], grammar: str | None, max_tokens: int) -> dict:
    """Plain llama-cpp-python, as a user of the library would call it: the baseline for the overhead ratio.

    Streamed, so wall clocks split the call: `first_ms` to the first token (prompt evaluation after the
    reused prefix, plus one sampling step), `decode_ms` from the first to the last token.
    """
    from llama_cpp import LlamaGrammar

    compiled = LlamaGrammar.from_string(grammar, verbose=False) if grammar else None
    stamps = []
    t0 = time.perf_counter()
    stream = llama.create_chat_completion(
        messages=messages, grammar=compiled, temperature=0, max_tokens=max_tokens, stream=True
    )
    for chunk in stream:
        if chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.perf_counter())
    ms = ms_since(t0)
    return {
        "ms": ms,
        "first_ms": (stamps[0] - t0) * 1000 if stamps else math.nan,
        "tokens": len(stamps),
        "decode_ms": (stamps[-1] - stamps[0]) * 1000 if stamps else 0.0,
    }


def stream_pass(pipeline, prompts: list[Prompt]) -> list[dict]:
    """pipeline.ask_stream per question: total ms, time to first token, and token arrival times."""
    rows = []
    for p in prompts:
        t0 = time.perf_counter()
        stamps = []
        for event in pipeline.ask_stream(p.question):
            if event.kind == "token":
                stamps.append(time.perf_counter())
        rows.append(
            {
                "total_ms": ms_since(t0),
                "ttft_ms": (stamps[0] - t0) * 1000 if stamps else math.nan,
                "tokens": len(stamps),
                "decode_s": stamps[-1] - stamps[0] if stamps else 0.0,
            }
        )
    return rows


def raw_pass(llama, prompts: list[Prompt]) -> list[dict]:
    return [raw_completion(llama, p.messages, p.grammar, p.max_tokens) for p in prompts]


def generator_pass(generator, prompts: list[Prompt]) -> list[float]:
    def consume(p):
        for _ in generator.generate(p.messages, p.grammar, p.max_tokens):
            pass

    return [timed(consume, p)[1] for p in prompts]


def measure_generation(pipeline, prompts: list[Prompt]) -> dict:
    """TTFT, tokens/s and the overhead ratio against raw llama-cpp-python on the same prompts.

    Passes run A B C C B A (pipeline, raw, generator) so drift in machine load falls on every side alike, and
    each pass visits the questions in the same order, so each call finds the previous question's prompt in the
    KV cache whichever side it is on.
    """
    llama = pipeline.generator.llama
    stream_pass(pipeline, prompts)  # warm-up: every side then starts from the same cache state
    a, b, c = [], [], []
    sides = {
        "pipeline": (a, lambda: stream_pass(pipeline, prompts)),
        "raw": (b, lambda: raw_pass(llama, prompts)),
        "generator": (c, lambda: generator_pass(pipeline.generator, prompts)),
    }
    order = ["pipeline", "raw", "generator", "generator", "raw", "pipeline"]
    for i, side in enumerate(order, 1):
        rows, run = sides[side]
        rows.extend(run())
        progress(f"  pass {i}/{len(order)} ({side}) done")
    totals, raw = [r["total_ms"] for r in a], [r["ms"] for r in b]
    decoded = sum(max(0, r["tokens"] - 1) for r in a)
    decode_s = sum(r["decode_s"] for r in a)
    raw_decoded = sum(max(0, r["tokens"] - 1) for r in b)
    return {
        "ttft_ms": median_of(r["ttft_ms"] for r in a),
        # the pipeline's own decoding speed; when it does not decode (the reader's single candidate is the reply,
        # RAG_READER=answer), llama.cpp's on the same prompts
        "gen_tokens_per_s": round(decoded / decode_s, 1) if decode_s else _raw_tokens_per_s(b),
        "tokens_per_answer_p50": statistics.median(r["tokens"] for r in a),
        "raw_generate_p50_ms": median_of(raw),
        "raw_first_token_p50_ms": median_of(r["first_ms"] for r in b),
        "raw_decode_p50_ms": median_of(r["decode_ms"] for r in b),
        "raw_decode_ms_per_token": round(sum(r["decode_ms"] for r in b) / raw_decoded, 1) if raw_decoded else math.nan,
        "pipeline_generate_p50_ms": median_of(c),
        "pipeline_ask_stream_p50_ms": median_of(totals),
        "overhead_ratio": round(sum(totals) / sum(raw), 3),
        "generate_overhead_ratio": round(sum(c) / sum(raw), 3),
        "pipeline_steps_ms": {
            k: median_of((p.steps_ms.get(k, math.nan) for p in prompts), 2) for k in prompts[0].steps_ms
        },
        "overhead_questions": len(prompts),
    }


def measure_threads(pipeline, text: str, decode_steps: int = 16) -> dict:
    """llama.cpp speed per token at 1 thread and at every core, for prompt evaluation (batched) and decoding.

    Each thread count gets its own `Llama(..., n_threads=n, n_threads_batch=n)` on the same GGUF (the weights
    are memory-mapped, so the copy is cheap), released before the next; the pipeline's model is not touched.
    """
    from llama_cpp import Llama

    llama, settings = pipeline.generator.llama, pipeline.settings
    tokens = llama.tokenize(text.encode())
    cpus = os.cpu_count() or 1
    out = {"llama_threads": f"{llama.n_threads} decode / {llama.n_threads_batch} prompt", "cpus": cpus}
    for n in sorted({1, cpus}):
        probe = Llama(
            model_path=str(pipeline.generator.path),
            n_ctx=settings.n_ctx,
            n_threads=n,
            n_threads_batch=n,
            n_gpu_layers=settings.n_gpu_layers,
            verbose=False,
        )
        try:
            prompt = tokens[: max(1, settings.n_ctx - decode_steps)]
            _, batch_ms = timed(probe.eval, prompt)
            t0 = time.perf_counter()
            for tok in prompt[:decode_steps]:
                probe.eval([tok])
            decode_ms = ms_since(t0) / min(decode_steps, len(prompt))
        finally:
            getattr(probe, "close", lambda: None)()
            del probe
        label = "1t" if n == 1 else "all"
        out[f"prompt_ms_per_token_{label}"] = round(batch_ms / len(prompt), 2)
        out[f"decode_ms_per_token_{label}"] = round(decode_ms, 2)
    return out


def prompt_eval(llama, messages: list[dict], reset: bool) -> tuple[float, int]:
    """(wall ms, prompt tokens) of evaluating a prompt and sampling one token: prompt processing time."""
    if reset:
        llama.reset()
    out, ms = timed(llama.create_chat_completion, messages=messages, temperature=0, max_tokens=1)
    return ms, out["usage"]["prompt_tokens"]


def measure_prompt_work(pipeline, prompts: list[Prompt]) -> dict:
    """(a) KV-cache reuse of the fixed prefix and (b) the prompt budget, each before and after."""
    llama, generator = pipeline.generator.llama, pipeline.generator
    reused = [prompt_eval(llama, p.messages, reset=False) for p in prompts]
    few = prompts[:RESET_PROMPTS]  # a whole prompt from scratch takes seconds: a few are enough
    reset = [prompt_eval(llama, p.messages, reset=True) for p in few]
    prefix = sum(generator.count_tokens(m["content"]) for m in prompts[0].messages[:-1])
    out = {
        "kv_prompt_p50_ms_reused": round(statistics.median(ms for ms, _ in reused[: len(few)]), 1),
        "kv_prompt_p50_ms_reset": round(statistics.median(ms for ms, _ in reset), 1),
        "kv_prefix_tokens": prefix,
        "kv_questions": len(few),
        "prompt_tokens_p50": statistics.median(t for _, t in reused),
        "prompt_tokens_max": max(t for _, t in reused),
        "budget_prompt_tokens_p50": statistics.median(t for _, t in reset),
        "budget_prompt_p50_ms": round(statistics.median(ms for ms, _ in reset), 1),
        "prompt_token_budget": pipeline.settings.prompt_token_budget,
    }
    if all(p.full_messages for p in few):
        full = [prompt_eval(llama, p.full_messages, reset=True) for p in few]
        out["full_prompt_tokens_p50"] = statistics.median(t for _, t in full)
        out["full_prompt_p50_ms"] = round(statistics.median(ms for ms, _ in full), 1)
    return out


def _raw_tokens_per_s(rows: list[dict]) -> float:
    """Decoded tokens per second of the raw llama-cpp-python pass (its first token is the prompt's)."""
    tokens = sum(max(0, r["tokens"] - 1) for r in rows)
    seconds = sum(r["decode_ms"] for r in rows) / 1000
    return round(tokens / seconds, 1) if seconds and tokens else math.nan
