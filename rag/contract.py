"""The answer contract: one set of pydantic models for the pipeline, the API, the chat and eval.

`Answer.model_dump()` is exactly what `/ask` returns and what `rag ask --json` prints; the API's
response models are these classes (rag/api/schemas.py re-exports them with examples), so the JSON
shape is written once. Stream events are typed (`SourcesEvent`, `TokenEvent`, `AnswerEvent`)
instead of string-tagged tuples. The `[n]` citation marker lives here too, in one place.

So do the words for a confidence ("sure", "likely", "unsure"): the chat and the CLI both say them, and
a reader must get the same word for the same number wherever they look.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.markers import MARKER, find_markers, marker, strip_markers  # noqa: F401 - part of the contract


# --- models ----------------------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PassageOut(_Model):
    """A retrieved passage: an exact slice of a stored text (`text == source_text[start:end]`)."""

    doc: str = Field(description="Document id (path inside the documents folder).")
    chunk_id: str
    start: int = Field(description="Offset of the passage in the document's text.")
    end: int
    text: str
    score: float = Field(description="Retrieval score (reciprocal rank fusion).")
    page: int | None = Field(None, description="Page number (1-based) for paged documents such as PDF.")
    heading: str | None = Field(None, description="Heading path of the section the passage sits in.")


class Citation(_Model):
    n: int = Field(description="Passage number as the answer cites it: [n].")
    source: str = Field(description="Document id (path inside the documents folder).")
    chunk_id: str
    start: int = Field(description="Start of the cited span, a character offset into the document's text.")
    end: int = Field(description="End of the cited span (exclusive); `text_of(source)[start:end] == quote`.")
    text: str = Field(description="The whole retrieved passage.")
    score: float = Field(description="Retrieval score (reciprocal rank fusion).")
    quote: str = Field(description="The cited words, exactly as in the document.")
    passage_start: int = Field(description="Offset of the passage in the document's text.")
    passage_end: int
    page: int | None = Field(None, description="Page number (1-based) for paged documents such as PDF.")


class Evidence(_Model):
    """The whole sentence a short answer was taken from, so a reader sees it in context."""

    n: int
    source: str
    start: int
    end: int
    text: str


class Timings(_Model):
    """Where one answer's time went (ms). `steps_ms` was added later and is optional, so answers recorded
    before it still parse; a client that does not know it can ignore it."""

    retrieve_ms: float = Field(0.0, description="The question checked, embedded and searched (check+embed+search).")
    generate_ms: float = Field(0.0, description="The model's generation alone; 0 when the model was not called.")
    total_ms: float = Field(0.0, description="The whole answer, from the question to the verified answer.")
    steps_ms: dict[str, float] = Field(
        default_factory=dict,
        description="Every step besides generation, in order: check (prompt tokens counted, question analysed), "
        "embed (the question, once), search, read (passage choice), fit_budget, plan (prompt and grammar), "
        "finish (spans, signals, the decider's verdict). A step that did not run is left out.",
    )


class BestGuess(_Model):
    """The answer the confidence floor withheld: shown under the refusal ("closest: …") with its evidence, so
    a reader can judge a guess the system would not state as an answer."""

    answer: str = Field(description="The withheld answer, with [n] markers.")
    confidence: float = Field(ge=0.0, le=1.0, description="Probability that this answer is right.")
    citations: list[Citation] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)


class Answer(_Model):
    question: str
    answer: str = Field(description="The answer with [n] markers, or the refusal text.")
    refused: bool = Field(description="True when the documents don't hold the answer.")
    citations: list[Citation] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list, description="Sentences the answer was taken from.")
    model: str
    mode: str = Field(description="extractive (copies a span) or generative (writes cited sentences).")
    timings: Timings = Field(default_factory=Timings)
    reason: str | None = Field(None, description="Why the answer was refused, in plain words.")
    signals: dict[str, Any] | None = Field(None, description="The measurements behind the decision.")
    raw: str = Field("", description="The model's raw output, before verification.")
    dropped: list[str] = Field(default_factory=list, description="Generated sentences removed as unsupported.")
    passages: list[PassageOut] = Field(default_factory=list, description="The passages shown to the model.")
    confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Probability that this answer is right, from the fitted decider; for a refusal, the probability "
        "that refusing is right. None when no decider measured one (generative mode without one).",
    )
    best_guess: BestGuess | None = Field(
        None,
        description="Set when the answer's confidence was under the confidence floor (RAG_CONFIDENCE_FLOOR): the "
        'answer is refused ("The documents don\'t say for sure") and the withheld answer is kept here.',
    )


class SourcesEvent(_Model):
    kind: Literal["sources"] = "sources"
    passages: list[PassageOut]


class TokenEvent(_Model):
    kind: Literal["token"] = "token"
    text: str


class AnswerEvent(_Model):
    kind: Literal["answer"] = "answer"
    answer: Answer


StreamEvent = SourcesEvent | TokenEvent | AnswerEvent


# --- confidence in words ---------------------------------------------------------------------------------
CONFIDENCE_WORDS: tuple[tuple[float, str], ...] = ((0.8, "sure"), (0.55, "likely"), (0.0, "unsure"))
"""(lowest confidence, word), highest first: the one place the bins are stated.

"sure" (>= 0.8): with a calibrated decider, wrong at most about one time in five; "likely" (0.55–0.8): more
often right than wrong by a margin a reader can rely on; "unsure" (< 0.55): close to a coin toss or worse.
Percentages are not shown as the headline because a reader takes "63%" as more precise than any decider
fitted on a few hundred questions is; the number stays in the JSON and in the chat's tooltip."""


def confidence_words(confidence: float | None) -> str | None:
    """The plain word for a confidence (see CONFIDENCE_WORDS); None when there is no confidence."""
    if confidence is None:
        return None
    return next((word for floor, word in CONFIDENCE_WORDS if confidence >= floor), CONFIDENCE_WORDS[-1][1])
