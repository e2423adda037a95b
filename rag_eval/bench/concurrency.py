"""`rag bench --concurrency N`: N clients at once against each generation backend, and what each does with them.

Why: one `rag serve` runs one llama.cpp context, so its answers queue (rag/api/service.py: first come, first
served, RAG_QUEUE_SIZE waiting, 503 + Retry-After beyond); a generation server behind RAG_LLM_URL may or may
not answer several at once (rag/generation_remote.py). Which one, and what it buys, is only known by measuring:

    in-process, as configured   POST /ask on the real app (uvicorn in a thread), the settings as given: with the
                                default span reader (RAG_READER=answer, one candidate) the model is not called at
                                all, so this is retrieval + reader behind the admission queue
    in-process                  the same route with the model called for every answer that is not refused before
                                it (RAG_READER=off: the model copies a sentence under the grammar), so the one
                                llama.cpp context is what the clients wait for
    llama-cpp-python server     `python -m llama_cpp.server` (started here on a free port, stopped after, same GGUF,
                                threads and context), `--interrupt_requests false` as the README recommends; the N
                                clients call `pipeline.ask` at once from N threads on a pipeline whose generator is
                                RAG_LLM_URL, as N replicas sharing one server would (a replica's own admission would
                                otherwise let only one through)
    llama-server                llama.cpp's own server with `--parallel N` slots (context N x n_ctx, so each slot has
                                the in-process context), only when a binary is given (--llama-server, or
                                RAG_BENCH_LLAMA_SERVER) or on PATH: it is not built here

Per backend, the same questions three times: to warm up, by one client in a row (the baseline), then shared by N
clients started together (`measure_backend` says why). Reported: p50/p95 of the answered requests'
latency (client side), answers/s over the wall time of the whole concurrent run, 503s, errors (with the first
error's message), model calls per answer (the generator wrapped to count them), and the speed-up of N clients
over one in answers/s.

Figures (2026-12-07, 2 cores, load ~1, 8 questions, 4 clients; `rag bench --concurrency 4`): in-process as
configured (the reader answers, no model call) p50 469 ms vs 131 ms alone, 7.8 answers/s; in-process with the
model answering 2,095 vs 564 ms, 1.7 answers/s; llama-cpp-python's server 4,420 vs 1,575 ms, 0.78 answers/s.
One context serves one answer at a time on every backend measured, so N clients wait ~N times as long and
answers/s stay those of one client (speed-ups 1.02-1.08). llama-server (built by build_llama_server.sh from
the llama-cpp-python 0.3.36 sdist; two runs at 03:16 and 03:21, when the machine was ~1.5x slower): one
client 733/737 ms p50 (in-process with the model 667/827, llama-cpp-python's server 2,120/2,474), four
clients 6,051/5,466 ms, 0.65/0.72 answers/s (llama-cpp-python's 0.40/0.35): four slots on 2 cores did not
raise answers/s over one client (speed-up 0.51/0.58), decoding being compute-bound.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from rag_eval.bench.clock import cycle, ms_since, progress
from rag_eval.stats import percentile

LLAMA_SERVER_ENV = "RAG_BENCH_LLAMA_SERVER"
READY_TIMEOUT_S = 180.0

Ask = Callable[[object, str], str]  # (client, question) -> "ok" or "busy"; raises on an error


class Outcome(NamedTuple):
    ms: float
    status: str  # ok | busy | error
    detail: str = ""


class Run(NamedTuple):
    outcomes: list[Outcome]
    wall_s: float
    max_in_flight: int  # how many requests were outstanding at once, at most (the clients really overlapped)


def run_clients(ask: Ask, make_client: Callable[[], object], assignments: list[list[str]]) -> Run:
    """One thread per list of questions, each with its own client, released together; each asks its questions
    back to back. The wall time runs from the release to the last answer."""
    lock = threading.Lock()
    outcomes: list[Outcome] = []
    in_flight = [0, 0]  # now, max
    start = threading.Barrier(len(assignments) + 1)

    def client_loop(questions: list[str]) -> None:
        client = make_client()
        try:
            start.wait()
            for question in questions:
                with lock:
                    in_flight[0] += 1
                    in_flight[1] = max(in_flight)
                t0 = time.perf_counter()
                try:
                    status = ask(client, question)
                    outcome = Outcome(ms_since(t0), status)
                except Exception as exc:  # noqa: BLE001 - an error is a measured outcome, not the end of the run
                    outcome = Outcome(ms_since(t0), "error", f"{type(exc).__name__}: {exc}"[:300])
                with lock:
                    in_flight[0] -= 1
                    outcomes.append(outcome)
        finally:
            getattr(client, "close", lambda: None)()

    threads = [
        threading.Thread(target=client_loop, args=(questions,), name=f"bench-client-{i}")
        for i, questions in enumerate(assignments)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    return Run(outcomes, time.perf_counter() - t0, in_flight[1])


def summarize(run: Run) -> dict:
    """Latency of the answered requests (p50/p95, ms), answers/s over the run's wall time, 503s and errors."""
    answered = [o.ms for o in run.outcomes if o.status == "ok"]
    errors = [o for o in run.outcomes if o.status == "error"]
    summary = {
        "requests": len(run.outcomes),
        "answered": len(answered),
        "busy_503": sum(o.status == "busy" for o in run.outcomes),
        "errors": len(errors),
        "p50_ms": round(percentile(answered, 50), 1) if answered else float("nan"),
        "p95_ms": round(percentile(answered, 95), 1) if answered else float("nan"),
        "answers_per_s": round(len(answered) / run.wall_s, 3) if run.wall_s > 0 else float("nan"),
        "wall_s": round(run.wall_s, 2),
        "max_in_flight": run.max_in_flight,
    }
    if errors:
        summary["first_error"] = errors[0].detail
    return summary


class CountingGenerator:
    """A generator that counts its `generate` calls (does the model answer, or the reader alone?); everything
    else is the wrapped generator's."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0
        self._lock = threading.Lock()

    def generate(self, messages, grammar, max_tokens):
        with self._lock:
            self.calls += 1
        yield from self.inner.generate(messages, grammar, max_tokens)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def measure_backend(
    backend: str,
    ask: Ask,
    make_client: Callable[[], object],
    questions: list[str],
    clients: int,
    counter: CountingGenerator | None = None,
    how: str = "",
) -> dict:
    """One row of the report. The same `questions` three times: once to warm up (the model's cache, the server's
    first request, the first evaluation of the fixed prompt), then by one client in a row (the baseline), then
    shared round-robin by `clients` started together, so both timed passes ask the same questions in the same state.

    Why the warm pass covers every question: answers differ by question far more than by backend (on this 2-core
    machine under load, 2.6-16 s for one question depending on what the model's cache held, 4 s for the next),
    and a first question refused before the model warms nothing."""
    progress(
        f"concurrency: {backend}: {len(questions)} question(s) x 3: warm-up, 1 client, {clients} client(s) at once"
    )
    summarize(run_clients(ask, make_client, [questions]))
    one = summarize(run_clients(ask, make_client, [questions]))
    calls_before = counter.calls if counter is not None else 0
    many = summarize(run_clients(ask, make_client, [questions[i::clients] for i in range(clients)]))
    row = {"backend": backend, "clients": clients, **many}
    row["single_p50_ms"], row["single_answers_per_s"] = one["p50_ms"], one["answers_per_s"]
    if one["answers_per_s"] and not math.isnan(many["answers_per_s"]):
        row["speedup"] = round(many["answers_per_s"] / one["answers_per_s"], 2)
    if counter is not None and many["answered"]:
        row["model_calls_per_answer"] = round((counter.calls - calls_before) / many["answered"], 2)
    if one["errors"] and "first_error" not in row:
        row["first_error"] = one["first_error"]
    row["how"] = how
    return row


# --- asking: over HTTP (the /ask route), or pipeline.ask from threads -------------------------------------------


def http_ask(client, question: str) -> str:
    """POST /ask: 200 is an answer, 503 is busy (the queue was full), anything else an error."""
    response = client.post("/ask", json={"question": question})
    if response.status_code == 503:
        return "busy"
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    return "ok"


def pipeline_ask(pipeline) -> Ask:
    """`pipeline.ask` from the calling thread (each client thread plays one replica)."""

    def ask(_client, question: str) -> str:
        pipeline.ask(question)
        return "ok"

    return ask


# --- generation servers in their own process ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_cpp_server_command(model: Path, port: int, threads: int, n_ctx: int) -> list[str]:
    """llama-cpp-python's server; `--interrupt_requests false`: its default cuts a running stream short when
    another request arrives, which the remote generator reports as an error (rag/generation_remote.py)."""
    return [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(threads), "--n_ctx", str(n_ctx), "--interrupt_requests", "false",
    ]  # fmt: skip


def llama_server_command(binary: str, model: Path, port: int, threads: int, n_ctx: int, parallel: int) -> list[str]:
    """llama.cpp's server with `parallel` slots; the context is split among them, so it gets `parallel` x n_ctx."""
    return [
        binary, "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-t", str(threads),
        "-c", str(n_ctx * parallel), "--parallel", str(parallel),
    ]  # fmt: skip


def find_llama_server(given: str | None = None) -> str | None:
    """The llama-server binary: the flag, else RAG_BENCH_LLAMA_SERVER, else on PATH; None when there is none."""
    for candidate in (given, os.environ.get(LLAMA_SERVER_ENV), "llama-server"):
        if candidate:
            found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
            if found:
                return found
            if candidate != "llama-server":
                raise SystemExit(f"rag bench: llama-server not found at {candidate}")
    return None


class ServerProcess:
    """A command that serves HTTP on `port`, started on enter and stopped on exit (terminate, then kill). Ready
    when `ready_path` answers 200; its output goes to a log file whose tail is in the error if it dies."""

    def __init__(self, command: list[str], port: int, ready_path: str, timeout_s: float = READY_TIMEOUT_S):
        self.command = command
        self.url = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self.timeout_s = timeout_s
        self.process: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="rag-bench-server-", suffix=".log")[1])

    def __enter__(self) -> str:
        import httpx

        with self.log.open("w") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.command[0]} exited with {self.process.returncode}: {self.tail()}")
                try:
                    if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                        return self.url
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.command[0]} not ready after {self.timeout_s:.0f} s: {self.tail()}")
                time.sleep(0.25)
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def tail(self) -> str:
        return self.log.read_text("utf-8", "replace")[-1500:]

    def stop(self, timeout: float = 30) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)


# --- the run -----------------------------------------------------------------------------------------------------


def model_bound(settings):
    """The settings with the model called for every answer: with RAG_READER=answer and one candidate the reader's
    span is the reply and the generator is never asked, so there would be nothing to compare between backends."""
    if settings.reader == "answer" and settings.reader_candidates == 1:
        return settings.model_copy(update={"reader": "off"})
    return settings


def measure_concurrency(
    settings, questions: list[str], clients: int, per_client: int, llama_server: str | None = None
) -> dict:
    """Every backend that can run here, one row each (see the module docstring), each on the first
    `clients` x `per_client` questions; the pipeline is loaded once and its embedder, index and reader shared."""
    import httpx

    from rag.generation import resolve_model_path
    from rag.generation_remote import RemoteGenerator
    from rag.pipeline import Pipeline
    from rag_eval.bench.server import _Server

    if settings.llm_url:
        raise SystemExit("rag bench --concurrency starts its own generation servers: unset RAG_LLM_URL")
    binary = find_llama_server(llama_server)  # a wrong --llama-server fails now, not after the other backends
    questions = cycle(questions, clients * per_client)
    progress("concurrency: loading the pipeline (embedder, index, model, reader)")
    configured = Pipeline.load(settings, with_generator=True)
    local = CountingGenerator(configured.generator)
    configured = Pipeline(settings, configured.embedder, configured.index, local, configured.reader)
    bound = model_bound(settings)
    model = resolve_model_path(settings.generation)
    threads = settings.n_threads or os.cpu_count() or 1
    rows = []
    results: dict = {
        "model": local.model_name,
        "mode": configured.info()["mode"],
        "concurrency_clients": clients,
        "queue_size": settings.queue_size,
        "llama_threads": threads,
    }

    def over_http(name: str, pipeline, how: str) -> None:
        with _Server(settings, pipeline, settings.queue_size) as base:
            rows.append(
                measure_backend(
                    name, http_ask, lambda: httpx.Client(base_url=base, timeout=600), questions, clients, local, how
                )
            )  # fmt: skip

    queue = f"one llama.cpp context, FIFO queue of RAG_QUEUE_SIZE={settings.queue_size}, 503 beyond"
    over_http("in-process, as configured", configured, f"POST /ask, settings as given; {queue}")
    if bound is not settings:
        over_http(
            "in-process",
            Pipeline(bound, configured.embedder, configured.index, local),
            f"POST /ask, RAG_READER=off (the model answers); {queue}",
        )

    def remote(name: str, command: list[str], port: int, ready_path: str, how: str) -> None:
        server = ServerProcess(command, port, ready_path)
        try:
            url = server.__enter__()
        except RuntimeError as exc:  # the other backends' figures still count: the row says why this one has none
            progress(f"concurrency: {name} did not start: {exc}")
            rows.append({"backend": name, "clients": clients, "how": f"not measured: {str(exc)[:300]}"})
            return
        try:
            remote_settings = bound.model_copy(update={"llm_url": url})
            counter = CountingGenerator(RemoteGenerator(remote_settings.generation))
            pipeline = Pipeline(remote_settings, configured.embedder, configured.index, counter)
            try:
                rows.append(measure_backend(name, pipeline_ask(pipeline), object, questions, clients, counter, how))
            finally:
                counter.inner.close()
        finally:
            server.stop()

    port = free_port()
    remote(
        "llama-cpp-python server",
        llama_cpp_server_command(model, port, threads, settings.n_ctx),
        port,
        "/v1/models",
        f"RAG_LLM_URL, {clients} threads calling pipeline.ask at once (as {clients} replicas), "
        "--interrupt_requests false",
    )
    if binary is None:
        results["llama_server"] = f"not measured: no llama-server on PATH (--llama-server or {LLAMA_SERVER_ENV})"
    else:
        port = free_port()
        remote(
            "llama-server",
            llama_server_command(binary, model, port, threads, settings.n_ctx, clients),
            port,
            "/health",
            f"RAG_LLM_URL, --parallel {clients} (context {clients} x {settings.n_ctx}), {clients} threads calling "
            "pipeline.ask at once",
        )
        results["llama_server"] = binary
    results["concurrency"] = rows
    return results
