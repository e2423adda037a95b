"""`rag bench --concurrency N` (rag_eval/bench/concurrency.py): the clients, the figures, the server processes and
the report, with fakes (no model). No test asserts on speed."""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from rag.settings import Settings
from rag_eval.bench import command, report
from rag_eval.bench import concurrency as conc
from rag_eval.bench.server import _Server

from .support import fakes
from .test_api import api_pipeline

QUESTIONS = ["q0?", "q1?", "q2?"]


def sleeper(seconds: float, lock: threading.Lock | None = None, status=lambda q: "ok"):
    """An ask that takes `seconds`; with `lock`, one at a time (a backend that serialises)."""

    def ask(_client, question: str) -> str:
        if lock is None:
            time.sleep(seconds)
        else:
            with lock:
                time.sleep(seconds)
        return status(question)

    return ask


def test_clients_run_at_once_each_with_its_own_client_and_every_request_is_counted():
    made = []

    def make_client():
        made.append(object())
        return made[-1]

    run = conc.run_clients(sleeper(0.05), make_client, [QUESTIONS] * 4)
    assert len(made) == 4 and len(run.outcomes) == 12 and run.max_in_flight == 4
    assert all(o.status == "ok" and o.ms >= 45 for o in run.outcomes)
    serial = conc.run_clients(sleeper(0.02, threading.Lock()), object, [QUESTIONS[:2]] * 3)
    assert serial.wall_s >= 6 * 0.02 and len(serial.outcomes) == 6


def test_summary_counts_answers_503s_and_errors_and_times_only_answers():
    run = conc.Run(
        [conc.Outcome(100.0, "ok"), conc.Outcome(300.0, "ok"), conc.Outcome(2.0, "busy"),
         conc.Outcome(5.0, "error", "ModelError: cut short")],
        wall_s=2.0,
        max_in_flight=4,
    )  # fmt: skip
    summary = conc.summarize(run)
    assert summary["requests"] == 4 and summary["answered"] == 2 and summary["busy_503"] == 1
    assert summary["errors"] == 1 and summary["first_error"] == "ModelError: cut short"
    assert summary["p50_ms"] == 200.0 and summary["answers_per_s"] == 1.0 and summary["max_in_flight"] == 4


def test_errors_and_busy_answers_are_outcomes_not_the_end_of_the_run():
    def ask(_client, question):
        if question == "q1?":
            raise RuntimeError("HTTP 500: boom")
        return "busy" if question == "q2?" else "ok"

    summary = conc.summarize(conc.run_clients(ask, object, [QUESTIONS, QUESTIONS]))
    assert summary["requests"] == 6 and summary["answered"] + summary["busy_503"] + summary["errors"] == 6
    assert summary["errors"] == 2 and summary["first_error"] == "RuntimeError: HTTP 500: boom"


def test_a_backend_row_warms_up_then_asks_the_same_questions_alone_and_shared():
    generator = conc.CountingGenerator(fakes.ScriptedGenerator(lambda *_: "reply"))
    asked: list[tuple[str, str]] = []
    questions = [f"q{i}?" for i in range(6)]

    def ask(_client, question: str) -> str:
        asked.append((threading.current_thread().name, question))
        if question != "q0?":  # q0 is answered without the model (a refusal before it, the reader alone)
            list(generator.generate([{"role": "user", "content": f"Question: {question}"}], None, 8))
        time.sleep(0.02)
        return "ok"

    row = conc.measure_backend("fake", ask, object, questions, clients=3, counter=generator, how="threads")
    assert row["backend"] == "fake" and row["clients"] == 3 and row["answered"] == 6 and row["how"] == "threads"
    assert [q for _, q in asked[:12]] == questions * 2  # warm-up, then the baseline: one client, in order
    shared = {}
    for thread, question in asked[12:]:
        shared.setdefault(thread, []).append(question)
    assert sorted(shared.values()) == [["q0?", "q3?"], ["q1?", "q4?"], ["q2?", "q5?"]]
    assert row["model_calls_per_answer"] == round(5 / 6, 2)
    assert row["single_answers_per_s"] > 0 and row["speedup"] > 0 and row["single_p50_ms"] >= 20
    assert generator.model_name == "scripted-fake.gguf"  # the rest is the wrapped generator's


def test_in_process_clients_go_through_the_api_queue_and_get_503_beyond_it():
    """The same route and admission /ask uses: 4 clients, 1 running + 1 waiting, so some are told busy."""
    pipeline = api_pipeline(delay=0.2)
    with _Server(Settings(queue_size=1), pipeline, 1) as base:
        import httpx

        run = conc.run_clients(conc.http_ask, lambda: httpx.Client(base_url=base, timeout=30), [QUESTIONS[:2]] * 4)
    summary = conc.summarize(run)
    assert summary["errors"] == 0 and summary["answered"] >= 2 and summary["busy_503"] >= 1, summary
    assert summary["answered"] + summary["busy_503"] == 8


def test_pipeline_ask_counts_an_answer_and_raises_its_errors():
    assert conc.pipeline_ask(api_pipeline())(None, "q?") == "ok"
    with pytest.raises(RuntimeError):
        conc.pipeline_ask(api_pipeline(fail=RuntimeError("down")))(None, "q?")


# --- generation servers -----------------------------------------------------------------------------------------


def test_server_commands_say_what_the_readme_says():
    command = conc.llama_cpp_server_command("m.gguf", 8123, 2, 2048)
    assert command[:3] == [sys.executable, "-m", "llama_cpp.server"]
    joined = " ".join(command)
    assert "--interrupt_requests false" in joined and "--port 8123" in joined and "--n_threads 2" in joined
    joined = " ".join(conc.llama_server_command("/bin/llama-server", "m.gguf", 8124, 2, 2048, 4))
    assert "--parallel 4" in joined and "-c 8192" in joined and "-t 2" in joined and "--host 127.0.0.1" in joined


def test_llama_server_is_found_by_flag_environment_or_path_and_never_built(tmp_path, monkeypatch):
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv(conc.LLAMA_SERVER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert conc.find_llama_server() is None
    assert conc.find_llama_server(str(binary)) == str(binary)
    with pytest.raises(SystemExit, match="not found"):
        conc.find_llama_server(str(tmp_path / "nope"))
    monkeypatch.setenv(conc.LLAMA_SERVER_ENV, str(binary))
    assert conc.find_llama_server() == str(binary)
    monkeypatch.delenv(conc.LLAMA_SERVER_ENV)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert conc.find_llama_server() == str(binary)


def test_a_server_process_is_started_waited_for_and_stopped(tmp_path):
    import httpx

    port = conc.free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    server = conc.ServerProcess(command, port, "/", timeout_s=30)
    with server as url:
        assert httpx.get(url + "/", timeout=5).status_code == 200
    assert server.process.poll() is not None and not server.log.exists()


def test_a_server_that_dies_is_an_error_with_its_output():
    command = [sys.executable, "-c", "import sys; print('no model here'); sys.exit(3)"]
    server = conc.ServerProcess(command, conc.free_port(), "/", timeout_s=30)
    with pytest.raises(RuntimeError, match="exited with 3: no model here"):
        server.__enter__()


def test_the_model_is_made_to_answer_when_the_reader_alone_would():
    assert conc.model_bound(Settings()).reader == "off"
    custom = Settings(reader="off")
    assert conc.model_bound(custom) is custom
    several = Settings(reader_candidates=3)  # the model chooses among the reader's spans: it is called
    assert conc.model_bound(several) is several


# --- command line and report ---------------------------------------------------------------------------------


def test_concurrency_arguments():
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--concurrency", "4", "--llama-server", "/opt/llama-server", "--json"])
    assert args.concurrency == 4 and args.llama_server == "/opt/llama-server" and args.json
    assert parser.parse_args([]).concurrency is None


def concurrency_results() -> dict:
    row = {"backend": "in-process", "clients": 4, "requests": 12, "answered": 11, "busy_503": 1, "errors": 0,
           "p50_ms": 2400.0, "p95_ms": 4100.0, "answers_per_s": 0.41, "single_p50_ms": 950.0,
           "single_answers_per_s": 1.02, "speedup": 0.4, "model_calls_per_answer": 0.9, "how": "POST /ask"}  # fmt: skip
    failing = dict(row, backend="llama-cpp-python server", busy_503=0, errors=2, first_error="ModelError: cut",
                   p95_ms=float("nan"))  # fmt: skip
    return {"date": "2026-12-07 00:00", "machine": "2 CPUs", "concurrency_clients": 4, "queue_size": 4,
            "llama_threads": 2, "concurrency": [row, failing],
            "llama_server": "not measured: no llama-server"}  # fmt: skip


def test_report_has_a_row_per_backend_and_notes_for_503s_and_errors():
    results = concurrency_results()
    results["notes"] = report.findings(results)
    text = report.render_markdown(results)
    assert "## Concurrent clients (4 at once)" in text and report.CONCURRENCY_HEAD in text
    assert (
        "| in-process | 4 | 11 / 12 | 1 | 0 | 2,400.0 | 4,100.0 | 0.41 | 950.0 | 1.02 | 0.4 | 0.9 | POST /ask |" in text
    )
    assert "| llama-cpp-python server |" in text and "| n/a |" in text
    assert "llama-server: not measured: no llama-server." in text
    assert "2 of 12 concurrent requests failed; the first: ModelError: cut" in text
    assert "1 requests got 503" in text
    payload = report.json_report(results)
    json.dumps(payload, allow_nan=False)
    assert payload["concurrency"][1]["p95_ms"] is None and payload["concurrency"][0]["answers_per_s"] == 0.41


def test_reports_without_concurrency_rows_have_no_such_section():
    assert "Concurrent clients" not in report.render_markdown({"date": "d"})


@pytest.mark.slow
@pytest.mark.timeout(600)  # the real models, and llama-cpp-python's server in a child process
def test_quick_concurrency_bench_end_to_end(tmp_path):
    from .conftest import ROOT

    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "bench", "--concurrency", "2", "--quick", "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = {row["backend"]: row for row in results["concurrency"]}
    assert {"in-process, as configured", "in-process", "llama-cpp-python server"} <= set(rows)
    for row in rows.values():
        assert row["answered"] == row["requests"] == 2 and row["errors"] == 0, row
    assert rows["in-process"]["model_calls_per_answer"] > 0
    assert "## Concurrent clients (2 at once)" in out.read_text("utf-8")


# --- the whole run, with fake pipelines and a stand-in server ------------------------------------------------


class FakeGenerator:
    model_name = "fake.gguf"
    is_small = True

    def __init__(self, *_):
        self.closed = False

    def generate(self, messages, grammar, max_tokens):
        yield "x"

    def close(self):
        self.closed = True


class LoadedPipeline(fakes.FakePipeline):
    """Pipeline's constructor and `load`; the model is called only when the settings say RAG_READER=off."""

    def __init__(self, settings=None, embedder=None, index=None, generator=None, reader=None):
        super().__init__(answer=lambda q: fakes.refusal(q), info={"mode": "extractive", "model": "fake.gguf"})
        self.settings, self.embedder, self.index, self.generator, self.reader = (
            settings, embedder, index, generator, reader,
        )  # fmt: skip

    @classmethod
    def load(cls, settings, with_generator=False):
        return cls(settings, "embedder", "index", FakeGenerator(), "reader")

    def _model(self):
        if self.settings.reader == "off":
            list(self.generator.generate([], None, 4))

    def ask_stream(self, question, k=None):
        self._model()
        yield from super().ask_stream(question, k)

    def ask(self, question, k=None):
        self._model()
        return super().ask(question, k)


@pytest.fixture
def fake_backends(monkeypatch, tmp_path):
    import rag.generation
    import rag.generation_remote
    import rag.pipeline

    monkeypatch.setattr(rag.pipeline, "Pipeline", LoadedPipeline)
    monkeypatch.setattr(rag.generation_remote, "RemoteGenerator", FakeGenerator)
    monkeypatch.setattr(rag.generation, "resolve_model_path", lambda _: tmp_path / "m.gguf")
    monkeypatch.delenv(conc.LLAMA_SERVER_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    (tmp_path / "www" / "v1").mkdir(parents=True)
    (tmp_path / "www" / "v1" / "models").write_text("{}")  # what the readiness probe asks for

    def serve(model, port, threads, n_ctx):  # stands in for llama-cpp-python's server
        return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                str(tmp_path / "www")]  # fmt: skip

    monkeypatch.setattr(conc, "llama_cpp_server_command", serve)
    return monkeypatch


def test_every_backend_that_can_run_has_a_row_and_the_model_is_made_to_answer(fake_backends):
    results = conc.measure_concurrency(Settings(), ["q0?", "q1?", "q2?"], clients=2, per_client=1)
    rows = {row["backend"]: row for row in results["concurrency"]}
    assert list(rows) == ["in-process, as configured", "in-process", "llama-cpp-python server"]
    assert all(row["answered"] == row["requests"] == 2 and row["errors"] == 0 for row in rows.values()), rows
    assert rows["in-process, as configured"]["model_calls_per_answer"] == 0  # the reader answers alone
    assert rows["in-process"]["model_calls_per_answer"] == rows["llama-cpp-python server"]["model_calls_per_answer"]
    assert rows["in-process"]["model_calls_per_answer"] == 1
    assert results["llama_server"].startswith("not measured") and results["concurrency_clients"] == 2
    assert "--interrupt_requests false" in rows["llama-cpp-python server"]["how"]


def test_a_backend_that_does_not_start_is_a_row_saying_why_and_the_others_still_count(fake_backends):
    fake_backends.setattr(conc, "llama_cpp_server_command", lambda *_: [sys.executable, "-c", "print('no sse')"])
    results = conc.measure_concurrency(Settings(reader="off"), ["q0?"], clients=1, per_client=1)
    rows = {row["backend"]: row for row in results["concurrency"]}
    assert list(rows) == ["in-process, as configured", "llama-cpp-python server"]  # reader off: one in-process row
    assert rows["in-process, as configured"]["answered"] == 1
    assert (
        rows["llama-cpp-python server"]["how"].startswith("not measured:")
        and "no sse" in rows["llama-cpp-python server"]["how"]
    )
    text = report.render_markdown(results)
    assert "| llama-cpp-python server | 1 | n/a / n/a |" in text


def test_a_wrong_llama_server_path_fails_before_anything_is_measured(fake_backends, tmp_path):
    with pytest.raises(SystemExit, match="not found"):
        conc.measure_concurrency(Settings(), ["q0?"], clients=1, per_client=1, llama_server=str(tmp_path / "nope"))


def test_the_llama_server_build_script_names_what_is_missing(tmp_path):
    """The build itself takes minutes (measured in the script's header); here: it parses, and without
    llama-cpp-python for the given interpreter it stops at once with a message saying what to set."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "rag_eval" / "bench" / "build_llama_server.sh"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    out = subprocess.run(
        ["sh", str(script), str(tmp_path / "work")], env={"PATH": "/usr/bin:/bin", "PYTHON": "false"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 2 and "llama-cpp-python is not installed" in out.stderr and "PYTHON=" in out.stderr
    assert not (tmp_path / "work").exists()  # nothing downloaded or written
