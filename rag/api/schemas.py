"""Request and response models of the HTTP API; their examples are what /docs shows.

Answers are the pipeline's own contract (rag/contract.py), so the JSON shape is written once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag import contract

MAX_K = 20  # passages a client may ask for; more would not fit the model's prompt budget anyway
HARD_MAX_QUESTION_CHARS = 100_000  # schema bound; the configured limit (settings.max_question_chars) is checked too

QUESTION = "When did Brad Smith meet Wang Wentao?"
_CITATION_EXAMPLE = {
    "n": 1,
    "source": "000_d74c9cd70636ffa8.txt",
    "chunk_id": "000_d74c9cd70636ffa8.txt#1",
    "start": 213,
    "end": 240,
    "text": "Microsoft President Brad Smith engaged in a significant meeting with China's Minister of Commerce, "
    "Wang Wentao, on Wednesday, December 6, 2023.",
    "score": 0.032787,
    "quote": "Wednesday, December 6, 2023",
    "passage_start": 98,
    "passage_end": 241,
}
_ANSWER_EXAMPLE = {
    "question": QUESTION,
    "answer": "Wednesday, December 6, 2023 [1]",
    "refused": False,
    "citations": [_CITATION_EXAMPLE],
    "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "timings": {
        "retrieve_ms": 7.5,
        "generate_ms": 0.0,
        "total_ms": 97.0,
        "steps_ms": {
            "check": 0.5,
            "embed": 6.6,
            "search": 0.4,
            "read": 84.1,
            "fit_budget": 2.4,
            "plan": 2.6,
            "finish": 0.4,
        },
    },
    "mode": "extractive",
    "reason": None,
    "raw": "[1] Wednesday, December 6, 2023",
    "dropped": [],
    "signals": {"question_type": "date", "typed": True, "missing_anchors": [], "support": 1.0, "echo": False},
    "evidence": [
        {"n": 1, "source": "000_d74c9cd70636ffa8.txt", "start": 98, "end": 241, "text": _CITATION_EXAMPLE["text"]}
    ],
    "passages": [],
    "confidence": 0.93,
    "best_guess": None,
}


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- /ask -----------------------------------------------------------------------------------------


class AskRequest(BaseModel):
    """Strict: a number is not a question and "3" is not a k; unknown fields are typos, so they are refused."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"question": QUESTION}, {"question": QUESTION, "k": 5}]},
    )

    question: str = Field(
        min_length=1,
        max_length=HARD_MAX_QUESTION_CHARS,
        description="The question; must not be blank, and at most `max_question_chars` (2000 by default) long.",
    )
    k: int | None = Field(None, ge=1, le=MAX_K, description="Passages shown to the model (default: the server's k).")


class AnswerOut(contract.Answer):
    """The answer contract (rag/contract.py), with the example /docs shows."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ANSWER_EXAMPLE]})


Citation = contract.Citation


STREAM_EXAMPLE = (
    'event: sources\ndata: [{"doc": "000_d74c9cd70636ffa8.txt", "chunk_id": "000_d74c9cd70636ffa8.txt#1", "start": 98, '
    '"end": 241, "text": "Microsoft President Brad Smith engaged in …", "score": 0.032787}, …]\n\n'
    'event: token\ndata: {"text": "[1] Wednesday"}\n\n'
    'event: token\ndata: {"text": ", December 6, 2023"}\n\n'
    'event: answer\ndata: {"question": "When did Brad Smith meet Wang Wentao?", "answer": '
    '"Wednesday, December 6, 2023 [1]", "refused": false, "citations": […], …}\n\n'
)


# --- /health and errors ---------------------------------------------------------------------------------


class Health(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
                    "documents": 1,
                    "chunks": 16,
                    "mode": "extractive",
                    "backend": "llama.cpp",
                },
                {
                    "status": "ready",
                    "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
                    "documents": 1,
                    "chunks": 16,
                    "mode": "extractive",
                    "backend": "remote http://10.0.0.5:8080",
                    "reachable": True,
                },
                {"status": "loading"},
                {
                    "status": "loading",
                    "detail": "warming up: the fixed prompt into the model's cache, the embedder and reader run once",
                },
                {"status": "error", "detail": "no index in index/: run `rag ingest` first"},
            ]
        }
    )

    status: Literal["loading", "ready", "error"]
    model: str | None = None
    documents: int | None = None
    chunks: int | None = None
    mode: str | None = None
    embedder: str | None = None
    backend: str | None = Field(None, description='Where answers are generated: "llama.cpp" or "remote <RAG_LLM_URL>".')
    reachable: bool | None = Field(
        None, description="Remote backend only: whether the generation server answered within 2 s just now."
    )
    detail: str | None = Field(
        None,
        description="Why loading failed; while loading, what it is doing (warming up: the model runs once "
        "before `ready`, so the first answer is as fast as later ones).",
    )


class ErrorOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "question: must not be blank"}]})

    detail: str
    errors: list[dict[str, Any]] | None = Field(None, description="Each validation problem, for 422.")


# --- OpenAI-compatible -------------------------------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """Lenient on extra fields: OpenAI clients send sampling options this server does not use."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"model": "rag-chat", "messages": [{"role": "user", "content": QUESTION}]}]},
    )

    model: str | None = Field(None, description="Ignored: the server answers with its one loaded model.")
    messages: list[ChatMessage] = Field(min_length=1, description="The last user message is the question.")
    stream: bool = False
    k: int | None = Field(None, ge=1, le=MAX_K, description="Extension: passages shown to the model.")


class ChatChoice(_Out):
    index: int = 0
    message: dict[str, Any]
    finish_reason: str = "stop"


class ChatCompletion(_Out):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "id": "chatcmpl-3f2a…",
                    "object": "chat.completion",
                    "created": 1733500000,
                    "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Wednesday, December 6, 2023 [1]"},
                            "finish_reason": "stop",
                        }
                    ],
                    "citations": [_CITATION_EXAMPLE],
                    "refused": False,
                    "confidence": 0.93,
                    "best_guess": None,
                }
            ]
        },
    )

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    citations: list[Citation] = Field(description="Extension: the spans the answer cites.")
    refused: bool = Field(description="Extension: true when the documents don't hold the answer.")
    confidence: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Extension: the decider's probability that the answer (for a refusal: refusing) is right.",
    )
    best_guess: contract.BestGuess | None = Field(
        None, description="Extension: the answer the confidence floor withheld (refused as not sure), with its sources."
    )


class ModelCard(_Out):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "rag-chat"


class ModelList(_Out):
    object: Literal["list"] = "list"
    data: list[ModelCard]
