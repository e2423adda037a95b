"""`rag bench` (rag_eval.bench): the command line, what it imports, the prompts it times, and one slow
end-to-end run of `--quick --json`. No test asserts on speed: timings depend on the machine and on what
else runs on it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag_eval.bench import command, report, startup
from rag_eval.bench.generation import build_prompts

from .conftest import ROOT


def test_top_imports_reads_importtime_output():
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |   _io",
        "import time:      4557 |     135444 | site",
        "import time:     62171 |     138391 | rag_eval.evaluate",
        "import time:      9000 |     200000 |     deep.child",
        "import time:      2000 |      20000 | logging",
    ])  # fmt: skip
    assert startup.top_imports(stderr, 2) == [("rag_eval.evaluate", 138.391), ("site", 135.444)]


@pytest.mark.parametrize("module", ["rag_eval.bench.command", "rag_eval.evaluate", "rag.cli"])
def test_command_modules_import_only_the_standard_library(module):
    """The CLI imports these to build its parser: `rag --help` must not load numpy, torch, llama.cpp…"""
    code = (
        f"import sys, {module}; heavy = {{'numpy', 'torch', 'faiss', 'llama_cpp', 'fastapi', 'pydantic'}}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_arguments_and_the_default_report_path():
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--json", "--quick", "--out", "x.md"])
    assert args.json and args.quick and args.out == Path("x.md")
    assert parser.parse_args([]).out is None  # a run folder, never the tracked eval/bench.md
    assert command.default_out(datetime(2026, 1, 2, 3, 4, 5)) == Path("eval/runs/bench-20260102-030405/bench.md")


# --- the prompts the bench times: the pipeline's own ---------------------------------------------------------------
def test_prompts_are_what_pipeline_prepare_returns_and_refusals_are_skipped():
    def prepared(question):
        if "off-topic" in question:
            return SimpleNamespace(messages=None, grammar=None, max_tokens=0, passages=[], steps_ms={"search": 1.0})
        return SimpleNamespace(
            messages=[{"role": "user", "content": question}],
            grammar='root ::= "x"',
            max_tokens=24,
            passages=[],
            steps_ms={"search": 1.0, "plan": 2.0},
        )

    pipeline = SimpleNamespace(prepare=prepared)  # no answerer: the all-passages variant is left out
    prompts = build_prompts(pipeline, ["a?", "off-topic?", "b?", "c?"], 2)
    assert [p.question for p in prompts] == ["a?", "b?"]
    assert prompts[0].messages == [{"role": "user", "content": "a?"}] and prompts[0].max_tokens == 24
    assert prompts[0].steps_ms == {"search": 1.0, "plan": 2.0} and prompts[0].full_messages is None


# --- end to end --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(900)  # `rag bench --quick` measures ingest, search and answers with the real models
def test_quick_bench_end_to_end(tmp_path):
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, "-m", "rag.cli", "bench", "--quick", "--json", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in report.REQUIRED_KEYS:
        assert isinstance(results[key], (int, float)) and results[key] > 0, key
    assert results["quick"] is True
    assert out.read_text("utf-8").startswith("# rag bench")
