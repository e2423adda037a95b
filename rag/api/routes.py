"""/ask, /ask/stream and /health: thin handlers over `RagService`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from rag.api.schemas import STREAM_EXAMPLE, AnswerOut, AskRequest, ErrorOut, Health
from rag.api.service import AnswerStream, RagService
from rag.api.sse import EventStream, sse


def get_service(request: Request) -> RagService:
    return request.app.state.service


Service = Annotated[RagService, Depends(get_service)]


def until_disconnected(request: Request):
    """An awaitable factory that returns when the client disconnects. The body is read already, so the
    next ASGI message is `http.disconnect` (servers send it when the client goes or the response is done)."""

    async def wait() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return wait


ERRORS = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token (only when the server has one)."},
    413: {"model": ErrorOut, "description": "Request body too large."},
    422: {"model": ErrorOut, "description": "Blank, too long or mistyped question, k out of range, unknown field."},
    503: {"model": ErrorOut, "description": "Model loading, failed to load, or queue full (see Retry-After)."},
}

answers = APIRouter(tags=["answers"], responses=ERRORS)
status = APIRouter(tags=["status"])


@answers.post("/ask", response_model=AnswerOut, summary="Answer a question with citations")
async def ask(body: AskRequest, service: Service, request: Request) -> dict:
    """Retrieve passages, answer from them and verify each citation; refuses when the documents don't say."""
    return await service.ask(body.question, body.k, disconnected=until_disconnected(request))


@answers.post(
    "/ask/stream",
    response_class=EventStream,
    status_code=200,
    summary="Answer a question, streamed as Server-Sent Events",
    responses={200: {"content": {"text/event-stream": {"example": STREAM_EXAMPLE}}, "description": "Event stream."}},
)
async def ask_stream(body: AskRequest, service: Service) -> EventStream:
    """Events: `sources` (the retrieved passages), `token` (`{"text"}`: the model's raw output as generated),
    then `answer` (the whole verified answer, as /ask returns it: show its `answer` in place of the tokens).
    A failure after the stream started arrives as an `error` event `{"detail", "status"}`."""
    stream = service.open_stream(body.question, body.k)
    return EventStream(_named_events(stream), on_close=stream.close)


async def _named_events(stream: AnswerStream) -> AsyncIterator[str]:
    async for name, payload in stream.payloads():
        yield sse(payload, event=name)


@status.get(
    "/health",
    response_model=Health,
    response_model_exclude_none=True,
    summary="Readiness",
    responses={503: {"model": Health, "description": "Still loading, or loading failed (`detail` says why)."}},
)
async def health(service: Service):
    """200 once the model and index are loaded; 503 `loading` before, 503 `error` if loading failed."""
    report = {k: v for k, v in (await run_in_threadpool(service.health)).items() if v is not None}
    return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)
