"""Fit the answering decisions on SQuAD 2.0 articles and validate them on others.

    python -m rag_eval.fit ../shared/benchmarks/squad2/squad2-dev-10-articles.json.gz \
        --fit Huguenot 1973_oil_crisis European_Union_law Packet_switching Yuan_dynasty Immune_system \
        --limit 150 --answer-limit 60 --workdir /tmp/squadfit --out prompts/answering_model.json

The sentence engine's (RAG_READER=off): two logistic regressions over signals the pipeline already has (rag/evidence.py `sentence_features`,
rag/strategies.py `answer_features`):
1. selector: does this candidate sentence hold a gold answer span? Fitted on every candidate sentence
   of the passages retrieved for the fitting questions (no model call needed).
2. answerer: is the question answerable, judged after the model copied its span from the selected
   sentence? Fitted on the pipeline's own answers to the fitting questions (the generator runs).
   Its threshold is set so at most `--max-false-refusals` of the fitting answerable questions are refused.
The written file names the data, the articles, the sample and this script; all articles are indexed
together (as a user's folder would be), only the fitting articles' questions are used.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag_eval import squad

SCRIPT = "rag_eval/fit.py"


def _fit_logistic(rows: list[dict], labels: list[int], features: list[str], c: float = 1.0) -> dict:
    from sklearn.linear_model import LogisticRegression

    x = np.array([[float(r.get(f, 0.0)) for f in features] for r in rows], dtype=float)
    y = np.array(labels)
    means, scales = x.mean(axis=0), x.std(axis=0)
    scales[scales == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=2000).fit((x - means) / scales, y)
    return {
        "features": features,
        "weights": [round(float(w), 5) for w in lr.coef_[0]],
        "bias": round(float(lr.intercept_[0]), 5),
        "means": [round(float(m), 6) for m in means],
        "scales": [round(float(s), 6) for s in scales],
        "n": int(len(y)),
        "positives": int(y.sum()),
    }


def _prob(model: dict, row: dict) -> float:
    z = [(float(row.get(f, 0.0)) - m) / s for f, m, s in zip(model["features"], model["means"], model["scales"])]
    x = model["bias"] + sum(w * v for w, v in zip(model["weights"], z))
    return 1 / (1 + np.exp(-x))


def _in_sentence(q: squad.SquadQuestion, doc_id: str, start: int, end: int) -> bool:
    return doc_id == q.doc_id and any(start <= s and e <= end for s, e in q.spans)


def candidate_rows(pipeline, questions) -> list[dict]:
    """One row per (question, candidate sentence): the selector's features and whether it holds the answer."""
    rows = []
    for q in questions:
        prepared = pipeline.prepare(q.question)
        if prepared.plan is None:
            continue
        for rank, c in enumerate(prepared.plan.ranked):
            base = c.item.passage.chunk.start
            label = _in_sentence(q, c.item.passage.chunk.doc_id, base + c.start, base + c.end)
            rows.append({"qid": q.id, "article": q.article, "label": int(label), "hand_rank": rank, **c.features})
    return rows


def top1(rows: list[dict], score) -> float:
    """Share of questions (with some candidate holding the answer) whose best-scored candidate holds it."""
    by_q: dict[str, list[dict]] = {}
    for r in rows:
        by_q.setdefault(r["qid"], []).append(r)
    hits = [max(rs, key=score)["label"] for rs in by_q.values() if any(r["label"] for r in rs)]
    return float(np.mean(hits)) if hits else float("nan")


def answer_rows(pipeline, questions) -> list[dict]:
    rows = []
    for q in questions:
        answer = pipeline.ask(q.question).model_dump()
        extra = (answer.get("signals") or {}).get("extra") or {}
        if not extra:
            continue  # refused before the model ran (off-topic or nothing to cite): the rules decide those
        pred = squad.prediction({**answer, "refused": False}) if not answer["refused"] else ""
        rows.append(
            {
                "qid": q.id,
                "article": q.article,
                "answerable": int(q.answerable),
                "f1": squad.f1(pred, q.answers) if q.answerable else 0.0,
                **extra,
            }
        )
    return rows


def rows_from_records(paths: list[Path]) -> list[dict]:
    """Answer rows from `rag eval --squad` results run with RAG_READER=off RAG_ANSWER_THRESHOLD=0 (the sentence
    engine, every span answered), so the answerer can be refitted without running the model again."""
    from rag.lexicon import STRICT_TYPES

    rows = []
    for path in paths:
        for r in json.loads(Path(path).read_text())["records"]:
            sig = r.get("signals") or {}
            extra = dict(sig.get("extra") or {})
            if not extra:
                continue
            if "reader_margin" in extra:
                raise SystemExit(f"{path}: answered with the span reader; record with RAG_READER=off")
            extra.pop("p_answer", None)
            extra["strict_untyped"] = float(sig.get("question_type") in STRICT_TYPES and not sig.get("typed", True))
            rows.append({"qid": r["id"], "article": r["article"], "answerable": int(r["answerable"]), **extra})
    return rows


def fit_answerer(rows: list[dict], max_false_refusals: float, require_names: bool = True) -> dict:
    """The logistic answerer and its threshold: the highest that refuses at most `max_false_refusals` of the
    answerable fitting questions, counting the refusals of the names rule (`require_names`: a name in the
    question missing from the cited sentence refuses, whatever the model says) in that budget."""
    features = sorted(k for k in rows[0] if k not in ("qid", "article", "answerable", "f1", "p_answer"))
    answerer = _fit_logistic(rows, [r["answerable"] for r in rows], features)

    def refused(r: dict, t: float) -> bool:
        return (require_names and r.get("missing_names", 0) > 0) or _prob(answerer, r) < t

    ans = [r for r in rows if r["answerable"]]
    unans = [r for r in rows if not r["answerable"]]
    threshold = 0.0
    for t in np.linspace(0, 1, 201):
        if np.mean([refused(r, t) for r in ans]) <= max_false_refusals:
            threshold = float(t)
    recall = float(np.mean([refused(r, threshold) for r in unans])) if unans else float("nan")
    false = float(np.mean([refused(r, threshold) for r in ans]))
    print(
        f"answerer: {len(rows)} answers; threshold {threshold:.3f} (names rule {require_names}): refusal recall "
        f"{recall:.3f}, false refusals {false:.3f} on the fitting answers",
        file=sys.stderr,
    )
    return {
        **answerer,
        "threshold": round(threshold, 4),
        "require_names": require_names,
        "refusal_recall_fit": round(recall, 4),
        "false_refusals_fit": round(false, 4),
    }


def refit_main(argv: list[str]) -> int:
    """`python -m rag_eval.fit refit MODEL.json RESULTS.json…`: refit the answerer from recorded answers."""
    p = argparse.ArgumentParser(prog="python -m rag_eval.fit refit")
    p.add_argument("model", type=Path)
    p.add_argument("results", type=Path, nargs="+")
    p.add_argument("--max-false-refusals", type=float, default=0.15)
    args = p.parse_args(argv)
    model = json.loads(args.model.read_text())
    rows = rows_from_records(args.results)
    articles = sorted({r["article"] for r in rows})
    if set(articles) & set(model["held_out_articles"]):
        raise SystemExit(
            f"refit: records include held-out articles {sorted(set(articles) & set(model['held_out_articles']))}"
        )
    model["answerer"] = {
        **fit_answerer(rows, args.max_false_refusals),
        "fitted_on": {"records": [p.name for p in args.results], "articles": articles},
    }
    model["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.model.write_text(json.dumps(model, indent=1) + "\n")
    print(f"wrote {args.model}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["refit"]:
        return refit_main(argv[1:])
    p = argparse.ArgumentParser(prog="python -m rag_eval.fit", description=__doc__.split("\n\n")[0])
    p.add_argument("file", type=Path)
    p.add_argument("--fit", nargs="+", required=True, metavar="TITLE", help="articles whose questions fit the models")
    p.add_argument("--limit", type=int, default=150, help="questions per article for the selector")
    p.add_argument("--answer-limit", type=int, default=60, help="questions per article for the answerer")
    p.add_argument("--max-false-refusals", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    from rag.pipeline import Pipeline
    from rag.settings import build_settings

    articles = squad.load_squad(args.file)
    docs = squad.layout(articles)
    fit_articles = [a for a in articles if a.title in set(args.fit)]
    # the sentence engine's decisions: without the span reader (RAG_READER=answer would answer instead)
    settings = squad.build_index(articles, args.workdir, {"decisions": "rules", "reader": "off", "n_threads": 1})
    pipeline = Pipeline.load(settings, with_generator=True)
    t0 = time.time()
    fit_q = squad.questions(fit_articles, docs, args.limit, args.seed)
    rows = candidate_rows(pipeline, fit_q)
    sel_features = [k for k in rows[0] if k not in ("qid", "article", "label", "hand_rank")]
    selector = _fit_logistic(rows, [r["label"] for r in rows], sel_features)
    hand = top1(rows, lambda r: -r["hand_rank"])
    fitted = top1(rows, lambda r: _prob(selector, r))
    print(
        f"selector: {len(rows)} candidates of {len(fit_q)} questions; top-1 hand {hand:.3f} -> fitted {fitted:.3f} "
        f"({time.time() - t0:.0f} s)",
        file=sys.stderr,
    )

    model = {
        "format": 1,
        "script": SCRIPT,
        "data": f"{args.file.name} (SQuAD 2.0 dev, CC BY-SA 4.0)",
        "fit_articles": sorted(args.fit),
        "held_out_articles": sorted(a.title for a in articles if a.title not in set(args.fit)),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "selector": {**selector, "threshold": 0.5, "top1_fit": {"hand": round(hand, 4), "fitted": round(fitted, 4)}},
        # provisional: always answer, so the answer rows see every copied span
        "answerer": {"features": [], "weights": [], "bias": 10.0, "threshold": 0.0},
    }
    args.out.write_text(json.dumps(model, indent=1) + "\n")
    pipeline = Pipeline.load(
        build_settings({**settings.model_dump(), "decisions": "fitted", "prompts_dir": args.out.parent}),
        embedder=pipeline.embedder,
        generator=pipeline.generator,
    )
    answer_q = squad.questions(fit_articles, docs, args.answer_limit, args.seed + 1)
    t1 = time.time()
    arows = answer_rows(pipeline, answer_q)
    print(f"answer rows: {len(arows)} ({time.time() - t1:.0f} s)", file=sys.stderr)
    model["answerer"] = fit_answerer(arows, args.max_false_refusals)
    args.out.write_text(json.dumps(model, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
