"""Asking every question of a set through one pipeline, under the one error policy of both harnesses.

A question the pipeline rejects with a `RagError` (too long for the settings, a context overflow, a model
server that went away) becomes an error for that question and the run goes on: one bad question must not
throw away an hour of answers, and a run that silently skipped it would look better than it is. Both
`rag eval` and `rag eval --squad` keep the error in the question's record, leave it out of the scores
and count it in the metrics and the report (`error_rate`, `errors`), so a gate can refuse a run with
errors (`--max error_rate=0`). Anything else raised is a bug in the project, not an answer, and stops the
run.

Standard library only at module level (the CLI imports the eval command to build its parser).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Asked:
    """One question asked: the pipeline's answer, or the error it raised instead (then `answer` is None)."""

    question: Any
    answer: Any
    error: str | None
    seconds: float


def error_text(exc: BaseException) -> str:
    """How an error is written in a record and the report: its type and message."""
    return f"{type(exc).__name__}: {exc}"


def ask_each(
    pipeline: Any,
    questions: Sequence[Any],
    k: int | None,
    progress: Callable[[Iterable], Iterable] = iter,
) -> Iterator[Asked]:
    """`pipeline.ask(q.question, k)` for each question in order, timed; a RagError is that question's error."""
    from rag.errors import RagError

    for q in progress(questions):
        t0 = time.perf_counter()
        try:
            answer = pipeline.ask(q.question, k)
        except RagError as exc:
            yield Asked(q, None, error_text(exc), time.perf_counter() - t0)
            continue
        yield Asked(q, answer, None, time.perf_counter() - t0)
