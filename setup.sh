#!/bin/sh
# Two set-up commands for a fresh machine (Python >= 3.11, pip, a C compiler):
#   ./setup.sh run    install everything, build the index, start the chat + API at http://127.0.0.1:8000
#   ./setup.sh test   install everything, run ruff (lint + format check) and the test suite
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=.venv
# CPU build of PyTorch first, so sentence-transformers does not pull a multi-GB CUDA build.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

install() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    stamp="$VENV/.installed-$(cat pyproject.toml setup.sh | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC"
        echo "installing dependencies (the first time compiles llama.cpp: about 10 minutes on 2 cores)" >&2
        "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
}

case "${1:-}" in
    run)
        install
        "$VENV/bin/rag" ingest
        exec "$VENV/bin/rag" serve
        ;;
    test)
        install
        # Lint and format first (ruff, configured in pyproject.toml): a finding fails the run before the tests.
        "$VENV/bin/ruff" check .
        "$VENV/bin/ruff" format --check .
        "$VENV/bin/python" -m pytest
        # The answer-quality gate: thresholds just under the measured values in eval/README.md.
        "$VENV/bin/rag" ingest -q
        "$VENV/bin/rag" eval -q --out eval/runs/ci $(grep -v '^#' eval/ci-gate.txt)
        "$VENV/bin/rag" eval -q --questions eval/questions_new.jsonl --out eval/runs/ci-new \
            $(grep -v '^#' eval/ci-gate-new.txt)
        ;;
    *)
        echo "usage: $0 run|test" >&2
        exit 2
        ;;
esac
