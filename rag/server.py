"""`rag serve`: placeholder module; the HTTP API is being written (issue 5)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)


def run_command(args) -> int:
    raise SystemExit("rag serve: not implemented yet")
