"""Fit the decider's ranker: which of the reader's proposals is the answer (`prompts/decider.json` "ranker").

    # the proposals the pipeline makes for the calibration articles' answerable questions, with the reader that
    # answers them (as for rag_eval/fit_decider.py: the shipped reader on 1973_oil_crisis, the 15-article reader,
    # git show 328b772:prompts/reader.safetensors, on Scottish_Parliament and Imperialism):
    python -m rag_eval.fit_ranker collect squad2-dev-10-articles.json.gz --articles 1973_oil_crisis --out /tmp/rk-17.jsonl
    RAG_PROMPTS_DIR=/tmp/prompts-15 python -m rag_eval.fit_ranker collect squad2-dev-10-articles.json.gz \\
        --articles Scottish_Parliament Imperialism --out /tmp/rk-15.jsonl
    python -m rag_eval.fit_ranker fit /tmp/rk-17.jsonl /tmp/rk-15.jsonl      # adds the ranker to decider.json
    # then refit the answerer on calibration runs that rank with it (rag_eval/fit_decider.py keeps the ranker)

Why (2026-12-07, eighth session): the reader's best span by margin is the answer less often than one of the
others it proposes is. On the three calibration articles (482 answerable questions with a proposal) the
margin's choice scores F1 0.611, the best proposal 0.722. A logistic regression over the proposal's features
(rag/read_strategy.py `span_features`: the reader's scores, the passage's retrieval scores, the names, type and
support checks), fitted pointwise (P(this span has F1 >= 0.5)) and validated by article (each article ranked by
a fit on the other two), chose better on every article: 0.731 -> 0.740 (1973_oil_crisis), 0.497 -> 0.506
(Imperialism), 0.655 -> 0.686 (Scottish_Parliament); 0.611 -> 0.628 overall. A pairwise fit did no better
(0.623-0.626). Within one question a linear ranker only sees how its proposals differ, so the collection's
scale (a short news article's retrieval scores are nothing like Wikipedia's) does not move the ranking.
The names rule still ranks first (`FittedDecider.rank`): a span whose sentence lacks a name of the question
ranks after every span that has them all.

The reach (ninth session): the ranker may put first only a span within `reach` logits of the reader's best
margin. The fit picks the smallest reach of `REACHES` that ranks as well as no limit, by article (header
"chosen_f1_by_reach"). Refitted on proposals collected with the numbers, negation and opposites checks: no limit
0.630, reach 2 0.630 (1973_oil_crisis 0.740 -> 0.737, Imperialism 0.511 -> 0.514, Scottish_Parliament 0.686 ->
0.685), reach 5 0.634, reach 0.5 0.614. Why a limit: on paraphrased questions the ranker followed the passage's
word overlap away from the reader's right answer ("What did the minister ask Microsoft to do?": the right span's
margin 3.7, the one ranked first -2.4; eval/questions_new.jsonl 0.529 -> 0.706, eval/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from rag.decider import DECIDER_FILE, FORMAT
from rag_eval.fit_decider import FEATURES, RIGHT_F1, STRENGTHS, _commit, _fit, _standardise
from rag_eval.matching import f1

SCRIPT = "rag_eval/fit_ranker.py"
NAMES_PENALTY = 1e6
REACH_PENALTY = 1e3


# --- collect ---------------------------------------------------------------------------------------------------
def collect(file: Path, titles: list[str] | None, out: Path, workdir: Path | None = None) -> int:
    """The proposals the pipeline's reader-led strategy ranks for each answerable question of the articles, with
    the gold answers and the reader that made them, one JSON line per question (the first line: the run)."""
    from rag.pipeline import Pipeline, load_embedder
    from rag.settings import build_settings
    from rag_eval.squad.data import load_squad, questions
    from rag_eval.squad.documents import build_index, layout
    from rag_eval.squad.running import _reader_config

    articles = load_squad(file, titles)
    settings = build_settings({})
    embedder = load_embedder(settings)
    settings = build_index(articles, workdir or out.parent / f"{out.stem}-work", {}, embedder=embedder)
    pipeline = Pipeline.load(settings, embedder=embedder, with_generator=True)
    reader = _reader_config(pipeline.reader) or {}
    seen = sorted({a.title for a in articles} & set(reader.get("train_articles") or ()))
    if seen:
        raise SystemExit(f"the reader was trained on {', '.join(seen)}: collect on articles it has not seen")
    strategy = pipeline.answerer.strategy
    if not hasattr(strategy, "proposals"):
        raise SystemExit("the answering strategy is not reader-led (RAG_READER=answer): there are no proposals")
    made: list[dict] = []
    original = strategy.proposals

    def recording(question, numbered, reading, relevance=0.0):  # what the strategy proposes, as answering meets it
        found = original(question, numbered, reading, relevance)
        by_n = {item.n: item for item in numbered}
        made.extend(
            {
                "quote": p.quote(by_n),
                "features": p.features,
                "names_missing": p.signals is not None and p.signals.fails_names,
            }
            for p in found
        )
        return found

    strategy.proposals = recording
    asked = [q for q in questions(articles, layout(articles), None, 0) if q.answerable]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        run = {"run": {"file": Path(file).name, "articles": [a.title for a in articles], "reader": reader}}
        f.write(json.dumps(run, ensure_ascii=False) + "\n")
        for q in asked:
            made.clear()
            pipeline.answerer.prepare(q.question)
            record = {"article": q.article, "id": q.id, "question": q.question, "answers": list(q.answers)}
            f.write(json.dumps({**record, "proposals": list(made)}, ensure_ascii=False) + "\n")
    print(f"wrote {out}: {len(asked)} answerable questions")
    return 0


# --- fit -------------------------------------------------------------------------------------------------------
def load_runs(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """The questions with at least one proposal, each with its article, its proposals' feature rows and F1s; and
    the runs (articles, reader). A run on its reader's own training articles is refused."""
    rows, runs = [], []
    for path in paths:
        lines = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
        if not lines or "run" not in lines[0]:
            raise SystemExit(f"{path}: not a `fit_ranker collect` file (its first line names the run)")
        run = lines[0]["run"]
        reader = run.get("reader") or {}
        seen = sorted(set(run["articles"]) & set(reader.get("train_articles") or ()))
        if seen:
            raise SystemExit(f"{path}: its reader was trained on {', '.join(seen)}; rank on articles it has not seen")
        runs.append({"articles": run["articles"], "reader_created": reader.get("created"),
                     "reader_trained_on": reader.get("train_articles")})  # fmt: skip
        for r in lines[1:]:
            props = [p for p in r["proposals"] if all(k in p["features"] for k in FEATURES)]
            if not props:
                continue
            rows.append({
                "article": r["article"],
                "x": np.array([[float(p["features"][k]) for k in FEATURES] for p in props]),
                "f1": np.array([f1(p["quote"], r["answers"]) for p in props]),
                "names_missing": np.array([bool(p["names_missing"]) for p in props]),
            })  # fmt: skip
    return rows, runs


REACHES = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, None)  # logits of margin the ranker may reach below the best


def chosen_f1(rows: list[dict], scores: list[np.ndarray], reach: float | None = None) -> float:
    """Mean F1 of the proposal each question ranks first (names first, then within `reach` of the best margin, as
    `FittedDecider.rank`)."""
    margin = FEATURES.index("reader_margin")
    picks = []
    for r, s in zip(rows, scores):
        s = s - NAMES_PENALTY * r["names_missing"]
        if reach is not None:
            named = ~r["names_missing"] if (~r["names_missing"]).any() else np.ones(len(s), bool)
            best = r["x"][named, margin].max()
            s = s - REACH_PENALTY * (r["x"][:, margin] < best - reach)
        picks.append(r["f1"][int(np.argmax(s))])
    return float(np.mean(picks)) if picks else 0.0


def fit(paths: list[Path], decider: Path) -> dict:
    """The ranker by article cross-validation (each article ranked by a fit on the others, the strength chosen
    by the mean chosen F1), then fitted on all and written into `decider` with its figures."""
    rows, runs = load_runs(paths)
    articles = sorted({r["article"] for r in rows})
    if len(articles) < 2:
        raise SystemExit("the ranker is validated by article: give proposals of at least two articles")
    margin = FEATURES.index("reader_margin")
    by_article = {a: [r for r in rows if r["article"] == a] for a in articles}
    baseline = {a: chosen_f1(rs, [r["x"][:, margin] for r in rs]) for a, rs in by_article.items()}
    oracle = {a: float(np.mean([r["f1"].max() for r in rs])) for a, rs in by_article.items()}
    best = None
    for C in STRENGTHS:  # noqa: N806
        figures = {}
        for a in articles:
            train = [r for r in rows if r["article"] != a]
            model, means, scales = _fit_pointwise(train, C)
            figures[a] = chosen_f1(
                by_article[a], [model.decision_function((r["x"] - means) / scales) for r in by_article[a]]
            )
        mean = float(np.mean([figures[a] * len(by_article[a]) for a in articles]) * len(articles) / len(rows))
        if best is None or mean > best[1]:
            best = (C, mean, figures)
    C, _, figures = best  # noqa: N806

    def overall(values: dict) -> float:
        return round(sum(values[a] * len(by_article[a]) for a in articles) / len(rows), 4)

    # the reach: the smallest that ranks as well as no limit (cross-validated at the chosen strength)
    folds = {a: _fit_pointwise([r for r in rows if r["article"] != a], C) for a in articles}
    held = {a: [m.decision_function((r["x"] - mu) / sd) for r in by_article[a]] for a, (m, mu, sd) in folds.items()}
    by_reach = {reach: {a: chosen_f1(by_article[a], held[a], reach) for a in articles} for reach in REACHES}
    unlimited = overall(by_reach[None])
    reach = next(x for x in REACHES if overall(by_reach[x]) >= unlimited)
    model, means, scales = _fit_pointwise(rows, C)

    header = {
        "script": SCRIPT,
        "commit": _commit(),
        "data": "SQuAD 2.0 (CC BY-SA 4.0)",
        "runs": runs,
        "target": f"the proposal's F1 >= {RIGHT_F1} (answerable questions with a proposal: {len(rows)})",
        "strength": C,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "chosen_f1_by_article": {
            "margin": {**{a: round(baseline[a], 4) for a in articles}, "all": overall(baseline)},
            "ranker (cross-validated)": {**{a: round(figures[a], 4) for a in articles}, "all": overall(figures)},
            "best proposal": {**{a: round(oracle[a], 4) for a in articles}, "all": overall(oracle)},
        },
        "reach": reach,
        "chosen_f1_by_reach": {
            str(x): {**{a: round(v[a], 4) for a in articles}, "all": overall(v)} for x, v in by_reach.items()
        },
    }
    ranker = {
        "features": list(FEATURES),
        "weights": [round(float(w), 6) for w in model.coef_[0]],
        "bias": round(float(model.intercept_[0]), 6),
        "means": [round(float(m), 6) for m in means],
        "scales": [round(float(s), 6) for s in scales],
        "reach": reach,
    }
    if not decider.is_file():
        raise SystemExit(
            f"{decider}: no decider file to add the ranker to (fit the answerer first: rag_eval/fit_decider.py)"
        )
    data = json.loads(decider.read_text("utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SystemExit(f"{decider}: not a format-{FORMAT} {DECIDER_FILE}")
    data["ranker"] = ranker
    data["ranker_fitted"] = header
    decider.write_text(json.dumps(data, indent=1) + "\n")
    return header


def _fit_pointwise(rows: list[dict], C: float):  # noqa: N803
    X = np.vstack([r["x"] for r in rows])  # noqa: N806
    y = np.concatenate([(r["f1"] >= RIGHT_F1).astype(int) for r in rows])
    means, scales = _standardise(X)
    return _fit((X - means) / scales, y, C), means, scales


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag_eval.fit_ranker", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="record the proposals for the answerable questions of SQuAD articles")
    c.add_argument("file", type=Path, help="SQuAD 2.0 JSON (.json or .json.gz)")
    c.add_argument("--articles", nargs="+", required=True, help="article titles (ones the reader was not trained on)")
    c.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    c.add_argument("--workdir", type=Path, help="where the articles' index is built")
    f = sub.add_parser("fit", help="fit the ranker and write it into the decider file")
    f.add_argument("proposals", nargs="+", type=Path, help="`collect` files")
    f.add_argument("--decider", type=Path, default=Path(__file__).resolve().parents[1] / "prompts" / DECIDER_FILE)
    args = p.parse_args(argv)
    if args.command == "collect":
        return collect(args.file, args.articles, args.out, args.workdir)
    print(json.dumps(fit(args.proposals, args.decider), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
