"""One SQuAD answer scored as one record: what results.json keeps per question and everything reads.

The record is the harness's interface: the metrics, the report and the fitting scripts (rag_eval.fit,
rag_eval.fit_reader, the lead's analyses) read its fields (`answerable`, `f1`, `refused`, `signals`,
`error`, ...), so they are only ever added to. Scoring follows the official evaluate-v2.0.py
(rag_eval.matching: "" is the gold of an unanswerable question and the prediction of a refusal), plus
what SQuAD does not measure: whether the cited span overlaps a gold span and where retrieval ranked the
gold passage.
"""

from __future__ import annotations

from rag.markers import strip_markers
from rag_eval.asking import error_text
from rag_eval.matching import contains, exact, f1
from rag_eval.squad.data import Span, SquadQuestion


def prediction(answer: dict) -> str:
    """What the reader sees as the answer: the text without [n] markers, or "" for a refusal."""
    if answer.get("refused"):
        return ""
    return " ".join(strip_markers(answer.get("answer") or "").split())


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def cited_overlap(question: SquadQuestion, answer: dict) -> bool:
    """Some citation of the question's document overlaps a gold span."""
    return any(
        c.get("source") == question.doc_id and _overlaps((c["start"], c["end"]), span)
        for c in answer.get("citations") or []
        for span in question.spans
    )


def retrieval_rank(question: SquadQuestion, answer: dict) -> int | None:
    """1-based rank of the first passage of the question's document that holds a whole gold span."""
    for rank, p in enumerate(answer.get("passages") or [], 1):
        if p.get("doc") == question.doc_id and any(p["start"] <= s and e <= p["end"] for s, e in question.spans):
            return rank
    return None


def _base_record(question: SquadQuestion) -> dict:
    return {
        "id": question.id,
        "article": question.article,
        "doc_id": question.doc_id,
        "question": question.question,
        "answerable": question.answerable,
        "golds": list(question.answers),
    }


def score(question: SquadQuestion, answer: dict, seconds: float | None = None) -> dict:
    """One record: EM/F1/containment, refusal, cited-span overlap, retrieval rank and time of one answer.

    `seconds` defaults to the answer's own `timings.total_ms`. Fields that do not apply are None:
    containment and rank for unanswerable questions, cited overlap unless an answerable one was answered,
    `retrieved` (how many passages the answer lists) when it lists none at all, which keeps it out of hit@k.
    """
    pred = prediction(answer)
    refused = bool(answer.get("refused"))
    golds = question.answers if question.answerable else []
    if seconds is None:
        total_ms = (answer.get("timings") or {}).get("total_ms")
        seconds = total_ms / 1000 if total_ms is not None else None
    return {
        **_base_record(question),
        "prediction": pred,
        "answer": answer.get("answer"),
        "refused": refused,
        "reason": answer.get("reason"),
        "em": exact(pred, golds),
        "f1": f1(pred, golds),
        "contains": contains(pred, golds) if question.answerable else None,
        "cited_overlap": cited_overlap(question, answer) if question.answerable and not refused else None,
        "rank": retrieval_rank(question, answer) if question.answerable else None,
        "retrieved": len(answer["passages"]) if isinstance(answer.get("passages"), list) else None,
        "citations": [[c.get("source"), c.get("start"), c.get("end")] for c in answer.get("citations") or []],
        "signals": answer.get("signals"),  # the measurements behind the decision, for fitting and diagnosis
        "confidence": answer.get("confidence"),  # the decider's P(this answer, or refusal, is right)
        "seconds": seconds,
        "error": None,
    }


def error_record(question: SquadQuestion, error: Exception | str, seconds: float) -> dict:
    """A question the pipeline rejected (a RagError, or its text): kept in the results, counted in the metrics
    as an error, not scored (rag_eval.asking)."""
    return {
        **_base_record(question),
        "prediction": None,
        "answer": None,
        "refused": None,
        "reason": None,
        "em": None,
        "f1": None,
        "contains": None,
        "cited_overlap": None,
        "rank": None,
        "retrieved": None,
        "citations": [],
        "signals": None,
        "confidence": None,
        "seconds": seconds,
        "error": error if isinstance(error, str) else error_text(error),
    }
