"""The `rag` command as a user runs it: real process, real embedder, clear messages instead of tracebacks."""

import json
import os
import re
import subprocess
import sys

import pytest

from .conftest import SEED_FILE

pytestmark = pytest.mark.slow
RAG = [sys.executable, "-m", "rag.cli"]


def run(args, tmp_path, stdin=None, **env):
    full_env = {**os.environ, "RAG_SEEDS_DIR": str(tmp_path / "seeds"), "RAG_INDEX_DIR": str(tmp_path / "index"), **env}
    return subprocess.run(RAG + args, input=stdin, capture_output=True, text=True, env=full_env, timeout=600)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "seeds").mkdir()
    (tmp / "seeds" / SEED_FILE.name).write_bytes(SEED_FILE.read_bytes())
    (tmp / "seeds" / "bad.txt").write_bytes(b"\xff\xfe\x00\x00binary junk")
    out = run(["ingest"], tmp)
    assert out.returncode == 0, out.stderr
    return tmp, out


def test_ingest_reports_summary_and_warns_about_bad_file(built):
    tmp, out = built
    assert "documents: 1 added, 0 changed, 0 removed, 0 unchanged" in out.stdout
    assert "bad.txt" in out.stdout + out.stderr and "Traceback" not in out.stderr  # named in the summary
    again = run(["ingest", "-q"], tmp)
    assert "0 added, 0 changed, 0 removed, 1 unchanged" in again.stdout


def test_search_json_from_stdin_answers_every_line(built):
    tmp, _ = built
    out = run(["search", "-", "--json", "--k", "2"], tmp, stdin="Who translated the announcement?\n\nNvidia chips\n")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [x["query"] for x in lines] == ["Who translated the announcement?", "Nvidia chips"]
    first = lines[0]["results"][0]
    assert set(first) == {"doc", "chunk_id", "start", "end", "text", "score", "page", "heading"}
    assert "Youdao" in first["text"] and len(lines[0]["results"]) == 2
    assert SEED_FILE.read_text()[first["start"] : first["end"]] == first["text"]


def test_empty_query_is_a_clear_error(built):
    tmp, _ = built
    out = run(["search", "   "], tmp)
    assert out.returncode == 2 and "query is empty" in out.stderr and "Traceback" not in out.stderr


def test_100kb_query_is_handled(built):
    tmp, _ = built
    out = run(["search", "-", "--json"], tmp, stdin="trade " * 17000 + "\n")
    assert out.returncode == 0, out.stderr
    assert "truncated" in out.stderr and json.loads(out.stdout)["results"]


def test_search_without_index_says_to_ingest(tmp_path):
    (tmp_path / "seeds").mkdir()
    out = run(["search", "hello"], tmp_path)
    assert out.returncode == 2 and "rag ingest" in out.stderr and "Traceback" not in out.stderr


def test_invalid_setting_is_a_clear_error(built):
    tmp, _ = built
    out = run(["search", "x"], tmp, RAG_K="0")
    assert out.returncode == 2 and "invalid settings" in out.stderr and "RAG_K" in out.stderr


def test_ask_answers_every_stdin_line_with_one_model_load(built):
    tmp, _ = built
    questions = "When did Brad Smith meet Wang Wentao?\nHow many employees does Microsoft have in China?\n"
    out = run(["ask", "-", "--json"], tmp, stdin=questions)
    assert out.returncode == 0, out.stderr
    first, second = (json.loads(line) for line in out.stdout.splitlines())
    assert not first["refused"] and "December 6, 2023" in first["answer"]
    c = first["citations"][0]
    assert "December 6, 2023" in SEED_FILE.read_text()[c["start"] : c["end"]]
    assert second["refused"] and second["answer"] == "The documents don't say."
    human = run(["ask", "When did Brad Smith meet Wang Wentao?"], tmp)
    # the evidence marks the quoted words (the reader's span, widened by RAG_READER_SPAN_UNION to the weekday)
    assert human.returncode == 0 and re.search("\u27e6[^\u27e7]*December 6, 2023\u27e7", human.stdout)
    assert "[1]" in human.stdout
