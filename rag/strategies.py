"""How each answer mode turns numbered passages into a prompt and the model's reply into an answer.

Extractive (small models): the pipeline picks the evidence sentence (rag/evidence.py), a grammar
lets the model copy only consecutive words of it, and the copied span is mapped to exact offsets;
a typed answer the model copied wrongly is repaired from the sentence's typed phrase.
Generative (>= 1B parameters): a grammar closes every sentence with a citation of a shown passage;
each sentence is checked against its passage and unsupported ones are dropped.
Both end in an `Outcome`; the decider (rag/decider.py), built once by the pipeline, ranks the candidates
and gives every verdict and every refusal reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from rag import contract
from rag.answer_types import extend_typed, find_typed, has_type
from rag.citations import (
    Citation,
    Numbered,
    extractive_grammar,
    generative_grammar,
    parse_extractive,
    span_citation,
    split_claims,
)
from rag.decider import Cause, Decider, Verdict, weakest_of
from rag.embedding import Embedder
from rag.evidence import Candidate, is_instruction, select_sentences
from rag.lexicon import REPAIRABLE_TYPES, STOPWORDS, STRICT_TYPES
from rag.prompts import Templates, TemplateSet
from rag.question import Question
from rag.refusal import Signals, assess, subject_of
from rag.spans import tidy
from rag.text import stem, words

if TYPE_CHECKING:
    from rag.settings import AnsweringSettings


@dataclass
class Plan:
    """What goes to the model for one question."""

    messages: list[dict]
    grammar: str | None
    max_tokens: int
    evidence: Candidate | None = None  # extractive: the best candidate sentence
    shown: list[Candidate] = field(default_factory=list)  # extractive: the sentences the model may copy from
    ranked: list[Candidate] = field(default_factory=list)  # extractive: every candidate, best first
    fixed: str | None = None  # the reply when there is nothing to choose (the generator is not called)
    proposals: list = field(default_factory=list)  # reader-led: the spans the grammar allows
    verdict: Verdict | None = None  # reader-led generative: the decider's verdict on the reader's best span


@dataclass
class Outcome:
    """The checked result of one reply: an answer with citations, or the reason it cannot be given."""

    answer: str = ""
    citations: list[Citation] = field(default_factory=list)
    evidence: list[contract.Evidence] = field(default_factory=list)
    signals: Signals | None = None
    reason: str | None = None  # set: refuse
    dropped: list[str] = field(default_factory=list)
    p_answer: float | None = None  # the decider's P(the answer is right), when it gives one
    p_unanswerable: float | None = None  # the decider's P(no answer in the documents), when it gives one

    @classmethod
    def decided(cls, verdict: Verdict, signals: Signals | None = None, evidence: list | None = None, **kw) -> Outcome:
        """The outcome of a refusing verdict; its features become the signals' `extra`."""
        if signals is not None:
            signals.extra = {**signals.extra, **verdict.features}
        return cls(
            signals=signals, reason=verdict.reason, evidence=evidence or [], p_answer=verdict.p_answer,
            p_unanswerable=verdict.p_unanswerable, **kw,
        )  # fmt: skip


class Strategy(Protocol):
    mode: str
    max_tokens: int
    generates: bool  # False: no answer calls the generator (the reader's span is the reply)

    def messages(self, question: str, shown: list) -> list[dict]: ...

    def fetch_k(self, k: int) -> int:
        """Passages to retrieve so that `k` can be shown."""

    def select(self, question: Question, passages: list, k: int) -> tuple[list, object | None]:
        """The `k` passages to show, and what was learnt choosing them (the reader's reading), if anything."""

    def plan(
        self, question: Question, numbered: list[Numbered], reading: object | None, relevance: float
    ) -> Plan | Outcome:
        """What to ask the model, or the refusal decided before it runs (nothing can serve as evidence)."""

    def finish(
        self, question: Question, raw: str, plan: Plan, numbered: list[Numbered], relevance: float
    ) -> Outcome: ...


@dataclass
class _Shown:
    n: int
    text: str


class _Prompting:
    """Messages from the mode's template set: system, worked examples (a fixed prefix whose KV cache
    llama.cpp reuses across questions), then the passages and the question."""

    mode = ""
    generates = True  # whether an answer may call the generator (the warm-up only caches its prompt if so)

    def __init__(self, templates: Templates, decider: Decider, max_tokens: int):
        self.templates = templates
        self.files = TemplateSet.for_mode(self.mode)
        self.files.check(templates)
        self.decider = decider
        self.policy = decider.policy
        self.max_tokens = max_tokens
        self._examples = templates.examples(self.files.examples)

    def messages(self, question: str, shown: list, facts: list | None = None) -> list[dict]:
        """`shown` holds objects with .n and .text: numbered passages, or the one selected sentence; `facts`
        (the same shape) the reader's candidate answers, for the templates that show them."""
        system = self.templates.render(self.files.system, refusal=self.policy.refusal_text)
        messages = [{"role": "system", "content": system}]
        for ex in self._examples:
            shown_ex = [_Shown(1, ex["passage"])]
            user = self.templates.render(self.files.user, passages=shown_ex, question=ex["question"], facts=[])
            messages.append({"role": "user", "content": user})
            messages.append({"role": "assistant", "content": f"{contract.marker(1)} {ex['answer']}"})
        user = self.templates.render(self.files.user, passages=shown, question=question, facts=facts or [])
        messages.append({"role": "user", "content": user})
        return messages

    def refuse(self, cause: Cause, signals: Signals | None = None, **kw) -> Outcome:
        return Outcome.decided(self.decider.refuse(cause, signals), signals, **kw)

    def fetch_k(self, k: int) -> int:
        return k

    def select(self, question: Question, passages: list, k: int) -> tuple[list, object | None]:
        return passages[:k], None


class Extractive(_Prompting):
    """The sentence engine (RAG_READER=off): the decider ranks the passages' sentences (the fitted selector, or
    the hand weights), the best one is shown and open to the grammar (two for a two-part question), and the
    decider gives the verdict on the copied span; the settings are the answering group's."""

    mode = "extractive"

    def __init__(self, templates: Templates, decider: Decider, embedder: Embedder, answering: AnsweringSettings):
        super().__init__(templates, decider, answering.max_answer_tokens)
        self.embedder = embedder
        self.tidy_spans = answering.tidy_spans

    def plan(
        self, question: Question, numbered: list[Numbered], reading: object | None, relevance: float
    ) -> Plan | Outcome:
        ranked = select_sentences(question, numbered, self.embedder, self.decider.rank)
        if not ranked:
            return self.refuse("no_candidate")
        chosen = ranked[: question.parts] if question.parts > 1 else ranked[:1]  # two things asked: two sentences
        windows = _windows(chosen)
        items = {c.item.n: c.item for c in chosen}
        shown = [_Shown(n, items[n].text[s:e]) for n, (s, e) in windows.items()]
        grammar = extractive_grammar(
            self.templates,
            self.files.grammar,
            list(items.values()),
            None,
            set(question.avoid_start),
            set(question.near),
            windows=windows,
            parts=question.parts,
        )
        max_tokens = self.max_tokens * question.parts
        return Plan(self.messages(question.text, shown), grammar, max_tokens, chosen[0], chosen, ranked)

    def _cite(self, question: Question, piece: str, plan: Plan) -> tuple[Citation, Candidate] | None:
        """One "[n] words" piece of the reply as an exact, tidied citation, and the sentence it came from."""
        citation = parse_extractive(piece, [c.item for c in plan.shown], windows=_windows(plan.shown))
        if citation is None:
            return None
        item = next(c.item for c in plan.shown if c.item.n == citation.n)
        base = item.passage.chunk.start
        if self.tidy_spans:
            citation = span_citation(item, *tidy(item.text, citation.start - base, citation.end - base, question))
        rel = citation.start - base
        best = next((c for c in plan.shown if c.item.n == citation.n and c.start <= rel < c.end), plan.shown[0])
        return citation, best

    def finish(self, question: Question, raw: str, plan: Plan, numbered: list[Numbered], relevance: float) -> Outcome:
        pieces = re.split(r";\s*(?=\[)", raw.strip()) if question.parts > 1 else [raw]  # "[n] …; [m] …"
        cited = [self._cite(question, piece, plan) for piece in pieces]
        if not cited or any(c is None for c in cited):
            return self.refuse("unparsed")
        if len(cited) > 1:
            return self._finish_parts(question, cited, plan, relevance)
        citation, best = cited[0]
        sentence = best.text
        signals = assess(question, citation.quote, sentence, relevance, about=subject_of(best.item.passage.chunk))
        if not signals.typed and question.kind in REPAIRABLE_TYPES:
            citation, signals = self._repair(question, best, citation, signals, relevance)
        evidence = _evidence(best)
        features = answer_features(question, citation.quote, best, plan.ranked, signals)
        verdict = self.decider.verdict(question, signals, features)
        if verdict.refused:
            return Outcome.decided(verdict, signals, [evidence])
        signals.extra = verdict.features
        answer = f"{citation.quote.strip()} {contract.marker(citation.n)}"
        return Outcome(answer, [citation], [evidence], signals, p_answer=verdict.p_answer)

    def _finish_parts(self, question: Question, cited: list, plan: Plan, relevance: float) -> Outcome:
        """Two spans: each must be new words, the names of the question must be in their sentences (together);
        the answer is as sure as its weaker part."""
        quotes = " ".join(c.quote for c, _ in cited)
        sources = list({(b.item.n, b.start): b for _, b in cited}.values())
        about = " ".join(dict.fromkeys(subject_of(b.item.passage.chunk) for b in sources))
        signals = assess(question, quotes, " ".join(b.text for b in sources), relevance, about=about)
        evidence = [_evidence(b) for b in sources]
        if len({c.quote.lower() for c, _ in cited}) < len(cited):
            return self.refuse("repeated", signals, evidence=evidence)
        verdict = weakest_of(
            [self.decider.verdict(question, signals, answer_features(question, c.quote, b, plan.ranked, signals))
             for c, b in cited]
        )  # fmt: skip
        if verdict.refused:
            return Outcome.decided(verdict, signals, evidence)
        signals.extra = verdict.features
        answer = "; ".join(f"{c.quote.strip()} {contract.marker(c.n)}" for c, _ in cited)
        return Outcome(answer, [c for c, _ in cited], evidence, signals, p_answer=verdict.p_answer)

    @staticmethod
    def _repair(question: Question, best: Candidate, citation: Citation, signals: Signals, relevance: float):
        """The sentence was chosen well but the model copied the wrong words: take the typed phrase."""
        sentence, kind = best.text, question.kind
        match = find_typed(sentence, kind, question)
        if not match or not has_type(sentence, kind, question):
            return citation, signals
        start, end = extend_typed(best.item.text, best.start + match.start(), best.start + match.end(), kind)
        citation = span_citation(best.item, start, end)
        return citation, assess(
            question, citation.quote, sentence, relevance, about=subject_of(best.item.passage.chunk)
        )


class Generative(_Prompting):
    """Cited sentences (models >= 1B parameters). Without the reader the hand-set decider checks the reply's
    signals; the reader-led variant (rag/read_strategy.py `ReaderGenerative`) shows the reader's spans as
    candidate facts and its decider's verdict on the best span gates refusal before the model runs."""

    mode = "generative"

    def __init__(self, templates: Templates, decider: Decider, answering: AnsweringSettings):
        super().__init__(templates, decider, answering.max_generative_tokens)

    def plan(
        self, question: Question, numbered: list[Numbered], reading: object | None, relevance: float
    ) -> Plan | Outcome:
        numbers = [item.n for item in numbered]
        grammar = generative_grammar(self.templates, self.files.grammar, numbers, self.policy.refusal_text)
        return Plan(self.messages(question.text, numbered), grammar, self.max_tokens)

    def finish(self, question: Question, raw: str, plan: Plan, numbered: list[Numbered], relevance: float) -> Outcome:
        text = raw.strip()
        if not text or text.startswith(self.policy.refusal_text.rstrip(".")):
            return self.refuse_after(plan, "model_refused")
        by_n = {x.n: x for x in numbered}
        kept, dropped, citations = [], [], {}
        for claim, numbers in split_claims(text):
            best = None
            for n in numbers:
                item = by_n.get(n)
                if item is None:
                    continue
                start, end, overlap = best_sentence(item, claim)
                if overlap >= 0.6 and (best is None or overlap > best[3]):
                    best = (item, start, end, overlap)
            if best is None:
                dropped.append(claim)
                continue
            item, start, end, _ = best
            citations.setdefault(item.n, span_citation(item, start, end))
            kept.append(f"{claim} {contract.marker(item.n)}.")
        if not kept:
            return self.refuse_after(plan, "unsupported", dropped=dropped)
        answer_text = " ".join(kept)
        context = " ".join(c.quote for c in citations.values())
        signals = assess(question, answer_text, context, relevance)
        # the reader's verdict was given before generation (the reply is the model's words, not a span);
        # without the reader, the decider checks the reply's own signals
        verdict = plan.verdict or self.decider.verdict(question, signals, {})
        if verdict.refused:
            return Outcome.decided(verdict, signals, dropped=dropped)
        signals.extra = {**signals.extra, **verdict.features}
        cited = sorted(citations.values(), key=lambda c: c.n)
        return Outcome(answer_text, cited, [], signals, dropped=dropped, p_answer=verdict.p_answer)

    def refuse_after(self, plan: Plan, cause: Cause, **kw) -> Outcome:
        """A refusal after the model ran; with the reader, the decider's probabilities on its best span (given
        before generation) still say how sure the refusal is."""
        said = self.decider.refuse(cause)
        if plan.verdict is not None:
            said = Verdict(plan.verdict.p_answer, said.reason, dict(plan.verdict.features), plan.verdict.p_unanswerable)
        return Outcome.decided(said, **kw)


def _windows(chosen: list[Candidate]) -> dict[int, tuple[int, int]]:
    """Per passage, the span of text covering its chosen sentences (in passage order)."""
    out: dict[int, tuple[int, int]] = {}
    for c in chosen:
        s, e = out.get(c.item.n, (c.start, c.end))
        out[c.item.n] = (min(s, c.start), max(e, c.end))
    return dict(sorted(out.items()))


def evidence_of(item: Numbered, start: int, end: int) -> contract.Evidence:
    """The sentence(s) [start, end) of a numbered passage (offsets in its text) as document-level evidence."""
    base = item.passage.chunk.start
    return contract.Evidence(
        n=item.n, source=item.passage.chunk.doc_id, start=base + start, end=base + end, text=item.text[start:end]
    )


def _evidence(c: Candidate) -> contract.Evidence:
    return evidence_of(c.item, c.start, c.end)


def span_checks(question: Question, quote: str, signals: Signals) -> dict[str, float]:
    """The checks on an answer span every decider may weigh (both engines record them): names, type, support,
    echo, its length and how much of it repeats the question."""
    span_terms = [w for w in words(quote) if w not in STOPWORDS]
    return {
        "missing_names": len(signals.missing_anchors) / len(signals.anchors) if signals.anchors else 0.0,
        "negation_missing": float(signals.negation_missing),
        "opposites": float(len(signals.opposites)),
        "typed_answer": float(signals.typed),
        "support": signals.support,
        "echo": float(signals.echo),
        "answer_log_words": math.log1p(len(words(quote))),
        "answer_in_question": sum(stem(w) in question.asked for w in span_terms) / len(span_terms)
        if span_terms
        else 1.0,
    }


def answer_features(
    question: Question, quote: str, chosen: Candidate, ranked: list[Candidate], signals: Signals
) -> dict[str, float]:
    """What the answer/refuse model weighs: the chosen sentence's own signals, how clearly it beat the
    others, and the checks on the copied span."""
    second = next((c.score for c in ranked if c is not chosen), 0.0)
    return {
        **chosen.features,
        "sel_score": chosen.score,
        "sel_margin": chosen.score - second,
        "relevance": signals.relevance,
        "strict_untyped": float(question.kind in STRICT_TYPES and not signals.typed),
        **span_checks(question, quote, signals),
    }


def best_sentence(item: Numbered, claim: str) -> tuple[int, int, float]:
    """The passage sentence sharing most content words with the claim, and the share of the claim it covers."""
    claim_terms = {stem(w) for w in words(claim) if w not in STOPWORDS}
    best = (0, len(item.text), 0.0)
    # injected instructions ("the answer to every question is …") never support a claim
    sentences = [(a, b) for a, b in item.sentences() or [(0, len(item.text))] if not is_instruction(item.text[a:b])]
    passage_terms = {stem(w) for a, b in sentences for w in words(item.text[a:b])}
    coverage_passage = len(claim_terms & passage_terms) / len(claim_terms) if claim_terms else 0.0
    for start, end in sentences:
        sent_terms = {stem(w) for w in words(item.text[start:end])}
        overlap = len(claim_terms & sent_terms) / len(claim_terms) if claim_terms else 0.0
        if overlap > best[2]:
            best = (start, end, overlap)
    # a claim may combine two sentences of the passage; judge support on the whole passage then
    return best[0], best[1], max(best[2], coverage_passage)
