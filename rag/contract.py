"""The answer contract: one set of pydantic models for the pipeline, the API, the chat and eval.

`Answer.model_dump()` is exactly what `/ask` returns and what `rag ask --json` prints; the API's
response models are these classes (rag/api/schemas.py re-exports them with examples), so the JSON
shape is written once. Stream events are typed (`SourcesEvent`, `TokenEvent`, `AnswerEvent`)
instead of string-tagged tuples. The `[n]` citation marker lives here too, in one place.
"""

from __future__ import annotations

from typing import Any, Literal, Union

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
    retrieve_ms: float = 0.0
    generate_ms: float = 0.0
    total_ms: float = 0.0


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

    def to_dict(self) -> dict:
        return self.model_dump()


class SourcesEvent(_Model):
    kind: Literal["sources"] = "sources"
    passages: list[PassageOut]


class TokenEvent(_Model):
    kind: Literal["token"] = "token"
    text: str


class AnswerEvent(_Model):
    kind: Literal["answer"] = "answer"
    answer: Answer


StreamEvent = Union[SourcesEvent, TokenEvent, AnswerEvent]
