"""What the pipeline would send to the model for one question, through `Pipeline.prepare`.

The bench times generation on exactly the prompts the pipeline builds, so it asks the pipeline for them
instead of rebuilding them. `Pipeline.prepare(question, k) -> Prepared` is being added to rag.pipeline;
until it lands, `prepare` below falls back to `_prepare_from_answerer`, which follows today's
`Answerer.stream` step by step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Prepared:
    """The shape of rag.pipeline's `Prepared`: what the pipeline retrieved and would send to the model."""

    passages: list
    messages: list[dict] | None  # None: the pipeline refuses before generating
    grammar: str | None
    max_tokens: int
    steps_ms: dict[str, float] = field(default_factory=dict)


def prepare(pipeline, question: str, k: int | None = None):
    """`pipeline.prepare(question, k)`: retrieval, budget and prompt building, timed per step."""
    hook = getattr(pipeline, "prepare", None)
    if hook is not None:
        return hook(question, k)
    return _prepare_from_answerer(pipeline, question, k)


# TODO(Pipeline.prepare): delete from here to the end of the file once rag.pipeline has `prepare`.
def _prepare_from_answerer(pipeline, question: str, k: int | None = None) -> Prepared:
    """Stand-in for `Pipeline.prepare` built from today's `Answerer.fit_budget` and `Answerer.plan`, in the
    order `Answerer.stream` calls them (search, fit_budget, relevance gate, plan)."""
    from rag.citations import number_passages

    answerer = pipeline.answerer
    question = question.strip()
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    passages = answerer.retrieve(question, k)
    steps["search"] = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    passages = answerer.fit_budget(question, passages) if passages else passages
    steps["fit_budget"] = (time.perf_counter() - t0) * 1000
    messages = grammar = None
    if passages and max(p.dense for p in passages) >= answerer.policy.min_relevance:
        t0 = time.perf_counter()
        messages, grammar, _ = answerer.plan(question, number_passages(passages))
        steps["plan"] = (time.perf_counter() - t0) * 1000
        if grammar is None:  # no sentence can serve as evidence: refused before generating
            messages = None
    return Prepared(passages, messages, grammar, answerer.max_tokens, steps)


def all_passages_messages(pipeline, question: str, passages: list) -> list[dict] | None:
    """The counterfactual prompt for the (b) comparison: every retrieved passage shown, no sentence selection.

    Not part of the answer flow, so no hook exists for it; None (and the two (b) rows left out of the report)
    when the answerer no longer has `messages`.
    """
    from rag.citations import number_passages

    build = getattr(getattr(pipeline, "answerer", None), "messages", None)
    return build(question.strip(), number_passages(passages)) if build else None
