"""Turn a question into a grounded answer with verified citations, or an honest refusal.

The orchestrator is short on purpose: retrieve → fit the prompt budget → plan (the mode's strategy:
rag/strategies.py) → generate → finish (map the reply to exact spans, measure the signals) →
decide (the decider, rag/decider.py, inside the strategy) → the contract, with the decider's confidence and the confidence floor
(`_answer`, the one place both are applied). `prepare` is the public hook for everything before
generation, so the benchmark measures exactly what the pipeline sends to the model.

Every step besides generation is timed back to back (`_Laps`) and reported in the answer's
`timings.steps_ms` (`STEPS`), so `rag bench` can say where an answer's time goes outside the model, and
nothing between the steps goes unaccounted. The question is embedded once, by the `embed` step: retrieval
searches with that vector and the sentence engine reads it from `Question.vector`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from rag import contract
from rag.citations import Numbered, number_passages
from rag.decider import Decider
from rag.describe import asks_description, describe
from rag.errors import QueryError
from rag.generation import Generator
from rag.markers import MARKER, marker
from rag.question import Question, analyse, sub_questions, without_instructions
from rag.refusal import NOT_SURE
from rag.retrieval import Passage, Retriever
from rag.strategies import Outcome, Plan, Strategy


@dataclass
class Prepared:
    """Everything decided before the model runs."""

    question: Question
    passages: list[Passage]
    numbered: list[Numbered]
    relevance: float | None  # best dense cosine of the passages (None: nothing retrieved)
    plan: Plan | None  # None: decided before generation
    decided: Outcome | None = None  # the outcome decided before generation: a refusal, or a description
    steps_ms: dict[str, float] = field(default_factory=dict)  # the steps so far (STEPS), in order

    @property
    def refusal(self) -> str | None:
        """The reason, when refused before generation."""
        return self.decided.reason if self.decided else None

    @property
    def messages(self) -> list[dict] | None:
        return self.plan.messages if self.plan else None

    @property
    def grammar(self) -> str | None:
        return self.plan.grammar if self.plan else None

    @property
    def max_tokens(self) -> int:
        return self.plan.max_tokens if self.plan else 0


SENTENCE_ROOM = 200  # tokens kept free for the evidence sentence(s) shown with the question


# The per-answer steps besides generation, in order, as `timings.steps_ms` names them (a step that did not run,
# e.g. `read` and `plan` for a question refused before the model, is left out; that refusal's gate, microseconds,
# then falls in `fit_budget`).
STEPS = {
    "check": "the question's prompt tokens counted against the context, and the question analysed",
    "embed": "the question embedded (once per answer: retrieval and sentence selection share the vector)",
    "search": "dense (FAISS) and BM25 search and their fusion",
    "read": "the decider's gate on retrieval relevance, then the strategy's passage choice (the reader, reader-led)",
    "fit_budget": "passages dropped until the prompt fits its token budget (token counting)",
    "plan": "the prompt and grammar: sentence selection (sentence engine) or the reader's proposals judged",
    "finish": "the reply mapped to exact spans, its signals measured, the decider's verdict, the answer built",
}
RETRIEVE_STEPS = ("check", "embed", "search")  # `timings.retrieve_ms`: everything up to the retrieved passages


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


class _Laps:
    """Back-to-back step timings: each `lap` is the time since the previous one, so the steps add up."""

    def __init__(self, steps: dict[str, float] | None = None):
        self.steps = steps if steps is not None else {}
        self.t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.steps[name] = round((now - self.t) * 1000, 1)
        self.t = now


class Answerer:
    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        strategy: Strategy,
        decider: Decider,
        *,
        k: int,
        prompt_token_budget: int,
        context_tokens: int,
    ):
        """`k` is the retrieval settings', `prompt_token_budget` the answering settings', `context_tokens` the
        generation settings' `n_ctx`: no defaults here, so they are written once (rag/settings.py)."""
        self.retriever = retriever
        self.generator = generator
        self.strategy = strategy
        self.decider = decider
        self.policy = decider.policy
        self.k = k
        self.prompt_token_budget = prompt_token_budget
        self.context_tokens = context_tokens
        self._prefix_tokens: int | None = None  # tokens of the prompt without a question or passages

    @property
    def mode(self) -> str:
        return self.strategy.mode

    @property
    def model_name(self) -> str:
        return self.generator.model_name

    # --- before generation ----------------------------------------------------------------------------
    def fit_budget(self, question: str, passages: list[Passage]) -> list[Passage]:
        """Drop the lowest-ranked passages until the prompt fits the token budget (keep at least one)."""
        kept = list(passages)
        while len(kept) > 1 and self.prompt_tokens(question, kept) > self.prompt_token_budget:
            kept.pop()
        return kept

    def prompt_tokens(self, question: str, passages: list[Passage]) -> int:
        messages = self.strategy.messages(question, number_passages(passages))
        return sum(self.generator.count_tokens(m["content"]) for m in messages)

    def check_fits(self, question: str) -> None:
        """A question whose prompt cannot fit the model's context is a user error (422), not a crash: 2,000
        characters of "中" or of combining marks are far more tokens than characters. The fixed part of the
        prompt (system text, worked examples) is counted once; each question only counts its own tokens."""
        if self._prefix_tokens is None:
            self._prefix_tokens = self.prompt_tokens("", [])
        room = self.context_tokens - self.strategy.max_tokens * 2 - SENTENCE_ROOM - self._prefix_tokens
        asked = self.generator.count_tokens(question)
        if asked > room:
            raise QueryError(
                f"the question is too long for the model: {asked} tokens, and at most {max(0, room)} fit",
                hint="ask a shorter question",
            )

    def prepare(self, question: str, k: int | None = None) -> Prepared:
        laps = _Laps()
        self.check_fits(question)
        q = analyse(question)
        k = k or self.k
        laps.lap("check")
        query = self.retriever.embed_query(q.text)
        q = q.with_vector(query.text, query.vector)
        laps.lap("embed")
        passages = self.retriever.search(query, self.strategy.fetch_k(k))
        laps.lap("search")
        relevance = max((p.dense for p in passages), default=None)
        before = self.decider.before(q, relevance)
        decided = None if before is None else Outcome.decided(before)
        reading = None
        if decided is None and self.strategy.mode == "extractive" and asks_description(q):
            # "What does the article say about …?" (rag/describe.py); a generative model writes its own description
            laps.lap("read")  # nothing is read: the passages are taken in retrieval order
            passages = self.fit_budget(q.text, passages[:k]) if passages else passages
            laps.lap("fit_budget")
            numbered = number_passages(passages)
            decided = describe(q, numbered, self.decider)
            laps.lap("plan")
            return Prepared(q, passages, numbered, relevance, None, decided, laps.steps)
        if decided is None:
            passages, reading = self.strategy.select(q, passages, k)
            laps.lap("read")
        else:
            passages = passages[:k]
        passages = self.fit_budget(q.text, passages) if passages else passages
        laps.lap("fit_budget")
        numbered = number_passages(passages)
        plan = None
        if decided is None:
            planned = self.strategy.plan(q, numbered, reading, relevance or 0.0)
            laps.lap("plan")
            if isinstance(planned, Outcome):
                decided = planned
            else:
                plan = planned
        return Prepared(q, passages, numbered, relevance, plan, decided, laps.steps)

    # --- answering ---------------------------------------------------------------------------------------
    def ask(self, question: str, k: int | None = None) -> contract.Answer:
        for event in self.stream(question, k):
            if isinstance(event, contract.AnswerEvent):
                return event.answer
        raise AssertionError("the answer stream ended without an answer")

    def stream(self, question: str, k: int | None = None) -> Iterator[contract.StreamEvent]:
        """Events: SourcesEvent, TokenEvent…, AnswerEvent. The answer's timings: `generate_ms` is the model's
        generation alone (0 when it was not called), `steps_ms` every other step (STEPS), `retrieve_ms` the
        steps up to the retrieved passages (RETRIEVE_STEPS)."""
        asked = without_instructions(question)
        parts = sub_questions(asked)
        if len(parts) > 1:
            yield from self._stream_parts(question, parts, k)
            return
        t0 = time.perf_counter()
        prepared = self.prepare(asked, k)
        shown = [p.to_out() for p in prepared.passages]
        yield contract.SourcesEvent(passages=shown)
        raw = ""
        plan = prepared.plan
        t1 = time.perf_counter()
        generate_ms = 0.0
        if plan is not None and plan.fixed is not None:
            raw = plan.fixed  # one candidate and nothing to choose: the generator is not asked
            yield contract.TokenEvent(text=raw)
        elif plan is not None:
            for piece in self.generator.generate(plan.messages, plan.grammar, plan.max_tokens):
                raw += piece
                yield contract.TokenEvent(text=piece)
            generate_ms = _ms(t1)
        laps = _Laps(dict(prepared.steps_ms))
        if prepared.decided is not None or plan is None:
            outcome = prepared.decided or Outcome.decided(self.decider.refuse("no_candidate"))
        else:
            outcome = self.strategy.finish(prepared.question, raw, plan, prepared.numbered, prepared.relevance or 0.0)
        answer = self._answer(prepared.question, outcome, raw, shown)
        answer.question = question.strip()
        laps.lap("finish")
        steps = laps.steps
        answer.timings = contract.Timings(
            retrieve_ms=round(sum(steps.get(name, 0.0) for name in RETRIEVE_STEPS), 1),
            generate_ms=generate_ms,
            total_ms=_ms(t0),
            steps_ms=steps,
        )
        yield contract.AnswerEvent(answer=answer)

    def _stream_parts(self, question: str, parts: list[str], k: int | None) -> Iterator[contract.StreamEvent]:
        """Two questions joined in one (rag/question.py `sub_questions`): each answered on its own, then joined
        (`join_answers`). The parts are answered before anything is streamed, so the sources event lists the
        passages of both; the reply comes as one token event."""
        t0 = time.perf_counter()
        answers = [self.ask(part, k) for part in parts]
        answer = join_answers(question.strip(), parts, answers, self.policy.refusal_text)
        steps: dict[str, float] = {}
        for a in answers:
            for name, ms in a.timings.steps_ms.items():
                steps[name] = round(steps.get(name, 0.0) + ms, 1)
        answer.timings = contract.Timings(
            retrieve_ms=round(sum(a.timings.retrieve_ms for a in answers), 1),
            generate_ms=round(sum(a.timings.generate_ms for a in answers), 1),
            total_ms=_ms(t0),
            steps_ms=steps,
        )
        yield contract.SourcesEvent(passages=answer.passages)
        if answer.raw:
            yield contract.TokenEvent(text=answer.raw)
        yield contract.AnswerEvent(answer=answer)

    def _answer(self, question: Question, outcome: Outcome, raw: str, shown: list) -> contract.Answer:
        """The contract for one outcome: the one place an answer gets its confidence and meets the floor.

        `p_answer` is the probability the decider gives that its answer is right (when it gives one); a
        refusal's confidence is that refusing is right: the decider's P(no answer in the documents) when it
        fits one, else 1 - p_answer. An answer under the policy's confidence floor is refused as not sure, and
        kept as the best guess with its evidence."""
        p = _probability(outcome.p_answer)
        refused, reason, guess = outcome.reason is not None, outcome.reason, None
        citations = [c.to_contract() for c in outcome.citations]
        if not refused and self.policy.below_floor(p):
            guess = contract.BestGuess(
                answer=outcome.answer, confidence=p, citations=citations, evidence=outcome.evidence
            )
            refused, reason = True, NOT_SURE
        return contract.Answer(
            question=question.text,
            answer=self.policy.refusal_text if refused else outcome.answer,
            refused=refused,
            citations=[] if refused else citations,
            evidence=outcome.evidence,
            model=self.model_name,
            mode=self.mode,
            reason=reason,
            signals=outcome.signals.to_dict() if outcome.signals else None,
            raw=raw,
            dropped=outcome.dropped,
            passages=shown,
            confidence=_confidence(p, _probability(outcome.p_unanswerable), refused),
            best_guess=guess,
        )


def _confidence(p: float | None, p_unanswerable: float | None, refused: bool) -> float | None:
    if p is None:
        return None
    if not refused:
        return round(p, 4)
    return round(p_unanswerable if p_unanswerable is not None else 1.0 - p, 4)


def _probability(value) -> float | None:
    """A decider's probability as a float in [0, 1], or None when there is none (or it is not a number)."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        return None
    return round(min(1.0, max(0.0, p)), 4) if math.isfinite(p) else None


def join_answers(question: str, parts: list[str], answers: list[contract.Answer], refusal_text: str) -> contract.Answer:
    """One answer to a question asked in parts (`Answerer._stream_parts`): the parts' passages numbered once
    (a passage both parts used is listed once), their replies joined with "; " ("December 6, 2023 [1]; Youdao
    [2]"), a part the documents do not answer said so in its place ("…; what does Tesla operate in China?
    The documents don't say."), refused only when every part is.

    Confidence: the whole reply is right when every part is, so it is the product of the parts' confidences
    (each the decider's probability that its part's answer, or refusal, is right; treated as independent).
    A refusal of every part is right when at least one part has no answer: 1 - the product of (1 - each)."""
    passages: list[contract.PassageOut] = []
    number: dict[str, int] = {}
    maps: list[dict[int, int]] = []
    for a in answers:
        mapping = {}
        for i, p in enumerate(a.passages, 1):
            if p.chunk_id not in number:
                passages.append(p)
                number[p.chunk_id] = len(passages)
            mapping[i] = number[p.chunk_id]
        maps.append(mapping)

    def text(value: str, mapping: dict[int, int]) -> str:
        return MARKER.sub(lambda m: marker(mapping.get(int(m.group(1)), int(m.group(1)))), value)

    def moved(items: list, mapping: dict[int, int]) -> list:
        return [x.model_copy(update={"n": mapping.get(x.n, x.n)}) for x in items]

    confidences = [a.confidence for a in answers]
    known = None not in confidences
    answered = [i for i, a in enumerate(answers) if not a.refused]
    citations: list[contract.Citation] = []
    evidence: list[contract.Evidence] = []
    guess = None
    if answered:
        pieces = []
        for i, (part, a) in enumerate(zip(parts, answers)):
            if a.refused:
                pieces.append(f"{part[:1].lower()}{part[1:]} {refusal_text}")
                continue
            pieces.append(text(a.answer, maps[i]))
            citations += [c for c in moved(a.citations, maps[i]) if c not in citations]
            evidence += [e for e in moved(a.evidence, maps[i]) if e not in evidence]
        reply, reason = "; ".join(pieces), None
        confidence = math.prod(confidences) if known else None
    else:
        reply = refusal_text
        reason = "; ".join(dict.fromkeys(a.reason for a in answers if a.reason)) or None
        confidence = 1.0 - math.prod(1.0 - c for c in confidences) if known else None
        for i, a in enumerate(answers):
            evidence += [e for e in moved(a.evidence, maps[i]) if e not in evidence]
        guesses = [(i, a.best_guess) for i, a in enumerate(answers) if a.best_guess is not None]
        if guesses:
            guess = contract.BestGuess(
                answer="; ".join(text(g.answer, maps[i]) for i, g in guesses),
                confidence=round(math.prod(g.confidence for _, g in guesses), 4),
                citations=[c for i, g in guesses for c in moved(g.citations, maps[i])],
                evidence=[e for i, g in guesses for e in moved(g.evidence, maps[i])],
            )
    return contract.Answer(
        question=question,
        answer=reply,
        refused=not answered,
        citations=citations,
        evidence=evidence,
        model=answers[0].model,
        mode=answers[0].mode,
        reason=reason,
        signals={
            "parts": [
                {
                    "question": part,
                    "answer": a.answer,
                    "refused": a.refused,
                    "reason": a.reason,
                    "confidence": a.confidence,
                    "signals": a.signals,
                }
                for part, a in zip(parts, answers)
            ]
        },  # fmt: skip
        raw="; ".join(a.raw for a in answers if a.raw),
        dropped=[d for a in answers for d in a.dropped],
        passages=passages,
        confidence=None if confidence is None else round(min(1.0, max(0.0, confidence)), 4),
        best_guess=guess,
    )
