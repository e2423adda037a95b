"""Start-up costs: `rag --help` in a fresh interpreter, a cold start in a child process, `rag serve` to /health
"ready", the embedder load.

    python -m rag_eval.bench.startup [--runs 3]   # the two cold starts only, medians as JSON (index: RAG_INDEX_DIR)
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time

from rag_eval.bench.clock import cycle, timed


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
    return {
        "help_s": round(statistics.median(times), 3),
        "help_top_imports": ", ".join(f"{name} {ms:.0f} ms" for name, ms in top),
    }


def top_imports(importtime_stderr: str, n: int = 3) -> list[tuple[str, float]]:
    """The `n` slowest top-level imports (name, cumulative ms) from `python -X importtime` output."""
    found = []
    for line in importtime_stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m and len(m.group(3)) <= 1:  # one space after "|" marks a top-level import
            found.append((m.group(4), int(m.group(2)) / 1000))
    return sorted(found, key=lambda x: -x[1])[:n]


_COLD_CHILD = r"""
import json, resource, sys, time
marks = {"start": time.perf_counter()}
from rag.pipeline import Pipeline, load_embedder, load_generator, load_index, load_reader
from rag.settings import Settings
settings = Settings(**json.loads(sys.argv[1]))
marks["imports"] = time.perf_counter()
embedder = load_embedder(settings)
marks["embedder"] = time.perf_counter()
index = load_index(settings, embedder)
marks["index"] = time.perf_counter()
generator = load_generator(settings)
marks["model"] = time.perf_counter()
reader = load_reader(settings, generator)
marks["reader"] = time.perf_counter()
pipeline = Pipeline(settings, embedder, index, generator, reader)  # what Pipeline.load does, one phase at a time
marks["retriever"] = time.perf_counter()
pipeline.warm()  # as the server does before /health says ready
marks["warm"] = time.perf_counter()
print("ready", flush=True)
answer = pipeline.ask(sys.argv[2])
names = list(marks)
phases = {b: round(marks[b] - marks[a], 2) for a, b in zip(names, names[1:])}
print(json.dumps({"phases_s": phases, "answer_s": time.perf_counter() - marks["warm"],
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
"""


def measure_cold_start(settings, question: str) -> dict:
    """A fresh process loads the pipeline (embedder, index, GGUF, reader, BM25) and answers once: what a user waits for.

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


def measure_serve_ready(settings, runs: int = 3) -> dict:
    """`rag serve` as a user starts it, `runs` times: spawn to the port answering, and to /health "ready" (medians).

    The child gets `settings` as RAG_* variables (those set explicitly; the rest it reads from this environment)
    and a free port; it is stopped once ready."""
    import os
    import socket
    import subprocess
    import urllib.error
    import urllib.request

    env = dict(os.environ)
    for name in settings.model_fields_set - {"api_token", "port"}:
        value = getattr(settings, name)
        if value is not None:
            env["RAG_" + name.upper()] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    listening, ready = [], []
    for _ in range(runs):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        heard = None
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                        status = json.loads(r.read()).get("status")
                except urllib.error.HTTPError as exc:  # 503 while loading
                    status = json.loads(exc.read()).get("status")
                except OSError:
                    status = None
                now = time.perf_counter() - t0
                if status is not None and heard is None:
                    heard = now
                if status == "ready":
                    break
                if status == "error" or child.poll() is not None or now > 300:
                    raise RuntimeError(f"rag serve did not become ready (status {status!r}, exit {child.poll()})")
                time.sleep(0.02)
        finally:
            child.terminate()
            child.communicate(timeout=30)
        listening.append(heard)
        ready.append(now)
    return {
        "serve_ready_s": round(statistics.median(ready), 2),
        "serve_listening_s": round(statistics.median(listening), 2),
        "serve_ready_runs_s": [round(x, 2) for x in ready],
    }


def measure_embedder(settings, queries: list[str]) -> tuple[object, dict]:
    """(c) Load the embedder once; compare its first call (lazy initialisation) with warmed calls."""
    from rag.pipeline import load_embedder

    t0 = time.perf_counter()
    embedder = load_embedder(settings)
    load_s = time.perf_counter() - t0
    _, first = timed(embedder.embed, [queries[0]])
    warm = [timed(embedder.embed, [q])[1] for q in cycle(queries, 20)]
    return embedder, {
        "embedder": embedder.id,
        "embedder_load_s": round(load_s, 2),
        "embed_first_ms": round(first, 1),
        "embed_warm_p50_ms": round(statistics.median(warm), 2),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    from rag.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m rag_eval.bench.startup", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rag serve starts to time (median reported)")
    parser.add_argument("--question", default="When did Brad Smith meet Wang Wentao?", help="the cold child's question")
    args = parser.parse_args(argv)
    settings = Settings()
    results = measure_serve_ready(settings, args.runs)
    results.update(measure_cold_start(settings, args.question))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
