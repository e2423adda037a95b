"""The `rag` command in daily use: one-line errors naming what the user typed, a loading line only on a
terminal, a port in use, plurals, `--help` saying what each command reads and writes, quiet libraries."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys

import pytest

from .conftest import SEED_FILE

RAG = [sys.executable, "-m", "rag.cli"]
COMMANDS = ["ingest", "search", "ask", "eval", "serve", "bench"]


def run(args, tmp_path, **env):
    full_env = {**os.environ, "RAG_SEEDS_DIR": str(tmp_path / "seeds"), "RAG_INDEX_DIR": str(tmp_path / "index"), **env}
    return subprocess.run(
        RAG + args, capture_output=True, text=True, env=full_env, timeout=600, stdin=subprocess.DEVNULL
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "usage:" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daily")
    (tmp / "seeds").mkdir()
    (tmp / "seeds" / SEED_FILE.name).write_bytes(SEED_FILE.read_bytes())
    out = run(["ingest", "-q"], tmp)
    assert out.returncode == 0, out.stderr
    return tmp


# --- errors: one line, naming the flag or the variable ---------------------------------------------------


def test_a_bad_flag_value_is_one_line_naming_the_flag(tmp_path):
    out = run(["ask", "--k", "abc", "x"], tmp_path)
    line = one_line(out.stderr)
    assert out.returncode == 2 and line.startswith("rag ask: --k: invalid int value: 'abc'"), line


def test_a_bad_variable_is_one_line_naming_the_variable(tmp_path):
    out = run(["ask", "x"], tmp_path, RAG_K="abc")
    line = one_line(out.stderr)
    assert out.returncode == 2 and line.startswith("rag ask: invalid settings: RAG_K: ") and "--k" not in line


def test_an_empty_seeds_folder_is_a_clear_error_before_any_model_loads(tmp_path):
    (tmp_path / "seeds").mkdir()
    out = run(["ingest"], tmp_path, RAG_EMBEDDER_PATH=str(tmp_path / "none"))  # loading it would fail otherwise
    assert out.returncode == 2
    assert "no documents in" in out.stderr and "Traceback" not in out.stderr


def test_an_out_of_range_flag_names_the_flag(tmp_path):
    out = run(["search", "x", "--k", "0"], tmp_path)
    line = one_line(out.stderr)
    assert out.returncode == 2 and "--k:" in line and "RAG_K" not in line


@pytest.mark.slow
def test_a_missing_model_file_names_the_flag_or_the_variable_used(built):
    out = run(["ask", "x", "--model-path", "/nope"], built)
    line = one_line(out.stderr)
    assert out.returncode == 2 and line == "rag ask: --model-path /nope: no such file", line
    out = run(["ask", "x"], built, RAG_MODEL_PATH="/nope")
    assert one_line(out.stderr) == "rag ask: RAG_MODEL_PATH /nope: no such file"


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run(["serve", "--port", str(port)], tmp_path)
        line = one_line(out.stderr)
        assert out.returncode == 2, (out.returncode, out.stderr)
        assert (
            line == f"rag serve: port {port} is already in use on 127.0.0.1; stop what is listening there, "
            "or choose another port with --port"
        )
        out = run(["serve"], tmp_path, RAG_PORT=str(port))
        assert out.returncode == 2 and one_line(out.stderr).endswith("choose another port with RAG_PORT")
    assert "Errno" not in out.stderr


# --- help, plurals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_the_command_reads_and_writes(command):
    from rag.cli import build_parser

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]  # noqa: SLF001 - the parser argparse built
    text = " ".join(sub.format_help().split())
    assert "Reads " in text and ("writes" in text.lower()), text
    assert "RAG_INDEX_DIR" in text and "--index-dir" in text


def test_ready_line_counts_in_words(monkeypatch, capsys):
    from rag import server
    from rag.api import service

    class One:
        def info(self):
            return {"model": "m.gguf", "documents": 1, "chunks": 1}

    monkeypatch.setattr(service, "load_pipeline", lambda settings: One())
    server._announcing_loader(None)  # noqa: SLF001 - the loader `rag serve` runs
    assert capsys.readouterr().out.strip() == "rag serve: ready: m.gguf, 1 document, 1 chunk"
    One.info = lambda self: {"model": "m.gguf", "documents": 3, "chunks": 0}
    server._announcing_loader(None)  # noqa: SLF001 - the loader `rag serve` runs
    assert capsys.readouterr().out.strip() == "rag serve: ready: m.gguf, 3 documents, 0 chunks"


def test_counted_words():
    from rag.text import counted
    from ui.documents import documents_html, documents_phrase

    assert [counted(n, "passage") for n in (0, 1, 2)] == ["0 passages", "1 passage", "2 passages"]
    assert documents_phrase(1, ["a.md"]) == "1 document: a.md"
    listed = documents_html([{"id": "a", "name": "a.pdf", "type": "pdf", "pages": 1, "chunks": 1, "status": "ready"}])
    assert "1 page · 1 passage" in listed


# --- the loading line, quiet libraries --------------------------------------------------------------------------


def _run_on_terminal(args, tmp_path, **env) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe); returns (exit code, stdout, terminal bytes)."""
    master, slave = pty.openpty()
    full_env = {**os.environ, "RAG_SEEDS_DIR": str(tmp_path / "seeds"), "RAG_INDEX_DIR": str(tmp_path / "index"), **env}
    proc = subprocess.Popen(RAG + args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=full_env)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        if not ready:
            proc.kill()
            raise AssertionError(f"no output in 300 s: {seen!r}")
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    out = proc.stdout.read().decode()
    code = proc.wait(60)
    os.close(master)
    return code, out, seen.decode("utf-8", "replace")


@pytest.mark.slow
def test_loading_line_on_a_terminal_only_and_erased(built):
    code, out, terminal = _run_on_terminal(["ask", "When did Brad Smith meet Wang Wentao?"], built)
    assert code == 0 and "December 6, 2023" in out
    assert terminal.startswith("rag ask: loading the index and the model…") and terminal.endswith("\r\x1b[K"), terminal
    piped = run(["ask", "When did Brad Smith meet Wang Wentao?"], built)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr


@pytest.mark.slow
def test_llama_cpp_lines_only_with_verbose(built):
    """Gemma 3 makes llama.cpp print "llama_kv_cache_iswa: using full-size SWA cache" on every load."""
    quiet = run(["ask", "When did Brad Smith meet Wang Wentao?", "--model", "gemma3"], built)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = run(["-v", "ask", "When did Brad Smith meet Wang Wentao?", "--model", "gemma3"], built)
    assert loud.returncode == 0 and "SWA cache" in loud.stderr, loud.stderr
