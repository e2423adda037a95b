"""`rag eval`: placeholder module; the evaluation suite is being written (issue 4)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--questions", help="questions JSONL (default eval/questions.jsonl)")


def run_command(args) -> int:
    raise SystemExit("rag eval: not implemented yet")
