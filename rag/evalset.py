"""Hand-written evaluation questions (eval/questions.jsonl) and the retrieval metrics over them."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


from rag.errors import EvalSetError  # noqa: E402,F401 - re-exported


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


def evidence_rank(passages, evidence: list[str]) -> int | None:
    """1-based rank of the first passage holding (or overlapping) any evidence string."""
    for rank, p in enumerate(passages, 1):
        if any(covers(getattr(p, "text", None) or p.chunk.text, e) for e in evidence):
            return rank
    return None


def covers(text: str, evidence: str, min_overlap: int = 20) -> bool:
    """Evidence is in text, or a long-enough piece of it is (a chunk may cut an evidence span)."""
    if evidence in text:
        return True
    n = min(min_overlap, len(evidence))
    return any(evidence[i : i + n] in text for i in range(0, len(evidence) - n + 1))


def retrieval_metrics(ranks: list[int | None], k: int) -> dict:
    n = len(ranks) or 1
    return {
        "hit@1": sum(1 for r in ranks if r == 1) / n,
        f"hit@{k}": sum(1 for r in ranks if r is not None and r <= k) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "n": len(ranks),
    }
