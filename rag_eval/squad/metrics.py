"""The metrics of a SQuAD run, beside those of a system that refuses everything on the same questions.

EM/F1 over all of SQuAD 2.0 reward refusing the unanswerable half, so a number means little without the
floor any refusal policy must beat: every summary is computed for the pipeline and for "refuse
everything", overall and per article. Error rows (questions the pipeline rejected, rag_eval.asking) are
counted (`errors`) and not scored, in the baseline too, so both are scored on the same questions.

Calibration: whether the confidence the pipeline states is right as often as it says, on articles it was
not fitted on (expected calibration error and its reliability table); an answer counts as right at
F1 >= RIGHT_F1, the target the reader's confidence is fitted for (rag_eval.fit_reader), a refusal when
the question is unanswerable.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from rag_eval.matching import contains, exact, f1
from rag_eval.stats import calibration, percentile

HITS = (1, 3, 5)
RIGHT_F1 = 0.5  # an answer this close to a gold one is right, for calibration (rag_eval.fit_reader's target)


def _mean(values: Iterable[float | bool]) -> float | None:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else None


def was_right(r: dict) -> bool:
    """What a stated confidence is the probability of: an answer with F1 >= RIGHT_F1 against a gold answer
    (never, for an unanswerable question), or a refusal of an unanswerable question."""
    if r["refused"]:
        return not r["answerable"]
    return bool(r["answerable"]) and (r["f1"] or 0.0) >= RIGHT_F1


def calibration_of(records: Sequence[dict]) -> dict:
    """ECE and the reliability table over the scored records that state a confidence (10 equal-width bins)."""
    return calibration(
        (r["confidence"], was_right(r)) for r in records if r.get("error") is None and r.get("confidence") is not None
    )


def summary(records: Sequence[dict]) -> dict:
    """The metrics of one group of records (error rows are counted, not scored)."""
    scored = [r for r in records if r.get("error") is None]
    ans = [r for r in scored if r["answerable"]]
    una = [r for r in scored if not r["answerable"]]
    answered_ans = [r for r in ans if not r["refused"]]
    ranked = [r for r in ans if r.get("retrieved") is not None]  # answers that said what they retrieved
    seconds = [r["seconds"] for r in scored if r.get("seconds") is not None]
    out = {
        "questions": len(records),
        "answerable": len(ans),
        "unanswerable": len(una),
        "errors": len(records) - len(scored),
        "refused": sum(bool(r["refused"]) for r in scored),
        "answerable_em": _mean(r["em"] for r in ans),
        "answerable_f1": _mean(r["f1"] for r in ans),
        "em": _mean(r["em"] for r in scored),
        "f1": _mean(r["f1"] for r in scored),
        "containment": _mean(bool(r["contains"]) for r in ans),
        "refusal_recall": _mean(bool(r["refused"]) for r in una),
        "false_refusal_rate": _mean(bool(r["refused"]) for r in ans),
        "cited_overlap": _mean(bool(r["cited_overlap"]) for r in answered_ans),
    }
    for k in HITS:
        out[f"hit@{k}"] = _mean(r["rank"] is not None and r["rank"] <= k for r in ranked)
    out["median_seconds"] = statistics.median(seconds) if seconds else None
    out["p95_seconds"] = percentile(seconds, 95) if seconds else None
    calibrated = calibration_of(scored)
    out["ece"] = calibrated["ece"]
    out["with_confidence"] = calibrated["n"]  # the questions ECE counts; the others stated no confidence
    return out


def refuse_everything(records: Sequence[dict]) -> list[dict]:
    """The same questions answered by a system that always refuses (and retrieves nothing).

    Error rows stay error rows, so the baseline is scored on exactly the questions the pipeline was.
    """
    out = []
    for r in records:
        if r.get("error") is not None:
            out.append(r)
            continue
        golds = r["golds"] if r["answerable"] else []
        out.append(
            {
                **r,
                "prediction": "",
                "answer": None,
                "refused": True,
                "em": exact("", golds),
                "f1": f1("", golds),
                "contains": contains("", golds) if r["answerable"] else None,
                "cited_overlap": None,
                "rank": None,
                "retrieved": None,
                "citations": [],
                "confidence": None,
                "seconds": None,
                "error": None,
            }
        )
    return out


def _grouped(records: Sequence[dict]) -> dict:
    by_article: dict[str, list[dict]] = {}
    for r in records:
        by_article.setdefault(r["article"], []).append(r)
    return {"overall": summary(records), "per_article": {a: summary(rs) for a, rs in by_article.items()}}


def metrics(records: Sequence[dict]) -> dict:
    """Overall and per-article metrics, and the same for the refuse-everything baseline."""
    return {
        **_grouped(records),
        "baseline": _grouped(refuse_everything(records)),
        "calibration": calibration_of(records),
    }


def results(records: list[dict], config: dict) -> dict:
    """What results.json holds and the report and chart read: config, metrics, every record."""
    return {"config": config, "metrics": metrics(records), "records": records}
