"""SQuAD 2.0 evaluation: measure answering on text nobody on the project wrote.

The hand-written questions in eval/ were written by people who knew the seed documents and the
pipeline; SQuAD 2.0 was not. Each article becomes one plain-text document (paragraphs separated by a
blank line), so every gold answer is an exact span of a document the real ingest indexes, and a cited
span can be checked against it. Half the questions are unanswerable but look answerable from the same
paragraph, which is exactly the refusal decision this project has to get right.

Scoring follows the official evaluate-v2.0.py (normalisation, EM, F1, "" as the gold of an
unanswerable question and as the prediction of a refusal), plus what SQuAD does not measure: whether
the cited span overlaps a gold span, where retrieval ranked the gold passage, and how a system that
refuses everything would score on the same questions (the floor any refusal policy must beat), and
whether the confidence the pipeline states is calibrated on articles it was not fitted on (expected
calibration error and a reliability chart; an answer counts as right at F1 >= 0.5, the target the
reader's confidence is fitted for, a refusal when the question is unanswerable).

Only the standard library and numpy are imported at module level; the project's models, pydantic and
matplotlib are imported inside the functions that need them, so importing this module is instant.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import random
import re
import statistics
import string
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from rag.errors import EvalSetError, RagError
from rag_eval.stats import calibration, percentile

Span = tuple[int, int]
SEPARATOR = "\n\n"
HITS = (1, 3, 5)
RIGHT_F1 = 0.5  # an answer this close to a gold one is right, for calibration (rag_eval.fit_reader's target)
WORST = 5  # failures of each kind shown in the report


# --- the data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GoldAnswer:
    text: str
    start: int  # offset in the paragraph


@dataclass(frozen=True)
class QA:
    id: str
    question: str
    answers: tuple[GoldAnswer, ...]
    is_impossible: bool
    plausible: tuple[GoldAnswer, ...] = ()


@dataclass(frozen=True)
class Paragraph:
    context: str
    qas: tuple[QA, ...]


@dataclass(frozen=True)
class Article:
    title: str
    paragraphs: tuple[Paragraph, ...]

    @property
    def n_questions(self) -> int:
        return sum(len(p.qas) for p in self.paragraphs)


@dataclass(frozen=True)
class ArticleDoc:
    """An article written as one document: `text[paragraphs[i][0]:paragraphs[i][1]] == context i`."""

    title: str
    doc_id: str  # file name inside the documents folder, as the index names it
    text: str
    paragraphs: tuple[Span, ...]


@dataclass(frozen=True)
class SquadQuestion:
    id: str
    article: str
    doc_id: str
    question: str
    answers: list[str]  # distinct gold texts; empty when unanswerable
    spans: list[Span]  # gold answers as document spans: doc_text[start:end] == an answer
    answerable: bool
    paragraph: Span  # the paragraph the question was written from, as a document span
    plausible: list[str] = field(default_factory=list)  # for unanswerable: what a careless reader would say


# --- loading -------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        return json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise EvalSetError(f"{path}: no such file") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise EvalSetError(f"{path}: cannot read ({exc})") from None
    except UnicodeDecodeError as exc:
        raise EvalSetError(f"{path}: not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise EvalSetError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def _expect(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{where} should be a {kind.__name__}, not {type(value).__name__}")
    return value


def _gold(raw: Any, context: str, where: str) -> GoldAnswer:
    _expect(raw, dict, where)
    text = _expect(raw.get("text"), str, f"{where}.text")
    start = _expect(raw.get("answer_start"), int, f"{where}.answer_start")
    if context[start : start + len(text)] != text:
        raise ValueError(f"{where}: {text!r} is not at offset {start} of its paragraph")
    return GoldAnswer(text, start)


def _qa(raw: Any, context: str, where: str) -> QA:
    _expect(raw, dict, where)
    qid = _expect(raw.get("id"), str, f"{where}.id")
    where = f"question {qid!r}"
    question = _expect(raw.get("question"), str, f"{where}.question")
    impossible = _expect(raw.get("is_impossible", False), bool, f"{where}.is_impossible")
    answers = _expect(raw.get("answers", []), list, f"{where}.answers")
    plausible = _expect(raw.get("plausible_answers", []), list, f"{where}.plausible_answers")
    if not impossible and not answers:
        raise ValueError(f"{where} is answerable but has no answers")
    if impossible and answers:
        raise ValueError(f"{where} is marked impossible but has answers")
    return QA(
        id=qid,
        question=question,
        answers=tuple(_gold(a, context, f"{where}.answers[{i}]") for i, a in enumerate(answers)),
        is_impossible=impossible,
        plausible=tuple(_gold(a, context, f"{where}.plausible_answers[{i}]") for i, a in enumerate(plausible)),
    )


def _article(raw: Any, n: int) -> Article:
    _expect(raw, dict, f"data[{n}]")
    title = _expect(raw.get("title"), str, f"data[{n}].title")
    paragraphs = []
    for i, p in enumerate(_expect(raw.get("paragraphs"), list, f"article {title!r}.paragraphs")):
        where = f"article {title!r}, paragraph {i}"
        _expect(p, dict, where)
        context = _expect(p.get("context"), str, f"{where}.context")
        qas = _expect(p.get("qas", []), list, f"{where}.qas")
        paragraphs.append(Paragraph(context, tuple(_qa(q, context, f"{where}, qas[{j}]") for j, q in enumerate(qas))))
    return Article(title, tuple(paragraphs))


def parse_squad(data: Any) -> list[Article]:
    """Articles from the official SQuAD JSON; a ValueError says what is wrong and where."""
    _expect(data, dict, "the top level")
    articles = [_article(a, n) for n, a in enumerate(_expect(data.get("data"), list, "data"))]
    titles: set[str] = set()
    ids: set[str] = set()
    for article in articles:
        if article.title in titles:
            raise ValueError(f"article {article.title!r} appears twice")
        titles.add(article.title)
        for p in article.paragraphs:
            for qa in p.qas:
                if qa.id in ids:
                    raise ValueError(f"question id {qa.id!r} appears twice")
                ids.add(qa.id)
    if not articles:
        raise ValueError("no articles in data")
    return articles


def load_squad(path: Path | str, articles: list[str] | None = None) -> list[Article]:
    """The articles of a SQuAD 2.0 file (.json or .json.gz), all or those named (in the order named)."""
    path = Path(path)
    try:
        loaded = parse_squad(_read_json(path))
    except ValueError as exc:
        raise EvalSetError(f"{path}: not a SQuAD 2.0 file: {exc}") from None
    if articles is None:
        return loaded
    by_title = {a.title: a for a in loaded}
    wanted = list(dict.fromkeys(articles))
    unknown = [t for t in wanted if t not in by_title]
    if unknown or not wanted:
        what = f"unknown article(s) {', '.join(unknown)}" if unknown else "no articles selected"
        raise EvalSetError(f"{path}: {what}; known: {', '.join(by_title)}")
    return [by_title[t] for t in wanted]


# --- documents -------------------------------------------------------------------------------------------
def safe_name(title: str) -> str:
    """A file name stem for any title: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", title).strip("._") or "article"


def layout(articles: Sequence[Article]) -> dict[str, ArticleDoc]:
    """Each article as one document text, with every paragraph's span; nothing is written."""
    docs: dict[str, ArticleDoc] = {}
    used: set[str] = set()
    for article in articles:
        stem, n = safe_name(article.title), 1
        while (doc_id := f"{stem}.txt" if n == 1 else f"{stem}-{n}.txt").lower() in used:
            n += 1
        used.add(doc_id.lower())
        spans, offset = [], 0
        for p in article.paragraphs:
            spans.append((offset, offset + len(p.context)))
            offset += len(p.context) + len(SEPARATOR)
        text = SEPARATOR.join(p.context for p in article.paragraphs)
        doc = ArticleDoc(article.title, doc_id, text, tuple(spans))
        for i, p in enumerate(article.paragraphs):
            for qa in p.qas:
                for gold in qa.answers + qa.plausible:
                    _check_span(doc, _doc_span(doc, i, gold), gold.text, qa.id)
        docs[article.title] = doc
    return docs


def _doc_span(doc: ArticleDoc, paragraph: int, gold: GoldAnswer) -> Span:
    start = doc.paragraphs[paragraph][0] + gold.start
    return start, start + len(gold.text)


def _check_span(doc: ArticleDoc, span: Span, text: str, qid: str) -> None:
    if doc.text[span[0] : span[1]] != text:  # a bug in the layout, never bad input: parse_squad checked offsets
        raise AssertionError(f"{doc.doc_id}: span {span} of question {qid!r} is not {text!r}")


def write_documents(articles: Sequence[Article], folder: Path | str) -> dict[str, ArticleDoc]:
    """Write each article as `<safe title>.txt` (UTF-8, paragraphs separated by one blank line)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    docs = layout(articles)
    for doc in docs.values():
        (folder / doc.doc_id).write_bytes(doc.text.encode("utf-8"))  # bytes: no newline translation
    return docs


# --- questions -------------------------------------------------------------------------------------------
def _question(article: Article, doc: ArticleDoc, paragraph: int, qa: QA) -> SquadQuestion:
    spans = []
    for gold in qa.answers:
        span = _doc_span(doc, paragraph, gold)
        _check_span(doc, span, gold.text, qa.id)
        spans.append(span)
    return SquadQuestion(
        id=qa.id,
        article=article.title,
        doc_id=doc.doc_id,
        question=qa.question,
        answers=list(dict.fromkeys(g.text for g in qa.answers)),
        spans=list(dict.fromkeys(spans)),
        answerable=not qa.is_impossible,
        paragraph=doc.paragraphs[paragraph],
        plausible=list(dict.fromkeys(g.text for g in qa.plausible)),
    )


def stratified_sample(items: list[SquadQuestion], limit: int, rng: random.Random) -> list[SquadQuestion]:
    """`limit` items keeping the answerable/unanswerable ratio (both kept when limit >= 2), in file order."""
    if limit >= len(items):
        return list(items)
    answerable = [i for i, q in enumerate(items) if q.answerable]
    unanswerable = [i for i, q in enumerate(items) if not q.answerable]
    n_ans = round(limit * len(answerable) / len(items))
    if limit >= 2 and answerable and unanswerable:
        n_ans = min(max(n_ans, 1), limit - 1)
    n_ans = min(n_ans, len(answerable))
    n_un = min(limit - n_ans, len(unanswerable))
    n_ans = limit - n_un
    chosen = rng.sample(answerable, n_ans) + rng.sample(unanswerable, n_un)
    return [items[i] for i in sorted(chosen)]


def questions(
    articles: Sequence[Article],
    docs: dict[str, ArticleDoc],
    limit_per_article: int | None = None,
    seed: int = 0,
) -> list[SquadQuestion]:
    """Every question (or a seeded, stratified sample of `limit_per_article` per article), in file order."""
    if limit_per_article is not None and limit_per_article < 1:
        raise ValueError("limit_per_article must be at least 1")
    out: list[SquadQuestion] = []
    for article in articles:
        doc = docs[article.title]
        items = [_question(article, doc, i, qa) for i, p in enumerate(article.paragraphs) for qa in p.qas]
        if limit_per_article is not None:
            items = stratified_sample(items, limit_per_article, random.Random(f"{seed}:{article.title}"))
        out.extend(items)
    return out


# --- official SQuAD v2 scoring -----------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (evaluate-v2.0.py, verbatim)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def get_tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def _golds(golds: Sequence[str]) -> list[str]:
    """As the official script: golds that normalise to nothing are dropped; none left means "no answer"."""
    return [g for g in golds if normalize_answer(g)] or [""]


def _f1_one(pred: str, gold: str) -> float:
    gold_toks, pred_toks = get_tokens(gold), get_tokens(pred)
    if not gold_toks or not pred_toks:
        return float(gold_toks == pred_toks)
    same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_toks), same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def exact(pred: str, golds: Sequence[str]) -> int:
    """1 when the normalised prediction equals some normalised gold; golds [] (unanswerable) means ""."""
    return max(int(normalize_answer(pred) == normalize_answer(g)) for g in _golds(golds))


def f1(pred: str, golds: Sequence[str]) -> float:
    """Token F1 against the best gold (official SQuAD v2); golds [] (unanswerable) means ""."""
    return max(_f1_one(pred, g) for g in _golds(golds))


def contains(pred: str, golds: Sequence[str]) -> bool:
    """Some normalised gold appears in the normalised prediction as whole tokens ("10" is not in "2010")."""
    pred_toks = get_tokens(pred)
    for gold in _golds(golds):
        g = get_tokens(gold)
        if not g:
            if not pred_toks:
                return True
            continue
        if any(pred_toks[i : i + len(g)] == g for i in range(len(pred_toks) - len(g) + 1)):
            return True
    return False


# --- scoring one answer ---------------------------------------------------------------------------------------
def as_dict(answer: Any) -> dict:
    """An answer in the project's contract as a dict: a dict, or anything with model_dump()/to_dict().

    An object whose dict leaves out its `.passages` (answers from before the contract) gets them added, so
    retrieval can still be scored.
    """
    if isinstance(answer, dict):
        return answer
    for method in ("model_dump", "to_dict"):
        if callable(getattr(answer, method, None)):
            out = getattr(answer, method)()
            if "passages" not in out and isinstance(getattr(answer, "passages", None), list):
                out = {**out, "passages": [as_dict(p) for p in answer.passages]}
            return out
    raise TypeError(f"cannot read an answer from {type(answer).__name__}")


def prediction(answer: dict) -> str:
    """What the reader sees as the answer: the text without [n] markers, or "" for a refusal."""
    from rag.contract import strip_markers

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
    answer = as_dict(answer)
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


def error_record(question: SquadQuestion, error: Exception, seconds: float) -> dict:
    """A question the pipeline rejected (a RagError): kept in the results, left out of the metrics."""
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
        "confidence": None,
        "seconds": seconds,
        "error": f"{type(error).__name__}: {error}",
    }


# --- metrics ---------------------------------------------------------------------------------------------------
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
    return calibration((r["confidence"], was_right(r)) for r in records
                       if r.get("error") is None and r.get("confidence") is not None)  # fmt: skip


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


# --- running ---------------------------------------------------------------------------------------------------
def run(
    pipeline: Any,
    questions: Sequence[SquadQuestion],
    k: int | None,
    progress: Callable[[Iterable], Iterable] = iter,
) -> list[dict]:
    """Ask every question through `pipeline.ask(question, k)` and score it; a RagError becomes an error row."""
    records = []
    for q in progress(questions):
        t0 = time.perf_counter()
        try:
            answer = as_dict(pipeline.ask(q.question, k))
        except RagError as exc:
            records.append(error_record(q, exc, time.perf_counter() - t0))
            continue
        records.append(score(q, answer, time.perf_counter() - t0))
    return records


def results(records: list[dict], config: dict) -> dict:
    """What results.json holds and the report and chart read: config, metrics, every record."""
    return {"config": config, "metrics": metrics(records), "records": records}


# --- report ----------------------------------------------------------------------------------------------------
OVERALL_ROWS = (
    ("answerable_em", "answerable EM"),
    ("answerable_f1", "answerable F1"),
    ("em", "EM (all, SQuAD v2)"),
    ("f1", "F1 (all, SQuAD v2)"),
    ("containment", "gold contained in answer (answerable)"),
    ("refusal_recall", "refusal recall (unanswerable refused)"),
    ("false_refusal_rate", "false refusals (answerable refused)"),
    ("cited_overlap", "cited span overlaps gold (answered answerable)"),
    ("hit@1", "retrieval hit@1 (answerable)"),
    ("hit@3", "retrieval hit@3 (answerable)"),
    ("hit@5", "retrieval hit@5 (answerable)"),
    ("median_seconds", "median seconds"),
    ("p95_seconds", "p95 seconds"),
    ("ece", "expected calibration error (questions with a confidence)"),
)
ARTICLE_COLUMNS = (
    ("answerable_em", "ans EM"),
    ("answerable_f1", "ans F1"),
    ("f1", "F1"),
    ("containment", "contained"),
    ("refusal_recall", "refusal recall"),
    ("false_refusal_rate", "false refusals"),
    ("cited_overlap", "cited overlap"),
    ("hit@1", "hit@1"),
    ("hit@5", "hit@5"),
    ("median_seconds", "median s"),
)


def fmt(value: float | None, name: str) -> str:
    if value is None:
        return "–"
    if name == "ece":
        return f"{value:.3f}"
    return f"{value:.2f}" if name.endswith("seconds") else f"{100 * value:.1f}"


def md_cell(text: object, limit: int = 120) -> str:
    s = " ".join(str(text).split()).replace("|", "\\|")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _overall_table(m: dict) -> str:
    ours, base = m["overall"], m["baseline"]["overall"]
    rows = ["| metric | pipeline | refuse everything |", "| --- | ---: | ---: |"]
    rows += [f"| {label} | {fmt(ours[key], key)} | {fmt(base[key], key)} |" for key, label in OVERALL_ROWS]
    return "\n".join(rows)


def _article_table(m: dict) -> str:
    head = "| article | n | ans / unans | errors | " + " | ".join(label for _, label in ARTICLE_COLUMNS) + " |"
    rows = [head, "| --- | ---: | ---: | ---: |" + " ---: |" * len(ARTICLE_COLUMNS)]
    groups = {**m["per_article"], "**all**": m["overall"]}
    for name, s in groups.items():
        cells = " | ".join(fmt(s[key], key) for key, _ in ARTICLE_COLUMNS)
        counts = f"{s['questions']} | {s['answerable']} / {s['unanswerable']} | {s['errors']}"
        rows.append(f"| {md_cell(name)} | {counts} | {cells} |")
    base = m["baseline"]["overall"]
    cells = " | ".join(fmt(base[key], key) for key, _ in ARTICLE_COLUMNS)
    counts = f"{base['questions']} | {base['answerable']} / {base['unanswerable']} | {base['errors']}"
    rows.append(f"| *refuse everything* | {counts} | {cells} |")
    return "\n".join(rows)


def worst_failures(records: Sequence[dict], n: int = WORST) -> dict[str, list[dict]]:
    """A few of each kind of failure, worst first (deterministic: by F1, then id)."""
    scored = [r for r in records if r.get("error") is None]
    wrong = sorted(
        (r for r in scored if r["answerable"] and not r["refused"] and not r["em"]),
        key=lambda r: (r["f1"], bool(r["contains"]), r["id"]),
    )
    return {
        "wrong answers (answerable, answered, not exact)": wrong[:n],
        "answered an unanswerable question": sorted(
            (r for r in scored if not r["answerable"] and not r["refused"]), key=lambda r: r["id"]
        )[:n],
        "false refusals (answerable, refused; retrieved first)": sorted(
            (r for r in scored if r["answerable"] and r["refused"]),
            key=lambda r: (r["rank"] is None, r["rank"] or 0, r["id"]),
        )[:n],
        "errors": [r for r in records if r.get("error") is not None][:n],
    }


def _failures_section(records: Sequence[dict]) -> str:
    parts = []
    for kind, rows in worst_failures(records).items():
        if not rows:
            continue
        table = ["| id | article | question | gold | prediction | F1 | rank |", "|" + " --- |" * 5 + " ---: | ---: |"]
        for r in rows:
            gold = " / ".join(r["golds"]) if r["golds"] else "(unanswerable)"
            refusal = f"(refused: {r.get('reason') or 'no reason given'})"
            pred = r["error"] or (refusal if r["refused"] else r["prediction"])
            f1_cell = "–" if r["f1"] is None else f"{100 * r['f1']:.0f}"
            table.append(
                f"| {r['id']} | {md_cell(r['article'], 30)} | {md_cell(r['question'])} | {md_cell(gold, 80)} "
                f"| {md_cell(pred, 100)} | {f1_cell} | {r['rank'] if r['rank'] is not None else '–'} |"
            )
        parts.append(f"### {kind[0].upper()}{kind[1:]}\n\n" + "\n".join(table))
    return "\n\n".join(parts) if parts else "No failures."


def render_report(results: dict) -> str:
    """Markdown: the run's settings, the overall table beside the refuse-everything baseline, per article, failures."""
    c, m = results.get("config", {}), results["metrics"]
    settings = ", ".join(f"{key} {value}" for key, value in (c.get("settings") or {}).items())
    lines = [
        "# SQuAD 2.0 evaluation",
        f"- file: `{c.get('file', '?')}`; articles: {', '.join(m['per_article']) or 'none'}\n"
        f"- questions: {m['overall']['questions']} ({m['overall']['answerable']} answerable, "
        f"{m['overall']['unanswerable']} unanswerable, {m['overall']['errors']} errors); "
        f"limit per article {c.get('limit') or 'none'}, seed {c.get('seed', '?')}; k = {c.get('k', '?')}"
        + (f"\n- settings: {settings}" if settings else "")
        + (f"\n- started {c['started']}, took {c['duration_seconds']} s" if "started" in c else ""),
        "## Overall\n\nScores in %, official SQuAD v2 normalisation; a refusal is the prediction \"\". "
        "EM/F1 over all questions reward refusing unanswerable ones, so compare them with the "
        "refuse-everything column. Error rows (questions the pipeline rejected) are not scored.\n\n"
        + _overall_table(m),
        "## Per article\n\n" + _article_table(m),
        "## Calibration\n\n" + _calibration_section(m),
        "## Worst failures\n\n" + _failures_section(results["records"]),
    ]
    return "\n\n".join(lines) + "\n"


def _calibration_section(m: dict) -> str:
    """ECE and the reliability table of the whole run (held-out articles), and how many questions it counts."""
    c = m.get("calibration") or calibration([])
    scored = m["overall"]["questions"] - m["overall"]["errors"]
    if not c["n"]:
        return f"No answer stated a confidence ({scored} scored questions): nothing to calibrate."
    rows = [
        f"Expected calibration error **{c['ece']:.3f}** over {c['n']} of {scored} scored questions (the others "
        f"stated no confidence and are left out); 10 equal-width bins, weighted by their answers. An answer is "
        f"right at F1 >= {RIGHT_F1}, a refusal when the question is unanswerable. Chart: `{RELIABILITY_CHART}`.",
        "",
        "| confidence | answers | mean confidence | accuracy |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows += [f"| {b['lo']:.1f}–{b['hi']:.1f} | {b['n']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |"
             for b in c["bins"] if b["n"]]  # fmt: skip
    return "\n".join(rows)


RELIABILITY_CHART = "reliability.png"
CHART_METRICS = (
    ("answerable_f1", "answerable F1"),
    ("containment", "contained"),
    ("refusal_recall", "refusal recall"),
    ("false_refusal_rate", "false refusals"),
)


def write_chart(results: dict, path: Path | str) -> None:
    """Per-article grouped bars of answerable F1, containment, refusal recall and false refusals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = results["metrics"]
    groups = {"all": m["overall"], **m["per_article"]}
    width = 0.8 / len(CHART_METRICS)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(groups) + 2), 4.5))
    for i, (key, label) in enumerate(CHART_METRICS):
        offset = (i - (len(CHART_METRICS) - 1) / 2) * width
        xs = [x + offset for x in range(len(groups))]
        ax.bar(xs, [np.nan if g[key] is None else g[key] for g in groups.values()], width, label=label)
    ax.set_xticks(range(len(groups)), list(groups), rotation=25, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share")
    ax.set_title(f"SQuAD 2.0: {m['overall']['questions']} questions, k = {results.get('config', {}).get('k', '?')}")
    ax.legend(fontsize=8, ncol=len(CHART_METRICS), loc="lower center", bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120)
    plt.close(fig)


def write_reliability_chart(results: dict, path: Path | str) -> bool:
    """The reliability chart of the run (rag_eval.report draws it); False, and nothing written, when no answer
    stated a confidence."""
    from rag_eval.report import write_reliability_chart as draw

    c = results["metrics"].get("calibration")
    if not c or not c["n"]:
        return False
    draw(c, path, f"SQuAD 2.0 (held out): {results['metrics']['overall']['questions']} questions")
    return True


# --- index and command line ---------------------------------------------------------------------------------------
def build_index(
    articles: Sequence[Article],
    workdir: Path | str,
    settings_overrides: dict | None = None,
    embedder: Any = None,
):
    """Write the articles to workdir/docs, ingest them into workdir/index; return the settings to load from.

    Documents left in workdir/docs by an earlier run with other articles are removed so the index holds
    exactly these articles (ingest is incremental: unchanged documents are not embedded again).
    """
    from rag.pipeline import load_embedder, run_ingest
    from rag.settings import build_settings

    workdir = Path(workdir)
    docs_dir, index_dir = workdir / "docs", workdir / "index"
    docs = write_documents(articles, docs_dir)
    keep = {d.doc_id for d in docs.values()}
    for path in docs_dir.rglob("*"):
        if path.is_file() and path.suffix.lower() == ".txt" and path.relative_to(docs_dir).as_posix() not in keep:
            path.unlink()
    settings = build_settings({**(settings_overrides or {}), "seeds_dir": docs_dir, "index_dir": index_dir})
    run_ingest(settings, embedder or load_embedder(settings))
    return settings


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(2, f"{self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m rag_eval.squad", description="Evaluate the real pipeline on SQuAD 2.0 articles.")
    p.add_argument("file", type=Path, help="SQuAD 2.0 JSON file (.json or .json.gz)")
    p.add_argument("--articles", nargs="+", metavar="TITLE", help="article titles to use (default: all)")
    p.add_argument("--limit", type=int, help="questions per article (stratified sample; default: all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--k", type=int, help="passages shown to the model (default: the k setting)")
    p.add_argument("--out", type=Path, required=True, help="folder for results.json, report.md, chart.png")
    p.add_argument("--workdir", type=Path, help="folder for the documents and index (default: OUT/work)")
    return p


def _fail(message: str, code: int) -> int:
    print(f"python -m rag_eval.squad: {message}", file=sys.stderr)
    return code


def _progress(items: Sequence) -> Iterable:
    try:
        from tqdm import tqdm
    except ImportError:
        return iter(items)
    return tqdm(items, desc="asking", unit="q")


def _settings_config(settings) -> dict:
    keys = ("model", "model_path", "mode", "k", "chunk_size", "chunk_overlap", "min_support", "min_relevance")
    values = {key: getattr(settings, key) for key in keys}
    return {key: str(v) if isinstance(v, Path) else v for key, v in values.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rag_eval.squad FILE --articles A B --limit N --out DIR [--k K]`: index, ask, score, report."""
    args = _parser().parse_args(argv)
    return evaluate(args.file, args.articles, args.limit, args.seed, args.out, args.workdir, {"k": args.k})


def evaluate(
    file: Path,
    titles: list[str] | None,
    limit: int | None,
    seed: int,
    out: Path,
    workdir: Path | None = None,
    overrides: dict | None = None,
    progress=None,
) -> int:
    """Index the articles together, ask their questions through the real pipeline, write results, report, chart.

    `overrides` are settings given on the command line (RAG_* variables apply too). Also `rag eval --squad`.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    k = overrides.get("k")
    if limit is not None and limit < 1:
        return _fail(f"--limit must be at least 1, not {limit}", 2)
    if k is not None and k < 1:
        return _fail(f"--k must be at least 1, not {k}", 2)
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out} is a file, not a folder", 2)
    try:
        articles = load_squad(file, titles)
        from rag.settings import build_settings

        settings = build_settings(overrides)  # a bad flag or RAG_* variable fails before any model loads
    except RagError as exc:
        return _fail(exc.describe(), 2)

    from rag.pipeline import Pipeline, load_embedder

    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    try:
        embedder = load_embedder(settings)
        index_overrides = {n: v for n, v in overrides.items() if n not in ("seeds_dir", "index_dir")}
        settings = build_index(articles, workdir or out / "work", index_overrides, embedder=embedder)
        pipeline = Pipeline.load(settings, embedder=embedder, with_generator=True)
        asked = questions(articles, layout(articles), limit, seed)
        records = run(pipeline, asked, settings.k, progress or _progress)
    except RagError as exc:
        return _fail(exc.describe(), 1)
    config = {
        "file": str(file),
        "articles": [a.title for a in articles],
        "limit": limit,
        "seed": seed,
        "k": settings.k,
        "n_questions": len(asked),
        "settings": _settings_config(settings),
        "started": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - t0, 1),
    }
    result = results(records, config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), "utf-8")
    (out / "report.md").write_text(render_report(result), "utf-8")
    write_chart(result, out / "chart.png")
    reliability = write_reliability_chart(result, out / RELIABILITY_CHART)
    print(_overall_table(result["metrics"]))
    print(f"wrote {out / 'results.json'}, report.md, chart.png" + (f" and {RELIABILITY_CHART}" if reliability else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
