"""Aggregate metrics over judged answers (see rag_eval.judging), the metric names, and threshold gates.

Standard library only at module level: the eval command's `--min/--max` parsing needs METRICS.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable

from rag_eval.stats import calibration, mean, percentile, proportion

# name -> (label, higher is better, measured over)
METRICS: dict[str, tuple[str, bool, str]] = {
    "accuracy": ("answer accuracy", True, "answerable"),
    "f1": ("token F1", True, "answerable"),
    "hit@1": ("retrieval hit@1", True, "answerable"),
    "hit@k": ("retrieval hit@k", True, "answerable"),
    "mrr": ("retrieval MRR", True, "answerable"),
    "citation_validity": ("citation validity", True, "answered"),
    "citation_hit": ("citation hit", True, "answered answerable"),
    "refusal_recall": ("refusal recall", True, "unanswerable"),
    "refusal_precision": ("refusal precision", True, "refused"),
    "false_refusal_rate": ("false-refusal rate", False, "answerable"),
    "truthfulness": ("truthfulness (CRAG)", True, "all"),
    "forbidden_rate": ("forbidden-value rate", False, "with forbidden values"),
    "ece": ("expected calibration error", False, "with a confidence"),
    "error_rate": ("error rate", False, "all"),
    "median_seconds": ("median s/question", False, "all"),
    "p95_seconds": ("p95 s/question", False, "all"),
}


def metric_label(name: str, k: int | None) -> str:
    label = METRICS[name][0]
    return label.replace("hit@k", f"hit@{k}") if k else label


def retrieval_metrics(ranks: list[int | None], k: int) -> dict:
    """hit@1, hit@k and MRR from the 1-based rank of the first passage holding the evidence (None: missed)."""
    n = len(ranks) or 1
    return {
        "hit@1": sum(1 for r in ranks if r == 1) / n,
        f"hit@{k}": sum(1 for r in ranks if r is not None and r <= k) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "n": len(ranks),
    }


def was_right(j: dict) -> bool:
    """What a confidence is a probability of: an answer right (correct, no forbidden value), or a refusal of a
    question the documents cannot answer."""
    if j["refused"]:
        return not j["answerable"]
    return bool(j["correct"]) and not j["forbidden_found"]


def calibration_metric(judgements: list[dict]) -> dict:
    """ECE (10 equal-width bins) over the answers that stated a confidence, with its reliability table; `n`
    counts them, `without` the answers left out for stating none."""
    stated = [j for j in judgements if j.get("confidence") is not None]
    c = calibration((j["confidence"], was_right(j)) for j in stated)
    return {"value": c["ece"], "n": c["n"], "ci": None, "without": len(judgements) - len(stated), "bins": c["bins"]}


def compute_metrics(judgements: list[dict], k: int, errors: int = 0) -> dict:
    """Every metric over the right questions: answer and retrieval metrics over answerable ones, refusal recall
    over unanswerable ones, refusal precision over refusals, citation metrics over the answers given.

    `errors` questions the pipeline rejected (rag_eval.asking) have no judgement: they are not scored, only
    counted in `error_rate` (over all questions asked)."""
    answerable = [j for j in judgements if j["answerable"]]
    unanswerable = [j for j in judgements if not j["answerable"]]
    refused = [j for j in judgements if j["refused"]]
    answered = [j for j in judgements if not j["refused"]]
    cited = [j for j in answered if j["citation_hit"] is not None]
    guarded = [j for j in judgements if j["has_forbidden"]]
    seconds = [j["seconds"] for j in judgements]
    n = len(answerable)
    ret = retrieval_metrics([j["rank"] for j in answerable], k)

    def share(items: list[dict], test: Callable[[dict], bool]) -> dict:
        return proportion(sum(1 for j in items if test(j)), len(items))

    return {
        "accuracy": share(answerable, lambda j: j["correct"]),
        "f1": mean([j["f1"] for j in answerable]),
        "hit@1": proportion(round(ret["hit@1"] * n), n),
        "hit@k": proportion(round(ret[f"hit@{k}"] * n), n),
        "mrr": {"value": ret["mrr"] if n else None, "n": n, "ci": None},
        "citation_validity": share(answered, lambda j: j["citation_valid"]),
        "citation_hit": share(cited, lambda j: j["citation_hit"]),
        "refusal_recall": share(unanswerable, lambda j: j["refused"]),
        "refusal_precision": share(refused, lambda j: not j["answerable"]),
        "false_refusal_rate": share(answerable, lambda j: j["refused"]),
        "truthfulness": mean([j["truthfulness"] for j in judgements]),
        "forbidden_rate": share(guarded, lambda j: bool(j["forbidden_found"])),
        "ece": calibration_metric(judgements),
        "error_rate": proportion(errors, len(judgements) + errors),
        "median_seconds": {"value": statistics.median(seconds) if seconds else None, "n": len(seconds), "ci": None},
        "p95_seconds": {"value": percentile(seconds, 95) if seconds else None, "n": len(seconds), "ci": None},
    }


def metrics_of(records: list[dict], k: int) -> dict:
    """compute_metrics over `rag eval` records: the judged ones scored, the error ones counted."""
    judged = [r["judgement"] for r in records if r.get("error") is None]
    return compute_metrics(judged, k, errors=len(records) - len(judged))


def metrics_by_category(records: list[dict], k: int) -> dict:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[r["category"]].append(r)
    return {category: metrics_of(rs, k) for category, rs in groups.items()}


def check_thresholds(overall: dict, minimums: list, maximums: list) -> list[str]:
    """One message per unmet threshold; a metric that could not be measured (no questions for it) fails too."""
    problems = []
    for limits, flag, short in ((minimums, "--min", lambda v, t: v < t), (maximums, "--max", lambda v, t: v > t)):
        for name, threshold in limits:
            value = overall[name]["value"]
            if value is None:
                problems.append(f"{name} was not measured (no questions for it); {flag} {name}={threshold:g} not met")
            elif short(value, threshold):
                word = "below" if flag == "--min" else "above"
                problems.append(f"{name} = {value:.3f} is {word} the threshold {threshold:g} ({flag})")
    return problems
