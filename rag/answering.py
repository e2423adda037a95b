"""Turn retrieved passages into a grounded answer with verified citations, or an honest refusal."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Iterator

from rag.citations import (
    Citation,
    Numbered,
    extractive_grammar,
    generative_grammar,
    number_passages,
    parse_extractive,
    span_citation,
    split_claims,
)
from rag.embedding import Embedder
from rag.evidence import Candidate, select_sentences
from rag.generation import Generator
from rag.prompts import Templates
from rag.refusal import Signals, anchors, assess, content_terms, find_typed, has_type, norm
from rag.retrieval import Passage, Retriever
from rag.text import STOPWORDS, stem, words


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    citations: list[Citation]
    model: str
    mode: str
    timings: dict = field(default_factory=dict)
    reason: str | None = None  # why it was refused
    signals: dict | None = None
    raw: str = ""
    dropped: list[str] = field(default_factory=list)  # generative sentences removed as unsupported
    passages: list[Passage] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [c.to_dict() for c in self.citations],
            "model": self.model,
            "timings": self.timings,
            "mode": self.mode,
            "reason": self.reason,
            "raw": self.raw,
            "dropped": self.dropped,
            "signals": self.signals,
        }


@dataclass
class AnswerPolicy:
    """Thresholds for refusing; see rag/refusal.py for what each signal means."""

    min_support: float = 0.3
    min_relevance: float = 0.15
    refusal_text: str = "The documents don't say."


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        templates: Templates,
        embedder: Embedder,
        k: int = 3,
        mode: str = "auto",
        max_tokens: int = 24,
        max_generative_tokens: int = 200,
        prompt_token_budget: int = 1200,
        policy: AnswerPolicy | None = None,
    ):
        self.retriever = retriever
        self.generator = generator
        self.templates = templates
        self.embedder = embedder
        self.k = k
        self.mode = ("extractive" if generator.is_small else "generative") if mode == "auto" else mode
        self.max_tokens = max_tokens if self.mode == "extractive" else max_generative_tokens
        self.prompt_token_budget = prompt_token_budget
        self.policy = policy or AnswerPolicy()

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    # --- prompt -------------------------------------------------------------------------------
    def fit_budget(self, question: str, passages: list[Passage]) -> list[Passage]:
        """Drop the lowest-ranked passages until the prompt fits the token budget (keep at least one)."""
        kept = list(passages)
        while len(kept) > 1 and self.prompt_tokens(question, kept) > self.prompt_token_budget:
            kept.pop()
        return kept

    def prompt_tokens(self, question: str, passages: list[Passage]) -> int:
        shown = number_passages(passages)
        return sum(self.generator.count_tokens(m["content"]) for m in self.messages(question, shown))

    def messages(self, question: str, shown: list) -> list[dict]:
        """`shown` holds objects with .n and .text: numbered passages, or the one selected sentence."""
        system = self.templates.render(f"{self.mode}_system.txt", refusal=self.policy.refusal_text)
        messages = [{"role": "system", "content": system}]
        # Worked examples teach a small model the shape of a good answer (a short span, not the sentence start);
        # they sit in the fixed prompt prefix, so llama.cpp reuses their KV cache across questions.
        for ex in self.templates.examples(f"{self.mode}_examples.json"):
            shown_ex = [_Shown(1, ex["passage"])]
            messages.append({"role": "user", "content": self.templates.render(f"{self.mode}_user.txt", passages=shown_ex, question=ex["question"])})
            messages.append({"role": "assistant", "content": f"[1] {ex['answer']}"})
        user = self.templates.render(f"{self.mode}_user.txt", passages=shown, question=question)
        messages.append({"role": "user", "content": user})
        return messages

    def plan(self, question: str, numbered: list[Numbered]) -> tuple[list[dict], str, Candidate | None]:
        """Messages and grammar for one question; in extractive mode also the selected sentence."""
        if self.mode == "generative":
            grammar = generative_grammar(self.templates, numbered, self.policy.refusal_text)
            return self.messages(question, numbered), grammar, None
        ranked = select_sentences(question, numbered, self.embedder)
        if not ranked:
            return self.messages(question, numbered), None, None
        best = ranked[0]
        shown = [_Shown(best.item.n, best.text)]
        avoid = {w for w in (x.lower() for x in words(question)) if w not in STOPWORDS}
        near = set(content_terms(question)) | {norm(a) for a in anchors(question)}
        grammar = extractive_grammar(self.templates, [best.item], (best.start, best.end), avoid, near)
        return self.messages(question, shown), grammar, best

    # --- answering ---------------------------------------------------------------------------------
    def retrieve(self, question: str, k: int | None = None) -> list[Passage]:
        return self.retriever.search(question, k or self.k)

    def ask(self, question: str, k: int | None = None) -> Answer:
        answer = None
        for event in self.stream(question, k):
            if event[0] == "answer":
                answer = event[1]
        assert answer is not None
        return answer

    def stream(self, question: str, k: int | None = None) -> Iterator[tuple[str, object]]:
        """Events: ("sources", [Passage]), ("token", str)…, ("answer", Answer)."""
        t0 = time.perf_counter()
        question = question.strip()
        passages = self.retrieve(question, k)
        t1 = time.perf_counter()
        passages = self.fit_budget(question, passages) if passages else passages
        yield "sources", passages
        numbered = number_passages(passages)
        relevance = max((p.dense for p in passages), default=0.0)
        raw, best, grammar = "", None, None
        if passages and relevance >= self.policy.min_relevance:
            messages, grammar, best = self.plan(question, numbered)
        if grammar is not None:
            for piece in self.generator.generate(messages, grammar, self.max_tokens):
                raw += piece
                yield "token", piece
        t2 = time.perf_counter()
        if not passages:
            answer = self._refuse(question, "no passages retrieved", raw, None)
        elif relevance < self.policy.min_relevance:
            answer = self._refuse(question, f"passages are off-topic (best similarity {relevance:.2f})", raw, None)
        elif grammar is None:
            answer = self._refuse(question, "no passage sentence can serve as evidence", raw, None)
        elif self.mode == "extractive":
            answer = self._finish_extractive(question, raw, best, relevance)
        else:
            answer = self._finish_generative(question, raw, numbered, relevance)
        answer.passages = passages
        answer.timings = {
            "retrieve_ms": round((t1 - t0) * 1000, 1),
            "generate_ms": round((t2 - t1) * 1000, 1),
            "total_ms": round((time.perf_counter() - t0) * 1000, 1),
        }
        yield "answer", answer

    def _refuse(
        self, question: str, reason: str, raw: str, signals: Signals | None, dropped: list[str] | None = None
    ) -> Answer:
        return Answer(
            question=question,
            answer=self.policy.refusal_text,
            refused=True,
            citations=[],
            model=self.model_name,
            mode=self.mode,
            reason=reason,
            signals=signals.to_dict() if signals else None,
            raw=raw,
            dropped=dropped or [],
        )

    def _verdict(self, signals: Signals) -> str | None:
        if not signals.typed:
            return f"no {signals.question_type} in the cited passage"
        if signals.missing_anchors:
            return f"the cited passage does not mention {', '.join(signals.missing_anchors)}"
        if signals.echo:
            return "the answer only repeats the question"
        if signals.support < self.policy.min_support:
            return f"the cited passage does not cover the question ({', '.join(signals.missing_terms)} missing)"
        return None

    def _finish_extractive(self, question: str, raw: str, best: Candidate, relevance: float) -> Answer:
        item = best.item
        citation = parse_extractive(raw, [item], (best.start, best.end))
        if citation is None:
            return self._refuse(question, f"the model did not copy the passage: {raw!r}", raw, None)
        sentence = best.text
        signals = assess(question, citation.quote, sentence, relevance)
        if not signals.typed and signals.question_type in REPAIRABLE:
            # The sentence was chosen well but the model copied the wrong words: take the typed phrase.
            match = find_typed(sentence, signals.question_type, question)
            if match and not has_type(sentence, signals.question_type, question):
                match = None
            if match:
                citation = span_citation(item, best.start + match.start(), best.start + match.end())
                citation = _extend_typed(item, citation, signals.question_type)
                signals = assess(question, citation.quote, sentence, relevance)
        reason = self._verdict(signals)
        if reason:
            return self._refuse(question, reason, raw, signals)
        return Answer(
            question=question,
            answer=f"{citation.quote.strip()} [{citation.n}]",
            refused=False,
            citations=[citation],
            model=self.model_name,
            mode=self.mode,
            signals=signals.to_dict(),
            raw=raw,
        )

    def _finish_generative(self, question: str, raw: str, numbered: list[Numbered], relevance: float) -> Answer:
        text = raw.strip()
        if not text or text.startswith(self.policy.refusal_text.rstrip(".")):
            return self._refuse(question, "the model found no answer in the passages", raw, None)
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
            kept.append(f"{claim} [{item.n}].")
        if not kept:
            return self._refuse(question, "no sentence of the reply is supported by its citation", raw, None, dropped)
        answer_text = " ".join(kept)
        context = " ".join(c.quote for c in citations.values())
        signals = assess(question, answer_text, context, relevance)
        reason = self._verdict(signals)
        if reason:
            return self._refuse(question, reason, raw, signals, dropped)
        return Answer(
            question=question,
            answer=answer_text,
            refused=False,
            citations=sorted(citations.values(), key=lambda c: c.n),
            model=self.model_name,
            mode=self.mode,
            signals=signals.to_dict(),
            raw=raw,
            dropped=dropped,
        )


# Types whose phrase is unmistakable in a sentence; names are not (every sentence has some).
REPAIRABLE = frozenset({"date", "time", "duration", "age", "number", "numeral", "location", "reason"})


@dataclass
class _Shown:
    n: int
    text: str


def _extend_typed(item: Numbered, citation: Citation, kind: str) -> Citation:
    """Grow a typed match over adjacent typed words, e.g. 'Wednesday' -> 'Wednesday, December 6, 2023'."""
    base = item.passage.chunk.start
    start, end = citation.start - base, citation.end - base
    text = item.text
    while True:
        m = find_typed(text[end:], kind)
        gap = text[end : end + m.start()] if m else ""
        if not m or len(gap) > 3 or not all(ch.isdigit() or ch in " ,.-/" for ch in gap):
            break
        end += m.end()
    # absorb a trailing day-of-month or year number, as in "December 6, 2023"
    tail = re.match(r"[ ,]*\d{1,4}(?:,\s*\d{4})?", text[end:])
    if tail and kind == "date":
        end += tail.end()
    return span_citation(item, start, end)


def best_sentence(item: Numbered, claim: str) -> tuple[int, int, float]:
    """The passage sentence sharing most content words with the claim, and the share of the claim it covers."""
    claim_terms = {stem(w) for w in words(claim) if w not in STOPWORDS}
    best = (0, len(item.text), 0.0)
    passage_terms = {stem(w) for w in words(item.text)}
    coverage_passage = len(claim_terms & passage_terms) / len(claim_terms) if claim_terms else 0.0
    for start, end in item.sentences() or [(0, len(item.text))]:
        sent_terms = {stem(w) for w in words(item.text[start:end])}
        overlap = len(claim_terms & sent_terms) / len(claim_terms) if claim_terms else 0.0
        if overlap > best[2]:
            best = (start, end, overlap)
    # a claim may combine two sentences of the passage; judge support on the whole passage then
    return best[0], best[1], max(best[2], coverage_passage)
