"""Judging one answer against its question: text matching, evidence matching, citation checks, failure reasons.

Answers are the JSON shape of the answer contract (rag.contract); passages are the answer's (`.text`) or
search results (`.chunk.text`). Citations are checked against `read_source(doc_id)`, in practice
`rag.sources.SourceTexts` (the file, or the text the index extracted from a PDF/HTML/DOCX). Text is
compared as the SQuAD harness compares it, through the official SQuAD v2 normaliser (rag_eval.matching),
with the `[n]` markers taken out first (rag.markers). Standard library only at module level (the CLI
imports the eval command to build its parser).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from rag.markers import MARKER as _MARKER
from rag.markers import strip_markers
from rag_eval.matching import contains_phrase, normalize_answer, token_f1

REASONS = (
    "retrieval_miss",
    "wrong_answer",
    "no_citation",
    "invalid_citation",
    "unsupported_citation",
    "false_refusal",
    "missed_refusal",
    "forbidden_value",
    "error",  # the pipeline rejected the question (rag_eval.asking); no answer to judge
)
__all__ = ["REASONS", "contains_phrase", "normalize_answer", "strip_markers", "token_f1"]  # re-exported here


# --- text matching ---------------------------------------------------------------------------------------
def missing_parts(answer_text: str, parts: list[list[str]]) -> list[list[str]]:
    """The answer parts none of whose aliases appear in the answer (empty: the answer is correct)."""
    text = strip_markers(answer_text)
    return [part for part in parts if not any(contains_phrase(text, alias) for alias in part)]


def answer_f1(answer_text: str, parts: list[list[str]]) -> float:
    """Best alias per part, averaged over parts: a two-part answer that names one part scores about half."""
    if not parts:
        return 0.0
    text = strip_markers(answer_text)
    return statistics.fmean(max(token_f1(text, alias) for alias in part) for part in parts)


def forbidden_found(answer: dict, forbidden: list[str]) -> list[str]:
    """Forbidden strings stated by a non-refused answer (a refusal states nothing)."""
    if answer["refused"]:
        return []
    text = strip_markers(answer["answer"])
    return [f for f in forbidden if contains_phrase(text, f)]


# --- evidence ------------------------------------------------------------------------------------------------
def covers(text: str, evidence: str, min_overlap: int = 20) -> bool:
    """Evidence is in text, or a long-enough piece of it is (a chunk may cut an evidence span)."""
    if evidence in text:
        return True
    n = min(min_overlap, len(evidence))
    return any(evidence[i : i + n] in text for i in range(0, len(evidence) - n + 1))


def evidence_rank(passages, evidence: list[str]) -> int | None:
    """1-based rank of the first passage holding (or overlapping) any evidence string."""
    for rank, p in enumerate(passages, 1):
        if any(covers(getattr(p, "text", None) or p.chunk.text, e) for e in evidence):
            return rank
    return None


# --- citations ---------------------------------------------------------------------------------------------
def has_citation(answer: dict) -> bool:
    return bool(answer["citations"] or _MARKER.search(answer["answer"]))


def citation_problems(answer: dict, read_source: Callable[[str], str | None]) -> list[str]:
    """Why a reader could not check this answer's citations (empty list: every citation checks out).

    Every [n] marker must resolve to a citation, a cited answer must carry a marker, and each citation's
    source[start:end] must be exactly its quote.
    """
    problems = []
    by_n = {c["n"]: c for c in answer["citations"]}
    markers = sorted({int(n) for n in _MARKER.findall(answer["answer"])})
    problems += [f"marker [{n}] has no citation" for n in markers if n not in by_n]
    if by_n and not markers:
        problems.append("citations are listed but the answer has no [n] marker")
    for c in answer["citations"]:
        source = read_source(c["source"])
        if source is None:
            problems.append(f"[{c['n']}] source {c['source']!r} cannot be read")
            continue
        actual = source[c["start"] : c["end"]]
        if not c["quote"] or actual != c["quote"]:
            problems.append(f"[{c['n']}] {c['source']}[{c['start']}:{c['end']}] is {actual!r}, quote is {c['quote']!r}")
    return problems


def enclosing_sentences(text: str, start: int, end: int) -> str:
    """The sentence(s) of a passage that the span [start, end) sits in, so a short quote gets its context."""
    from rag.chunking import split_sentences

    touching = [(s, e) for s, e in split_sentences(text) if s < end and e > start]
    if not touching:
        return text[max(start, 0) : end]
    return text[touching[0][0] : touching[-1][1]]


def cites_evidence(answer: dict, evidence: list[str]) -> bool:
    """Some cited span, or the sentence it sits in, contains or overlaps an evidence string."""
    for c in answer["citations"]:
        offset = c["passage_start"]
        sentence = enclosing_sentences(c["text"], c["start"] - offset, c["end"] - offset)
        if any(covers(c["quote"], e) or covers(sentence, e) for e in evidence):
            return True
    return False


# --- one question ----------------------------------------------------------------------------------------------
def crag_score(answerable: bool, refused: bool, correct: bool) -> int:
    """CRAG truthfulness: +1 right, 0 an honest refusal, -1 wrong or hallucinated.

    For a question the documents cannot answer, refusing is the right answer (+1) and any answer is -1.
    """
    if not answerable:
        return 1 if refused else -1
    if refused:
        return 0
    return 1 if correct else -1


def judge(question, answer: dict, passages: list, seconds: float, read_source) -> dict:
    """Score one answer against its question and list every reason it fails (a question can fail several ways)."""
    refused = bool(answer["refused"])
    failures: list[dict] = []

    def fail(reason: str, detail: str) -> None:
        failures.append({"reason": reason, "detail": detail})

    rank = correct = f1 = hit = None
    if question.answerable:
        rank = evidence_rank(passages, question.evidence)
        if rank is None:
            fail(
                "retrieval_miss", f"no retrieved passage ({len(passages)}) holds the evidence {question.evidence[0]!r}"
            )
        missing = missing_parts(answer["answer"], question.answers)
        correct = not refused and not missing
        f1 = 0.0 if refused else answer_f1(answer["answer"], question.answers)
        if refused:
            fail("false_refusal", f"refused: {answer.get('reason') or 'no reason given'}")
        elif missing:
            fail("wrong_answer", f"{answer['answer']!r} lacks " + "; ".join(" / ".join(p) for p in missing))
    elif not refused:
        fail("missed_refusal", f"answered {answer['answer']!r}")

    valid = None
    if not refused:
        problems = citation_problems(answer, read_source)
        valid = has_citation(answer) and not problems
        if not has_citation(answer):
            fail("no_citation", f"{answer['answer']!r} cites nothing")
        elif problems:
            fail("invalid_citation", "; ".join(problems))
        if question.answerable and answer["citations"]:
            hit = cites_evidence(answer, question.evidence)
            if not hit:
                quotes = ", ".join(repr(c["quote"]) for c in answer["citations"])
                fail("unsupported_citation", f"cited {quotes}; evidence is {question.evidence[0]!r}")

    forbidden = forbidden_found(answer, question.forbidden)
    if forbidden:
        fail("forbidden_value", f"answer states {', '.join(map(repr, forbidden))}")
    return {
        "answerable": question.answerable,
        "refused": refused,
        "correct": correct,
        "f1": f1,
        "rank": rank,
        "citation_valid": valid,
        "citation_hit": hit,
        "has_forbidden": bool(question.forbidden),
        "forbidden_found": forbidden,
        "truthfulness": crag_score(question.answerable, refused, bool(correct) and not forbidden),
        "confidence": answer.get("confidence"),  # the decider's, for the calibration metric (None: not stated)
        "seconds": round(seconds, 3),
        "failures": failures,
    }
