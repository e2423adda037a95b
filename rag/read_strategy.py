"""Answering led by the fitted reader: the reader proposes spans, the decider judges them, the model words.

The reader (rag/reader.py) reads more passages than are shown (`reader_k`), orders them by its best
span's margin over "no answer", and the best `k` of them are shown and cited. Every distinct span in a
shown passage is a proposal with its features (the reader's margin, its "no answer" score, the gap to
the next span, how many spans agree, the retrieval scores, the names/type/support checks); the decider
(rag/decider.py, fitted by `python -m rag_eval.fit_decider`) ranks them and gives its verdict on the
best before the generator runs, so a refusal costs no generation and carries a probability too. A span
that overlaps a better one of the same passage is not a proposal of its own; within `reader_span_union`
logits of it, it widens it to their union (on the three calibration articles, 1 logit: answerable F1
59.4 -> 57.4, containment 61.0 -> 65.4; on the held-out pair containment 60.1 -> 65.3, cited overlap
73.7 -> 75.2).

Extractive (`ReaderExtractive`): the best `reader_candidates` proposals are the only replies the grammar
allows ("[n] exact words"); with one (the default for small models: SmolLM2 choosing among 3 lowered
held-out F1 from 56.0 to 38.1, and with the 17-article reader from 62.8 to 25.4) the reply is that span
and the generator is not called.
Generative (`ReaderGenerative`, a bigger model or RAG_LLM_URL): the passages are shown with the best
proposals as candidate facts, the model writes cited sentences (checked as in rag/strategies.py), and the
decider's verdict on the reader's best span gates refusal and gives the confidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rag import contract
from rag.citations import Citation, Numbered, span_citation
from rag.decider import Decider, Verdict, weakest_of
from rag.evidence import is_instruction
from rag.prompts import Templates, gbnf_literal
from rag.question import Question
from rag.reader import Reader, Reading
from rag.refusal import Signals, assess, subject_of
from rag.retrieval import Passage
from rag.strategies import Generative, Outcome, Plan, _Prompting, _Shown, evidence_of, span_checks
from rag.text import words

if TYPE_CHECKING:
    from rag.settings import AnsweringSettings

GRAMMAR = "reader_choice.gbnf"
MAX_PROPOSALS = 10  # distinct spans judged per question (the reader gives up to 3 per passage)
GAP_CAP = 10.0  # the margin gap to the next span, when there is none


@dataclass(eq=False)
class Proposal:
    """A reader span inside a numbered passage (offsets relative to the passage text), with what the decider
    weighs about it."""

    n: int
    start: int
    end: int
    margin: float
    rank: int  # 0 = the reader's best
    score: float = 0.0
    features: dict = field(default_factory=dict)
    signals: Signals | None = None

    def quote(self, numbered: dict[int, Numbered]) -> str:
        return numbered[self.n].text[self.start : self.end]


class _ReaderLed:
    """What both reader-led strategies share: which passages are shown, the proposals and the verdict."""

    reader: Reader
    decider: Decider
    read_k: int
    candidates: int
    cut: float | None
    union: float

    def _setup(self, reader: Reader, answering: AnsweringSettings) -> None:
        self.reader = reader
        self.read_k = answering.reader_k
        self.candidates = answering.reader_candidates
        self.cut = answering.reader_threshold  # an optional hard floor on the margin; the decider decides
        self.union = answering.reader_span_union

    def fetch_k(self, k: int) -> int:
        return max(k, self.read_k)

    def select(self, question: Question, passages: list[Passage], k: int) -> tuple[list[Passage], Reading | None]:
        return reader_select(self.reader, question, passages, k)

    def proposals(
        self, question: Question, numbered: list[Numbered], reading: Reading | None, relevance: float = 0.0
    ) -> list[Proposal]:
        """Distinct spans inside passages still shown (after the budget), with their features, best first by
        the decider's ranking."""
        if reading is None:
            return []
        by_n = {item.n: item for item in numbered}
        out: list[Proposal] = []
        seen: set[str] = set()
        for rank, s in enumerate(reading.spans):
            n = s.passage + 1
            if (self.cut is not None and s.margin < self.cut) or n not in by_n:
                continue
            quote = by_n[n].text[s.start : s.end]
            key = " ".join(quote.lower().split())
            if not key or key in seen or is_instruction(quote):
                continue
            better = next((p for p in out if p.n == n and p.start < s.end and s.start < p.end), None)
            if better is not None:  # overlaps a better span of the same passage: close enough, it widens it
                if self.union and s.margin >= better.margin - self.union:
                    better.start, better.end = min(better.start, s.start), max(better.end, s.end)
                    seen.add(" ".join(by_n[n].text[better.start : better.end].lower().split()))
                continue
            seen.add(key)
            out.append(Proposal(n, s.start, s.end, s.margin, rank, s.score))
            if len(out) >= MAX_PROPOSALS:
                break
        for p in out:
            p.features, p.signals = span_features(question, p, out, reading, by_n, relevance)
        scores = self.decider.rank([p.features for p in out])
        order = sorted(range(len(out)), key=lambda i: -scores[i])
        return [out[i] for i in order]

    def judge(self, question: Question, picked: list[Proposal], by_n: dict[int, Numbered], relevance: float):
        """The decider's verdict on the picked proposals (a two-part question: on both, as sure as the weaker),
        the signals of the answer they make, and its evidence sentences."""
        evidence = []
        for p in picked:
            ev = evidence_of(by_n[p.n], *_sentence(by_n[p.n], p.start, p.end))
            if ev not in evidence:
                evidence.append(ev)
        if len(picked) == 1:
            signals = picked[0].signals
        else:  # the names of the question may be spread over the two sentences
            quotes = " ".join(p.quote(by_n) for p in picked)
            about = " ".join(dict.fromkeys(subject_of(by_n[p.n].passage.chunk) for p in picked))
            signals = assess(question, quotes, " ".join(ev.text for ev in evidence), relevance, about=about)
        verdict = weakest_of([self.decider.verdict(question, signals, p.features) for p in picked])
        signals = Signals(**{**signals.to_dict(), "extra": {}})  # a copy: the proposal's stays as it was
        signals.extra = {
            **verdict.features,
            "reader_rank": picked[0].rank,
            "reader_candidates": len(picked),
            "decider": self.decider.name,
        }
        return verdict, signals, evidence

    def parts_of(self, question: Question, props: list[Proposal]) -> int:
        return question.parts if len(props) >= question.parts else 1

    def judged_before(self, question, numbered, reading, relevance) -> tuple[list[Proposal], Verdict, Outcome | None]:
        """The ranked proposals and the verdict on the best; a refusing outcome when the decider refuses."""
        props = self.proposals(question, numbered, reading, relevance)
        if not props:
            nothing = self.decider.refuse("no_candidate")
            return props, nothing, Outcome.decided(nothing)
        by_n = {item.n: item for item in numbered}
        verdict, signals, evidence = self.judge(question, props[: self.parts_of(question, props)], by_n, relevance)
        if verdict.refused:
            return props, verdict, Outcome.decided(verdict, signals, evidence)
        return props, verdict, None


class ReaderExtractive(_ReaderLed, _Prompting):
    mode = "extractive"

    def __init__(self, templates: Templates, decider: Decider, reader: Reader, answering: AnsweringSettings):
        super().__init__(templates, decider, answering.max_answer_tokens)
        templates.require(GRAMMAR)
        self._setup(reader, answering)
        # one candidate: every reply is the reader's span (`Plan.fixed`), so the generator is never called
        self.generates = self.candidates > 1

    def plan(
        self, question: Question, numbered: list[Numbered], reading: Reading | None, relevance: float
    ) -> Plan | Outcome:
        props, _, refused = self.judged_before(question, numbered, reading, relevance)
        if refused is not None:
            return refused
        parts = self.parts_of(question, props)
        chosen = props[: max(self.candidates, parts)]
        by_n = {item.n: item for item in numbered}
        shown = [by_n[n] for n in sorted({p.n for p in chosen})]
        choices = " | ".join(gbnf_literal(f"{contract.marker(p.n)} {p.quote(by_n)}") for p in chosen)
        grammar = self.templates.render(GRAMMAR, choices=choices, parts=parts)
        fixed = None
        if len(chosen) == parts:  # nothing to choose: the reply is the reader's
            fixed = "; ".join(f"{contract.marker(p.n)} {p.quote(by_n)}" for p in chosen)
        max_tokens = max(self.generator_tokens(p.quote(by_n)) for p in chosen) * parts + 8
        plan = Plan(self.messages(question.text, shown), grammar, max_tokens, fixed=fixed)
        plan.proposals = chosen
        return plan

    @staticmethod
    def generator_tokens(quote: str) -> int:
        return len(quote) // 2 + 4  # generous: a token is at least two characters of English on average

    def finish(self, question: Question, raw: str, plan: Plan, numbered: list[Numbered], relevance: float) -> Outcome:
        by_n = {item.n: item for item in numbered}
        pieces = [x.strip() for x in re.split(r";\s*(?=\[)", raw.strip()) if x.strip()]
        picked: list[Proposal] = []
        for piece in pieces:
            match = next((p for p in plan.proposals if f"{contract.marker(p.n)} {p.quote(by_n)}" == piece), None)
            if match is None or match in picked:
                return self.refuse("unparsed")
            picked.append(match)
        if not picked:
            return self.refuse("unparsed")
        verdict, signals, evidence = self.judge(question, picked, by_n, relevance)
        signals.extra["reader_candidates"] = len(plan.proposals)
        if verdict.refused:
            return Outcome.decided(verdict, signals, evidence)
        citations: list[Citation] = [span_citation(by_n[p.n], p.start, p.end) for p in picked]
        answer = "; ".join(f"{c.quote.strip()} {contract.marker(c.n)}" for c in citations)
        return Outcome(answer, citations, evidence, signals, p_answer=verdict.p_answer)


class ReaderGenerative(_ReaderLed, Generative):
    """Generative mode with the reader: its best `reader_candidates` spans are shown as candidate facts, the
    decider's verdict on the best gates refusal before the model runs and is the answer's confidence."""

    def __init__(self, templates: Templates, decider: Decider, reader: Reader, answering: AnsweringSettings):
        super().__init__(templates, decider, answering)
        self._setup(reader, answering)

    def plan(
        self, question: Question, numbered: list[Numbered], reading: Reading | None, relevance: float
    ) -> Plan | Outcome:
        props, verdict, refused = self.judged_before(question, numbered, reading, relevance)
        if refused is not None:
            return refused
        by_n = {item.n: item for item in numbered}
        facts = [_Shown(p.n, p.quote(by_n)) for p in props[: self.candidates]]
        plan = super().plan(question, numbered, reading, relevance)
        plan.messages = self.messages(question.text, numbered, facts)
        plan.proposals = props[: self.candidates]
        plan.verdict = verdict
        return plan


def span_features(
    question: Question,
    p: Proposal,
    proposals: list[Proposal],
    reading: Reading,
    by_n: dict[int, Numbered],
    relevance: float,
) -> tuple[dict[str, float], Signals]:
    """What the decider weighs about one proposal, and the checks of its sentence."""
    item = by_n[p.n]
    quote = p.quote(by_n)
    s, e = _sentence(item, p.start, p.end)
    signals = assess(question, quote, item.text[s:e], relevance, about=subject_of(item.passage.chunk))
    below = [q.margin for q in proposals if q is not p and q.margin <= p.margin]
    key = " ".join(words(quote.lower()))
    agree = sum(1 for q in proposals if q is not p and _overlaps(key, " ".join(words(q.quote(by_n).lower()))))
    best_bm25 = max((x.passage.bm25 for x in by_n.values()), default=0.0)
    null = reading.null[p.n - 1] if 0 <= p.n - 1 < len(reading.null) else 0.0
    features = {
        "reader_margin": p.margin,
        "reader_score": p.score,
        "reader_null": float(null),
        "reader_gap": min(p.margin - max(below), GAP_CAP) if below else GAP_CAP,
        "reader_agree": float(min(agree, 3)),
        "relevance": relevance,
        "passage_dense": item.passage.dense,
        "passage_bm25": item.passage.bm25 / best_bm25 if best_bm25 > 0 else 0.0,
        "has_names": float(bool(signals.anchors)),
        "untyped_question": float(question.kind is None),
        **span_checks(question, quote, signals),
    }
    return {k: round(float(v), 4) for k, v in features.items()}, signals


def _overlaps(a: str, b: str) -> bool:
    """The same answer in other words' company: one normalised span inside the other."""
    return bool(a) and bool(b) and (f" {a} " in f" {b} " or f" {b} " in f" {a} ")


def _sentence(item: Numbered, start: int, end: int) -> tuple[int, int]:
    """The passage sentence(s) covering [start, end)."""
    spans = item.sentences() or [(0, len(item.text))]
    s = next((a for a, b in spans if a <= start < b), start)
    e = next((b for a, b in spans if a < end <= b), end)
    return min(s, start), max(e, end)


def reader_select(
    reader: Reader, question: Question, passages: list[Passage], k: int
) -> tuple[list[Passage], Reading | None]:
    """The `k` passages the reader rates best, and its reading re-indexed to them."""
    if not passages:
        return passages, None
    readable = [i for i, p in enumerate(passages) if not is_instruction(p.chunk.text)] or list(range(len(passages)))
    reading = reader.read(question.text, [passages[i].chunk.text for i in readable])
    order = [readable[i] for i in reading.passage_order()]
    order += [i for i in range(len(passages)) if i not in order]
    kept = order[:k]
    where = {old: new for new, old in enumerate(kept)}
    spans = [s for s in reading.spans if readable[s.passage] in where]
    remapped = Reading(
        [type(s)(where[readable[s.passage]], s.start, s.end, s.score, s.margin) for s in spans],
        [reading.null[readable.index(i)] if i in readable else 0.0 for i in kept],
    )
    return [passages[i] for i in kept], remapped
