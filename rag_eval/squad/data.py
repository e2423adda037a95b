"""The SQuAD 2.0 file read and checked, and the questions asked of it.

A bad file is refused here with what is wrong and where (an `EvalSetError`), before any model loads, so
the rest of the harness can trust every offset. Questions are picked per article by a seeded, stratified
sample: the same seed asks the same questions, and the answerable/unanswerable ratio (the refusal
decision this project has to get right) survives a small `--limit`.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import EvalSetError

Span = tuple[int, int]


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


def doc_span(doc: ArticleDoc, paragraph: int, gold: GoldAnswer) -> Span:
    """Where a gold answer of paragraph `paragraph` sits in the article's document."""
    start = doc.paragraphs[paragraph][0] + gold.start
    return start, start + len(gold.text)


def check_span(doc: ArticleDoc, span: Span, text: str, qid: str) -> None:
    if doc.text[span[0] : span[1]] != text:  # a bug in the layout, never bad input: parse_squad checked offsets
        raise AssertionError(f"{doc.doc_id}: span {span} of question {qid!r} is not {text!r}")


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


# --- questions -------------------------------------------------------------------------------------------
def _question(article: Article, doc: ArticleDoc, paragraph: int, qa: QA) -> SquadQuestion:
    spans = []
    for gold in qa.answers:
        span = doc_span(doc, paragraph, gold)
        check_span(doc, span, gold.text, qa.id)
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
