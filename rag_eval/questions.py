"""Question sets in JSONL (eval/questions.jsonl): one question per line, validated, with exact evidence.

Fields: `id`, `category`, `question`, `answers` (parts, each a list of accepted aliases), `answerable`,
`evidence` (exact substrings of the source), optional `forbidden`. A file that cannot be used is an
`EvalSetError` naming the file and line. pydantic is imported here at module level, so the command
modules import this one inside their functions.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rag.errors import EvalSetError
from rag_eval import DEFAULT_QUESTIONS


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    category: str = Field(min_length=1)
    question: str = Field(min_length=1)
    answers: list[list[str]] = Field(default_factory=list, description="parts; each a list of accepted aliases")
    answerable: bool
    evidence: list[str] = Field(default_factory=list, description="exact substrings of the source")
    forbidden: list[str] = Field(default_factory=list)

    @field_validator("answers")
    @classmethod
    def _parts_not_empty(cls, parts: list[list[str]]) -> list[list[str]]:
        if any(not part or not all(a.strip() for a in part) for part in parts):
            raise ValueError("every answer part needs at least one non-empty alias")
        return parts


def load_questions(path: Path) -> list[Question]:
    questions, seen = [], set()
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalSetError(f"{path}: cannot read ({exc})") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            q = Question.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise EvalSetError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
            raise EvalSetError(f"{path}:{n}: {problems}") from exc
        if q.answerable and not (q.answers and q.evidence):
            raise EvalSetError(f"{path}:{n}: answerable question {q.id!r} needs answers and evidence")
        if q.id in seen:
            raise EvalSetError(f"{path}:{n}: duplicate id {q.id!r}")
        seen.add(q.id)
        questions.append(q)
    if not questions:
        raise EvalSetError(f"{path}: no questions")
    return questions


def question_texts(path: Path = DEFAULT_QUESTIONS) -> list[str]:
    """Just the questions of a set, in file order (the benchmarks ask them; they judge nothing)."""
    return [q.question for q in load_questions(path)]
