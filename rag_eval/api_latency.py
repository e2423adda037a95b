"""/ask latency of a running `rag serve`, seen from its clients: p50/p95 for one client, then for several.

    .venv/bin/rag serve --port 8000 &
    .venv/bin/python -m rag_eval.api_latency --url http://127.0.0.1:8000 [--requests 20] [--clients 4] [--json]

Questions come from eval/questions.jsonl (or --questions) in order (cycled). One warm-up request is not counted: the
first answer pays for compiling the grammar and filling llama.cpp's prompt cache. With more clients than
`queue_size + 1` some requests get 503 by design; they are counted, not timed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from rag_eval import DEFAULT_QUESTIONS
from rag_eval.questions import question_texts
from rag_eval.stats import percentile


def ask(client: httpx.Client, question: str) -> tuple[int, float, float | None]:
    """(status, client-side seconds, server-side total_ms or None)."""
    t0 = time.perf_counter()
    r = client.post("/ask", json={"question": question})
    elapsed = time.perf_counter() - t0
    server_ms = r.json()["timings"]["total_ms"] if r.status_code == 200 else None
    return r.status_code, elapsed, server_ms


def run_client(url: str, token: str | None, questions: list[str]) -> list[tuple[int, float, float | None]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        return [ask(client, q) for q in questions]


def scenario(url: str, token: str | None, questions: list[str], clients: int, per_client: int) -> dict:
    pool = itertools.cycle(questions)
    batches = [[next(pool) for _ in range(per_client)] for _ in range(clients)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as executor:
        results = [r for batch in executor.map(lambda b: run_client(url, token, b), batches) for r in batch]
    wall = time.perf_counter() - t0
    ok = [r for r in results if r[0] == 200]
    client_s = [r[1] for r in ok]
    server_ms = [r[2] for r in ok]
    return {
        "clients": clients,
        "requests": len(results),
        "status": {str(s): sum(1 for r in results if r[0] == s) for s in sorted({r[0] for r in results})},
        "p50_s": round(percentile(client_s, 50), 3),
        "p95_s": round(percentile(client_s, 95), 3),
        "max_s": round(max(client_s, default=float("nan")), 3),
        "server_p50_ms": round(percentile(server_ms, 50), 1),
        "throughput_per_s": round(len(ok) / wall, 3),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default=os.environ.get("RAG_API_TOKEN"))
    parser.add_argument("--requests", type=int, default=20, help="sequential requests of the one client")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--per-client", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="questions JSONL")
    args = parser.parse_args()

    questions = question_texts(args.questions)
    run_client(args.url, args.token, questions[:1])  # warm-up
    report = {
        "load_average": os.getloadavg()[0],
        "single": scenario(args.url, args.token, questions, 1, args.requests),
        "concurrent": scenario(args.url, args.token, questions, args.clients, args.per_client),
    }
    report["load_average_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(report))
        return
    for name in ("single", "concurrent"):
        r = report[name]
        print(
            f"{name:>10}: {r['clients']} client(s), {r['requests']} requests {r['status']}: p50 {r['p50_s']} s, "
            f"p95 {r['p95_s']} s, max {r['max_s']} s, server p50 {r['server_p50_ms']} ms, "
            f"{r['throughput_per_s']} answers/s"
        )
    print(f"load average (1 min) before/after: {report['load_average']:.2f}/{report['load_average_after']:.2f}")


if __name__ == "__main__":
    main()
