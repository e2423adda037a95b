"""One decider: which candidate answer is best, and whether to give it or say the documents don't say.

Why one: the answer/refuse decision used to be spread over three places — the strategies picked one of
three decision modes by testing whether a model was None, two-part questions and generative mode always
used the hand rules, and refusal reasons were worded in five places. Every mode now asks one `Decider`,
built once by the pipeline (rag/pipeline.py `build_decider`):

- `rank(candidates)`: a score per candidate (its features), higher is better;
- `verdict(question, signals, features)`: a `Verdict` — P(the answer is right), the reason to refuse
  (None: answer) and the features it weighed, which travel into the answer's signals;
- `before(question, relevance)` and `refuse(cause, signals)`: the verdicts for refusals a stage makes
  without a candidate (nothing retrieved, an instruction, a reply that is not one of the options), so
  every refusal reason is worded here, in words a reader can check.

Implementations: `FittedDecider` — a logistic regression over named features, read from package data:
`prompts/decider.json` for the reader-led engine (fitted by `python -m rag_eval.fit_decider` on the
pipeline's own answers to the calibration articles, for a stated false-refusal rate; its optional `ranker`,
which of the reader's spans is the answer, by `python -m rag_eval.fit_ranker`), the selector and
answerer of `prompts/answering_model.json` for the sentence engine (RAG_READER=off); and `RulesDecider`
— the hand-set checks (RAG_DECISIONS=rules), which give no probability.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from rag.errors import TemplateError
from rag.evidence import hand_rank
from rag.fitted import Logistic
from rag.question import Question
from rag.refusal import NO_CLEAR_ANSWER, OFF_TOPIC, RefusalPolicy, Signals, plain_reason

log = logging.getLogger(__name__)

DECIDER_FILE = "decider.json"
FORMAT = 1
NAMES_PENALTY = 1e6  # FittedDecider.rank: a candidate the names rule would refuse ranks after all others
REACH_PENALTY = 1e3  # FittedDecider.rank: a candidate beyond the ranker's reach ranks after those within it

Cause = Literal["instruction", "no_passage", "off_topic", "no_candidate", "unparsed", "repeated", "model_refused",
                "unsupported", "not_mentioned"]  # fmt: skip
REASONS: dict[str, str] = {
    "instruction": "That is an instruction to the assistant, not a question about the documents",
    "no_passage": "No passage of the documents matches the question",
    "off_topic": OFF_TOPIC,
    "no_candidate": NO_CLEAR_ANSWER,
    "unparsed": NO_CLEAR_ANSWER,
    "repeated": NO_CLEAR_ANSWER,
    "model_refused": "The model found no answer in the passages",
    "unsupported": "No sentence of the reply is supported by the passage it cites",
    "not_mentioned": "The passages do not mention what the question is about",
}


@dataclass(frozen=True)
class Verdict:
    """The decision on one candidate answer."""

    p_answer: float | None  # P(the answer is right); None when the decider gives no probability
    reason: str | None  # why to refuse, in plain words; None: give the answer
    features: dict = field(default_factory=dict)  # what was weighed (and p_answer), for the answer's signals
    p_unanswerable: float | None = None  # P(the documents hold no answer): a refusal's confidence, when fitted

    @property
    def refused(self) -> bool:
        return self.reason is not None


class Decider:
    """The interface (see the module docstring); `policy` holds the thresholds every decider shares."""

    name = ""

    def __init__(self, policy: RefusalPolicy):
        self.policy = policy

    def rank(self, candidates: Sequence[Mapping[str, float]]) -> list[float]:
        """A score per candidate's features, higher is better."""
        raise NotImplementedError

    def verdict(self, question: Question, signals: Signals, features: Mapping[str, float]) -> Verdict:
        raise NotImplementedError

    # --- the refusals made before there is a candidate: shared ------------------------------------
    def before(self, question: Question, relevance: float | None) -> Verdict | None:
        """A refusal without asking the model (an instruction, nothing retrieved, off-topic), or None."""
        cause = self.policy.before_generation(relevance, question)
        return None if cause is None else self.refuse(cause)

    def refuse(self, cause: Cause, signals: Signals | None = None) -> Verdict:
        """The verdict for a refusal a stage made: no candidate, a reply that is not one of the options…; a
        sentence that does not mention the question's names says which (`signals.missing_anchors`)."""
        if cause == "not_mentioned" and signals is not None and signals.missing_anchors:
            return Verdict(None, plain_reason("missing_names", signals))
        return Verdict(None, REASONS[cause])


class FittedDecider(Decider):
    """A logistic regression: P(the answer is right) from named features, refuse under its threshold; the
    reason names the feature that weighed most against answering. `require_names` (fitted with the
    threshold) also refuses when a name of the question is missing from the cited sentence: a false premise
    or another subject. `ranker` orders candidates (the sentence engine's selector); without one they are
    ordered by the `rank_by` feature (the reader's margin: the reader was trained to rank spans)."""

    def __init__(
        self,
        policy: RefusalPolicy,
        answerer: Logistic,
        *,
        ranker: Logistic | None = None,
        unanswerable: Logistic | None = None,
        rank_by: str = "reader_margin",
        reach: float | None = None,
        meta: dict | None = None,
        name: str = "fitted",
    ):
        super().__init__(policy)
        self.answerer = answerer
        self.ranker = ranker
        self.reach = reach
        self.unanswerable = unanswerable
        self.rank_by = rank_by
        self.meta = meta or {}
        self.name = name

    @property
    def threshold(self) -> float:
        return self.answerer.threshold

    def rank(self, candidates: Sequence[Mapping[str, float]]) -> list[float]:
        """With the names rule on, a candidate whose sentence lacks a name of the question ranks after every
        candidate that has them all: the rule would refuse it whatever its score, while the passage that
        names them may hold the answer (asked "What did Youdao do?", the reader's best span sat in a sentence
        without "Youdao" and the answer was refused although the next passage said what Youdao did)."""
        if self.ranker is not None:
            scores = [self.ranker.prob(c) for c in candidates]
            if self.reach is not None and candidates:
                scores = self._within_reach(candidates, scores)
        else:
            scores = [float(c.get(self.rank_by, 0.0)) for c in candidates]
        if not self.answerer.require_names:
            return scores
        scores = [s - NAMES_PENALTY if _unnamed(c) else s for s, c in zip(scores, candidates)]
        if self.reach is not None and candidates:
            scores = self._contradicted(candidates, scores)
        return scores

    def _contradicted(self, candidates: Sequence[Mapping[str, float]], scores: list[float]) -> list[float]:
        """When the reader's best span sits in a sentence that contradicts the question (says the opposite of one
        of its words, or negates nothing where it asks what is not so), a span beyond the reach of that margin may
        not stand in for it: those rank after it, so the question is refused for the contradiction unless a span
        the reader nearly prefers passes. Such a question is most often SQuAD 2.0's antonym or negation swap, and
        the stand-in from a weaker passage answered it anyway ("What meetings are closed to the public?" ->
        "House of Commons", where the best span's sentence said the meetings are open). On the calibration
        articles (refit at the 10% budget, each article predicted by a fit on the other two): refusal recall 0.441
        -> 0.494, false refusals 9.96% both, right answers 0.587 -> 0.585. A missing name or number is left out
        (it is often in the next sentence: with them, the names rule alone refused 12% of the answerable
        questions, past the budget)."""
        top = max(candidates, key=lambda c: float(c.get(self.rank_by, 0.0)))
        if not _contradicts(top):
            return scores
        edge = float(top.get(self.rank_by, 0.0)) - self.reach
        return [
            s - 2 * NAMES_PENALTY if not _unnamed(c) and float(c.get(self.rank_by, 0.0)) < edge else s
            for s, c in zip(scores, candidates)
        ]

    def _within_reach(self, candidates: Sequence[Mapping[str, float]], scores: list[float]) -> list[float]:
        """The ranker may put first only a span the reader nearly prefers: within `reach` logits of the best margin
        (among the spans the names rule lets through, when there are any). Beyond it the ranker overrode the reader
        no better on the calibration articles (rag_eval/fit_ranker.py), and on paraphrased questions it followed
        the passage's word overlap away from the reader's right answer ("What did the minister ask Microsoft to
        do?": margin 3.7 for the right span, -2.4 for the one ranked first)."""
        named = [c for c in candidates if not (self.answerer.require_names and _unnamed(c))] or list(candidates)
        best = max(float(c.get(self.rank_by, 0.0)) for c in named)
        return [
            s if float(c.get(self.rank_by, 0.0)) >= best - self.reach else s - REACH_PENALTY
            for s, c in zip(scores, candidates)
        ]

    def verdict(self, question: Question, signals: Signals, features: Mapping[str, float]) -> Verdict:
        p = self.answerer.prob(features)
        weighed = {**features, "p_answer": round(p, 4)}
        q = None
        if self.unanswerable is not None:
            q = self.unanswerable.prob(features)
            weighed["p_unanswerable"] = round(q, 4)
        if self.answerer.require_names and signals.fails_names:
            return Verdict(p, plain_reason("missing_names", signals), weighed, q)
        if p >= self.answerer.threshold:
            return Verdict(p, None, weighed, q)
        weakest = next(iter(self.answerer.contributions(features)), "")
        return Verdict(p, plain_reason(weakest, signals), weighed, q)

    @classmethod
    def load(cls, templates, policy: RefusalPolicy, threshold: float | None = None) -> FittedDecider:
        """The reader-led engine's decider from `decider.json` (its header names the data and the script)."""
        data = templates.json(DECIDER_FILE)
        if not isinstance(data, dict) or data.get("format") != FORMAT or "answerer" not in data:
            raise TemplateError(
                f"{DECIDER_FILE} in {templates.where}: expected an object with format {FORMAT} and an answerer",
                hint="refit it with `python -m rag_eval.fit_decider`",
            )
        answerer = Logistic.from_dict(data["answerer"], "answerer")
        if threshold is not None:
            answerer = replace(answerer, threshold=threshold)
        unanswerable = Logistic.from_dict(data["unanswerable"], "unanswerable") if data.get("unanswerable") else None
        ranker = Logistic.from_dict(data["ranker"], "ranker") if data.get("ranker") else None
        reach = data["ranker"].get("reach") if ranker is not None else None
        meta = {k: v for k, v in data.items() if k not in ("answerer", "unanswerable", "ranker")}
        log.info(
            "decider %s from %s: %d features, threshold %.4f, %s, fitted on %s by %s",
            DECIDER_FILE, templates.where, len(answerer.features), answerer.threshold,
            f"ranker of {len(ranker.features)} features" if ranker else "ranked by the reader's margin",
            ", ".join(meta.get("fitted_on") or ["?"]), meta.get("script", "?"),
        )  # fmt: skip
        return cls(
            policy, answerer, ranker=ranker, unanswerable=unanswerable, meta=meta, name="reader",
            reach=float(reach) if reach is not None else None,
        )  # fmt: skip


class RulesDecider(Decider):
    """The hand-set checks (RAG_DECISIONS=rules): the answer has the type asked for, the question's names are
    in the cited sentence, it is not an echo of the question, and enough of the question's words are there.
    No probability: answers carry no confidence."""

    name = "rules"

    def rank(self, candidates: Sequence[Mapping[str, float]]) -> list[float]:
        return hand_rank(candidates)

    def verdict(self, question: Question, signals: Signals, features: Mapping[str, float]) -> Verdict:
        return Verdict(None, self.reason(signals), dict(features))

    def reason(self, signals: Signals) -> str | None:
        if not signals.typed:
            return plain_reason("typed", signals)
        if signals.fails_names:
            return plain_reason("missing_names", signals)
        if signals.echo:
            return plain_reason("echo", signals)
        if signals.support < self.policy.min_support:
            words_ = ", ".join(signals.missing_words[:5])
            return f"The passages say nothing about {words_}" if words_ else OFF_TOPIC
        return None


def _unnamed(candidate: Mapping[str, float]) -> bool:
    """Would the names rule refuse this candidate (a name or number of the question, or its negation, missing, or
    its sentence saying the opposite of a question word)?"""
    return any(candidate.get(k, 0.0) > 0 for k in ("missing_names", "negation_missing", "opposites"))


def _contradicts(candidate: Mapping[str, float]) -> bool:
    """Does the candidate's sentence contradict the question: the opposite of a question word said, or no negation
    where the question asks what is not so?"""
    return any(candidate.get(k, 0.0) > 0 for k in ("negation_missing", "opposites"))


def weakest_of(verdicts: Sequence[Verdict]) -> Verdict:
    """Several parts answered together (a two-part question): the answer is as sure as its weakest part,
    and any part's refusal refuses it."""
    refused = next((v for v in verdicts if v.refused), None)
    if refused is not None:
        return refused
    sure = [v for v in verdicts if v.p_answer is not None]
    return min(sure, key=lambda v: v.p_answer) if sure else verdicts[0]
