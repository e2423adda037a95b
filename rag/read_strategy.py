"""Extractive answering led by the fitted reader: the reader proposes spans, the generator picks one.

The reader (rag/reader.py) reads more passages than are shown (`reader_k`), orders them by its best
span's margin over "no answer", and the best `k` of them are shown and cited. The spans whose margin
clears the reader's fitted threshold are the only replies the grammar allows ("[n] exact words"); with
none, the question is refused before the generator runs, with the reason a reader can check. With one
candidate (`reader_candidates=1`, the default for small models) the reply is that span and the
generator is not called; with more, the generator chooses among them, so a bigger model can overrule
the reader's order through the same code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag import contract
from rag.citations import Citation, Numbered, span_citation
from rag.evidence import is_instruction
from rag.prompts import Templates, gbnf_literal
from rag.question import Question
from rag.reader import Reader, Reading
from rag.refusal import NO_CLEAR_ANSWER, RefusalPolicy, assess, plain_reason
from rag.retrieval import Passage
from rag.strategies import Outcome, Plan, _Prompting

if TYPE_CHECKING:
    from rag.settings import AnsweringSettings

GRAMMAR = "reader_choice.gbnf"


@dataclass(frozen=True)
class Proposal:
    """A reader span inside a numbered passage (offsets relative to the passage text)."""

    n: int
    start: int
    end: int
    margin: float
    rank: int  # 0 = the reader's best

    def quote(self, numbered: dict[int, Numbered]) -> str:
        return numbered[self.n].text[self.start : self.end]


class ReaderExtractive(_Prompting):
    mode = "extractive"

    def __init__(self, templates: Templates, policy: RefusalPolicy, reader: Reader, answering: AnsweringSettings):
        super().__init__(templates, policy, answering.max_answer_tokens)
        templates.require(GRAMMAR)
        self.reader = reader
        self.read_k = answering.reader_k
        self.candidates = answering.reader_candidates
        # one candidate: every reply is the reader's span (`Plan.fixed`), so the generator is never called
        self.generates = self.candidates > 1
        self.threshold = reader.threshold if answering.reader_threshold is None else answering.reader_threshold
        # the names rule, fitted with the threshold (rag_eval/fit_reader.py --refit)
        self.require_names = reader.require_names

    # --- which passages are shown ------------------------------------------------------------------
    def fetch_k(self, k: int) -> int:
        return max(k, self.read_k)

    def select(self, question: Question, passages: list[Passage], k: int) -> tuple[list[Passage], Reading | None]:
        return reader_select(self.reader, question, passages, k)

    # --- the reply ---------------------------------------------------------------------------------
    def proposals(self, question: Question, numbered: list[Numbered], reading: Reading | None) -> list[Proposal]:
        """Distinct spans over the threshold, best first, inside passages still shown (after the budget)."""
        if reading is None:
            return []
        by_n = {item.n: item for item in numbered}
        out: list[Proposal] = []
        seen: set[str] = set()
        for rank, s in enumerate(reading.spans):
            n = s.passage + 1
            if s.margin < self.threshold or n not in by_n:
                continue
            quote = by_n[n].text[s.start : s.end]
            key = " ".join(quote.lower().split())
            if not key or key in seen or is_instruction(quote):
                continue
            if any(p.n == n and p.start < s.end and s.start < p.end for p in out):
                continue  # overlaps a better span of the same passage
            seen.add(key)
            out.append(Proposal(n, s.start, s.end, s.margin, rank))
        return out

    def plan(self, question: Question, numbered: list[Numbered], reading: Reading | None = None) -> Plan | None:
        props = self.proposals(question, numbered, reading)
        if not props:
            return None
        parts = question.parts if len(props) >= question.parts else 1
        chosen = props[: max(self.candidates, parts)]
        by_n = {item.n: item for item in numbered}
        shown_ns = sorted({p.n for p in chosen})
        shown = [by_n[n] for n in shown_ns]
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

    def refusal_reason(
        self, question: Question, numbered: list[Numbered], reading: Reading | None, relevance: float
    ) -> str:
        """Why no span cleared the threshold, in words a reader can check (from the best span's signals)."""
        if reading is None or reading.best is None:
            return NO_CLEAR_ANSWER
        best = reading.best
        item = next((x for x in numbered if x.n == best.passage + 1), None)
        if item is None:
            return NO_CLEAR_ANSWER
        sentence = _sentence(item, best.start, best.end)
        signals = assess(question, item.text[best.start : best.end], item.text[sentence[0] : sentence[1]], relevance)
        if signals.missing_anchors:
            return plain_reason("missing_names", signals)
        if not signals.typed:
            return plain_reason("typed", signals)
        return NO_CLEAR_ANSWER

    def finish(self, question: Question, raw: str, plan: Plan, numbered: list[Numbered], relevance: float) -> Outcome:
        by_n = {item.n: item for item in numbered}
        pieces = [x.strip() for x in re.split(r";\s*(?=\[)", raw.strip()) if x.strip()]
        picked: list[Proposal] = []
        for piece in pieces:
            match = next((p for p in plan.proposals if f"{contract.marker(p.n)} {p.quote(by_n)}" == piece), None)
            if match is None or match in picked:
                return Outcome(reason=NO_CLEAR_ANSWER)
            picked.append(match)
        if not picked:
            return Outcome(reason=NO_CLEAR_ANSWER)
        citations: list[Citation] = [span_citation(by_n[p.n], p.start, p.end) for p in picked]
        evidence = []
        for p in picked:
            s, e = _sentence(by_n[p.n], p.start, p.end)
            base = by_n[p.n].passage.chunk.start
            ev = contract.Evidence(
                n=p.n, source=by_n[p.n].passage.chunk.doc_id, start=base + s, end=base + e, text=by_n[p.n].text[s:e]
            )
            if ev not in evidence:
                evidence.append(ev)
        quotes = " ".join(c.quote for c in citations)
        signals = assess(question, quotes, " ".join(ev.text for ev in evidence), relevance)
        signals.extra = {
            "reader_margin": round(picked[0].margin, 4),
            "reader_threshold": round(self.threshold, 4),
            "reader_rank": picked[0].rank,
            "reader_candidates": len(plan.proposals),
        }
        p_answer = self.reader.p_answer(picked[0].margin)
        if p_answer is not None:
            signals.extra["p_answer"] = round(p_answer, 4)
        if self.require_names and signals.missing_anchors:
            # a name of the question absent from the cited sentence: a false premise or another subject
            return Outcome(reason=plain_reason("missing_names", signals), signals=signals)
        answer = "; ".join(f"{c.quote.strip()} {contract.marker(c.n)}" for c in citations)
        return Outcome(answer, citations, evidence, signals)


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
