"""OpenAI-compatible /v1/chat/completions and /v1/models over the same service, for existing clients.

The last user message is the question (no chat history: each answer comes from the documents only).
Citations travel in an extra `citations` field on the response and on the final stream chunk, with
`refused`, `confidence` (the decider's probability that the answer, or the refusal, is right) and
`best_guess` (the answer a confidence floor withheld), so a client can tell a sure answer from a guess.

Streaming sends the verified answer as one content delta when it is known, not the raw tokens: the
raw output of extractive mode ("[1] December 6, 2023") differs from the answer, and a refusal can
follow tokens that looked like an answer; OpenAI deltas cannot be taken back once sent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException, Request

from rag.api.routes import ERRORS, Service, until_disconnected
from rag.api.schemas import ChatCompletion, ChatCompletionRequest, ChatMessage, ModelList
from rag.api.service import AnswerStream
from rag.api.sse import EventStream, sse

STARTED = int(time.time())

CHUNK_EXAMPLE = (
    'data: {"id": "chatcmpl-…", "object": "chat.completion.chunk", "created": 1733500000, "model": "…", '
    '"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]}\n\n'
    'data: {…, "choices": [{"index": 0, "delta": {"content": "Wednesday, December 6, 2023 [1]"}, '
    '"finish_reason": null}]}\n\n'
    'data: {…, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], '
    '"citations": […], "refused": false, "confidence": 0.93, "best_guess": null}\n\n'
    "data: [DONE]\n\n"
)

router = APIRouter(prefix="/v1", tags=["openai"], responses=ERRORS)


@dataclass(frozen=True)
class Completion:
    """What every chunk of one completion repeats."""

    id: str
    created: int
    model: str

    @classmethod
    def new(cls, model: str) -> Completion:
        return cls(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model)

    def chunk(self, delta: dict, finish_reason: str | None = None, **extra) -> dict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            **extra,
        }


@router.get("/models", response_model=ModelList, summary="The one model this server answers with")
async def models(service: Service) -> dict:
    return {"object": "list", "data": [{"id": service.model_name(), "object": "model", "created": STARTED}]}


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="OpenAI-compatible chat completion (answers the last user message)",
    responses={200: {"content": {"text/event-stream": {"example": CHUNK_EXAMPLE}}}},
)
async def chat_completions(body: ChatCompletionRequest, service: Service, request: Request):
    question = last_user_text(body.messages)
    if body.stream:
        stream = service.open_stream(question, body.k)
        return EventStream(_chunks(stream, Completion.new(service.model_name())), on_close=stream.close)
    answer = await service.ask(question, body.k, disconnected=until_disconnected(request))
    meta = Completion.new(answer["model"])
    return {
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer["answer"]}, "finish_reason": "stop"}
        ],
        **extensions(answer),
    }


def extensions(answer: dict) -> dict:
    """The answer's fields an OpenAI response has no place for, sent beside it."""
    keys = ("citations", "refused", "confidence", "best_guess")
    return {key: answer.get(key) for key in keys}


def last_user_text(messages: list[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.text()
    raise HTTPException(422, "messages: no user message to answer")


async def _chunks(stream: AnswerStream, meta: Completion) -> AsyncIterator[str]:
    yield sse(meta.chunk({"role": "assistant"}))
    async for name, payload in stream.payloads():
        if name == "answer":
            yield sse(meta.chunk({"content": payload["answer"]}))
            yield sse(meta.chunk({}, "stop", **extensions(payload)))
        elif name == "error":
            yield sse({"error": {"message": payload["detail"], "type": "server_error", "code": payload["status"]}})
            return
    yield sse("[DONE]")
