"""/ask latency over the real HTTP API (rag.api under uvicorn in a thread), one client and several at once, and
where the server's time went: each answer's own `timings.steps_ms` (every step besides generation, issue 24
part 3), summarised per step over the one-client answers so the report can show which step costs what.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rag_eval.bench.clock import cycle, ms_since
from rag_eval.stats import percentile

Ask = Callable[[object, str], dict]  # (client, question) -> the server's own `timings` of that answer

STEP_HOW = {"generate": "the model's generation alone (0 when the reader's span is the reply)",
            "total": "the whole answer, server side (timings.total_ms)"}  # fmt: skip


def _timed_ask(ask: Ask, client, question: str) -> tuple[float, dict]:
    """(client-side ms, the server's timings) of one request."""
    t0 = time.perf_counter()
    timings = ask(client, question)
    return ms_since(t0), timings


def answer_steps(timings: list[dict]) -> list[dict]:
    """One row per answer step (in the order the answers list them, then generation and the total): its p50 and
    p95 ms over the answers that ran it, how many did, and what it covers (rag/answering.py `STEPS`)."""
    from rag.answering import STEPS

    order: dict[str, None] = {}
    for t in timings:
        order.update(dict.fromkeys(t.get("steps_ms") or {}))
    columns = {name: [t["steps_ms"][name] for t in timings if name in (t.get("steps_ms") or {})] for name in order}
    columns["generate"] = [t["generate_ms"] for t in timings if "generate_ms" in t]
    columns["total"] = [t["total_ms"] for t in timings if "total_ms" in t]
    how = {**STEPS, **STEP_HOW}
    return [
        {
            "step": name,
            "p50_ms": round(percentile(values, 50), 1),
            "p95_ms": round(percentile(values, 95), 1),
            "answers": len(values),
            "what": how.get(name, ""),
        }
        for name, values in columns.items()
        if values
    ]


def _concurrently(clients: int, requests: list[str], ask: Ask, make_client) -> list[tuple[float, dict]]:
    """(client ms, server timings) of each request when `clients` threads share the list, each with its own client."""
    import threading

    results: list[tuple[float, dict]] = []
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
    many = _concurrently(clients, cycle(questions, 2 * len(questions)), ask, make_client)
    return one, many


def measure_asks(pipeline, settings, questions: list[str], clients: int) -> dict:
    """End-to-end ask latency, 1 client then `clients` at once: over HTTP (/ask) when the API package is
    importable, else pipeline.ask from threads. HTTP's own cost is each response's client-side time minus the
    server-side `timings.total_ms` of the same answer, so machine-load drift does not leak into it. `answer_steps`:
    the one-client answers' own step timings, per step (`answer_steps`)."""
    try:
        import httpx

        server = _Server(settings, pipeline, clients)
    except ImportError:
        server = None
    if server is None:
        via = "pipeline.ask, concurrent calls from threads (the HTTP API was not importable)"
        one, many = _asks(lambda _, q: pipeline.ask(q).timings.model_dump(), object, questions, clients)
    else:
        via = "HTTP POST /ask (rag.api.create_app under uvicorn in a thread, httpx clients)"
        with server as base:

            def post(client, question: str) -> dict:
                response = client.post("/ask", json={"question": question})
                response.raise_for_status()
                return response.json()["timings"]

            one, many = _asks(post, lambda: httpx.Client(base_url=base, timeout=300), questions, clients)
    client_one, server_one = [c for c, _ in one], [t["total_ms"] for _, t in one]
    return {
        "ask_via": via,
        "ask_n": len(one),
        "clients": clients,
        "ask_p50_ms": round(percentile(client_one, 50), 1),
        "ask_p95_ms": round(percentile(client_one, 95), 1),
        "ask_p50_ms_concurrent": round(percentile([c for c, _ in many], 50), 1),
        "ask_p95_ms_concurrent": round(percentile([c for c, _ in many], 95), 1),
        "ask_pipeline_p50_ms": round(percentile(server_one, 50), 1),
        "http_overhead_ms": round(percentile([c - t["total_ms"] for c, t in one], 50), 1),
        "answer_steps": answer_steps([t for _, t in one]),
    }
