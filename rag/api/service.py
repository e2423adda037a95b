"""The server's one service: owns the pipeline, its loading state and the admission to the model.

The API's routes and the chat page (ui/) both answer through this, so a question is checked, admitted,
streamed and closed one way whichever door it came in by (private-gpt's layout: the Gradio UI calls the
same service as the API). It therefore raises only `RagError`s — busy, loading, a rejected question —
which the API turns into JSON (rag/api/errors.py) and the chat into a message. This calls only
`Pipeline.ask` / `ask_stream` / `info`, always off the event loop, so /health answers while a long
generation runs.

Live corpus: `watch` (rag/live.py) swaps in a pipeline on the new index when the manifest on disk
changes (`rag ingest` elsewhere, or an upload through `library`, rag/library.py); the swap is one
assignment of `state`, so a request keeps the pipeline it started with.

Concurrency: one llama.cpp context can serve one request at a time. `Admission` lets in at most
`queue_size` waiting requests plus the one running; any more get 503 + Retry-After at once instead
of an ever-growing backlog. Admission state is only touched on the event loop, so it needs no lock.
The chat page opens its answers with `open_stream` too, so the limit holds for both.

A non-streamed answer whose client disconnects stops too: waiting, it leaves the queue at once;
running, the pipeline's generator is closed at its next event (a token, ~30 ms), so the model is
free for the next request instead of finishing an answer nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from rag.api import errors
from rag.contract import AnswerEvent, SourcesEvent, StreamEvent, TokenEvent
from rag.errors import ModelError, QueryError, RagError, ServerBusy, StillLoading, Unavailable
from rag.library import Library
from rag.live import IndexWatch, manifest_identity

log = logging.getLogger("rag.api")

Loader = Callable[[Any], Any]  # settings -> pipeline
Disconnected = Callable[[], Awaitable[None]]  # returns when the client has gone away
INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}  # controls, format (zero-width), unassigned, spaces
BUSY_RETRY_AFTER_S = 2  # about one answer's time with the default model
LOADING_RETRY_AFTER_S = 5


WARMING = "warming up: the fixed prompt into the model's cache, the embedder and reader run once"


def warm_up(pipeline) -> None:
    """`pipeline.warm()` (rag/pipeline.py), if it has one, before the server says ready, so the first answer is
    as fast as later ones. A failure is logged and the server serves anyway: warming only saves time."""
    warm = getattr(pipeline, "warm", None)
    if warm is None:
        return
    try:
        warm()
    except Exception:  # an answer would meet the same problem and report it to its client
        log.warning("warm-up failed; the first answer will be slower", exc_info=True)


def load_pipeline(settings):
    from rag.pipeline import Pipeline

    return Pipeline.load(settings, with_generator=True)


# --- admission ---------------------------------------------------------------------------------------


class Admission:
    """Bounded admission: `capacity` requests inside (one at the model, the rest waiting their turn)."""

    def __init__(self, waiting: int):
        self.capacity = waiting + 1
        self.admitted = 0
        self.turn = asyncio.Lock()

    def admit(self) -> Slot:
        """A slot, or `ServerBusy` (503 + Retry-After from the API, "busy" in the chat) when all are taken."""
        if self.admitted >= self.capacity:
            raise ServerBusy(
                f"server busy: {self.capacity} requests already admitted; retry later", retry_after=BUSY_RETRY_AFTER_S
            )
        self.admitted += 1
        return Slot(self)


class Slot:
    """One admitted request. `async with` waits for the model's turn; `release()` is idempotent so the
    stream response can free a slot whose generator never started."""

    def __init__(self, admission: Admission):
        self.admission = admission
        self.holds_turn = False
        self.released = False

    async def __aenter__(self) -> Slot:
        try:
            await self.admission.turn.acquire()
        except BaseException:  # cancelled while waiting (client gone): leave the queue
            self.release()
            raise
        self.holds_turn = True
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        if self.holds_turn:
            self.holds_turn = False
            self.admission.turn.release()
        if not self.released:
            self.released = True
            self.admission.admitted -= 1


# --- loading state ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    status: str  # loading | ready | error
    pipeline: Any = None
    info: dict | None = None
    detail: str | None = None
    error: RagError | None = None  # the load failure, when a user can fix it


class RagService:
    def __init__(self, settings, pipeline=None):
        self.settings = settings
        self.admission = Admission(settings.queue_size)
        # replaced as a whole by the loading thread, so readers never see a half-set state
        self.state = State("loading")
        self.watch = IndexWatch(settings.index_dir, lambda: self.state.pipeline, self._set_ready)
        self.library = Library(settings, self.get_pipeline, on_indexed=self.watch.reload)
        if pipeline is not None:
            self.serve(pipeline)

    # -- loading
    def start_loading(self, loader: Loader) -> threading.Thread:
        """Load in a daemon thread so the server answers /health (503 loading) meanwhile."""
        thread = threading.Thread(target=self._load, args=(loader,), name="rag-load", daemon=True)
        thread.start()
        return thread

    def _load(self, loader: Loader) -> None:
        try:
            identity = manifest_identity(self.settings.index_dir)  # before loading: a write meanwhile is seen
            pipeline = loader(self.settings)
            self.state = State("loading", detail=WARMING)
            warm_up(pipeline)
            self.watch.mark_loaded(identity)
            self._set_ready(pipeline)
        except RagError as exc:
            log.error("could not load: %s", exc.describe())
            self.state = State("error", detail=exc.describe(), error=exc)
        except Exception as exc:  # reported by /health rather than killing the server
            log.error("could not load", exc_info=exc)
            self.state = State("error", detail=f"{type(exc).__name__}: {exc}")

    def serve(self, pipeline) -> None:
        """Answer with `pipeline` from now on, as built from the index now on disk (given at construction, or
        swapped in by a test that plays loading, then ready)."""
        self.watch.mark_loaded(manifest_identity(self.settings.index_dir))
        self._set_ready(pipeline)

    def _set_ready(self, pipeline) -> None:
        self.state = State("ready", pipeline=pipeline, info=dict(pipeline.info()))

    def _current(self) -> State:
        """The state, after a cheap look at whether the index on disk changed (a reload then starts)."""
        if self.state.status == "ready":
            self.watch.check()
        return self.state

    def health(self) -> dict:
        state = self._current()
        if state.status == "ready":
            stale = (
                f"the index on disk changed but could not be loaded ({self.watch.error})" if self.watch.error else None
            )
            report = {"status": "ready", **state.info, "detail": stale}
            probe = getattr(getattr(state.pipeline, "generator", None), "reachable", None)
            if probe is not None:  # a remote generation server: can this replica answer right now?
                report["reachable"] = probe()
            return report
        return {"status": state.status, "detail": state.detail}

    def get_pipeline(self):
        """The pipeline once loaded, None while loading, or raises with the load error (a `RagError` when a
        user can fix it): for what the chat shows besides answers (status line, examples, follow-ups)."""
        state = self._current()
        if state.status == "error":
            raise state.error or ModelError(f"the server could not load its model or index: {state.detail}")
        return state.pipeline

    def model_name(self) -> str:
        return self._pipeline_state().info.get("model") or "rag-chat"

    def _pipeline_state(self) -> State:
        state = self._current()
        if state.status == "loading":
            raise StillLoading("the model is loading; retry shortly", retry_after=LOADING_RETRY_AFTER_S)
        if state.status != "ready":
            raise Unavailable(f"the server could not load its model or index: {state.detail}")
        return state

    # -- answering
    def check_question(self, question: str) -> str:
        """The question stripped, or a `QueryError` (422): the configured bounds, for every entry point, the
        chat included (the API's schema can only hold a fixed bound; the chat's text box can be bypassed)."""
        text = question.strip()
        if not any(unicodedata.category(ch) not in INVISIBLE for ch in text):
            raise QueryError("must not be blank (it has no visible characters)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate ("\ud800" in JSON): the tokenizers choke on it
            raise QueryError(f"is not valid Unicode (a lone surrogate at position {exc.start})") from None
        limit = self.settings.max_question_chars
        if len(text) > limit:
            raise QueryError(f"too long ({len(text)} characters; the limit is {limit})")
        return text

    async def ask(self, question: str, k: int | None = None, disconnected: Disconnected | None = None) -> dict:
        """The answer contract (`Answer.model_dump()`); waits for the model in the bounded queue.

        `disconnected` (awaitable that returns when the client is gone) stops the work early: see above."""
        question = self.check_question(question)
        pipeline = self._pipeline_state().pipeline
        slot = self.admission.admit()
        stop = threading.Event()

        async def answer():
            async with slot:  # cancelled while waiting for the turn: the slot is freed at once
                return await run_in_threadpool(_consume, pipeline, question, k, stop)

        work = asyncio.ensure_future(answer())
        watcher = asyncio.ensure_future(disconnected()) if disconnected else None
        try:
            if watcher is not None:
                await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # the client went away
                if slot.holds_turn:
                    stop.set()  # the thread closes the generator at its next event, then the slot frees
                else:
                    work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                raise errors.client_gone()
            try:
                result = await work
            except Exception as exc:  # translated to a JSON error
                raise errors.translate(exc) from exc
        finally:
            if watcher is not None:
                watcher.cancel()
            if not work.done():  # this request itself was cancelled
                stop.set()
                work.cancel()
        return result.model_dump()

    def open_stream(self, question: str, k: int | None = None, query: str | None = None) -> AnswerStream:
        """Check the question and admit a streaming answer now (so a full queue is a 503 or the chat's "busy",
        not an error event mid-stream); the stream must then be read or closed.

        `query`: what to search and answer instead of the question (the chat's follow-up rewrite, question
        plus a few words of the previous turn); the bounds apply to what the user wrote."""
        question = self.check_question(question)
        pipeline = self._pipeline_state().pipeline
        return AnswerStream(pipeline, query or question, k, self.admission.admit())


_END = object()


def _consume(pipeline, question: str, k: int | None, stop: threading.Event):
    """`pipeline.ask` by way of `ask_stream`, so it can stop between events when `stop` is set."""
    generator = pipeline.ask_stream(question, k)
    try:
        for event in generator:
            if isinstance(event, AnswerEvent):
                return event.answer
            if stop.is_set():
                return None
        raise RuntimeError("the answer stream ended without an answer")
    finally:
        generator.close()


class AnswerStream:
    """One admitted answer, streamed: `events()` as typed events (the chat renders them), `payloads()` as
    JSON-ready (name, payload) pairs with a failure as a last "error" pair (the API's SSE routes).

    The pipeline generator is advanced one event at a time in the threadpool. `close()` closes it (which
    releases the llama lock) and frees the slot; both readers call it however the stream ends, and the
    response calls it too, for a client that disconnects mid-stream. Calling it again does nothing.
    """

    def __init__(self, pipeline, question: str, k: int | None, slot: Slot):
        self.pipeline = pipeline
        self.question = question
        self.k = k
        self.slot = slot
        self.generator = None

    async def events(self) -> AsyncIterator[StreamEvent]:
        """SourcesEvent, TokenEvent…, AnswerEvent, waiting for the model's turn first; raises what the
        pipeline raised."""
        try:
            async with self.slot:  # cancelled while waiting for the turn: the slot is freed at once
                self.generator = self.pipeline.ask_stream(self.question, self.k)
                while (event := await run_in_threadpool(next, self.generator, _END)) is not _END:
                    yield event
        finally:
            self.close()

    async def payloads(self) -> AsyncIterator[tuple[str, Any]]:
        """The wire form: sources, token…, answer — or an "error" pair `{"detail", "status"}` at the end."""
        try:
            async with contextlib.aclosing(self.events()) as events:
                async for event in events:
                    yield _payload(event)
        except Exception as exc:  # noqa: BLE001 - the status line is sent already: report in-band
            error = errors.translate(exc)
            yield "error", {"detail": error.detail, "status": error.status_code}
        finally:
            self.close()

    def close(self) -> None:
        if self.generator is not None:
            self.generator.close()
        self.slot.release()


def _payload(event: StreamEvent) -> tuple[str, Any]:
    """The wire form of a typed stream event: (SSE event name, JSON payload)."""
    if isinstance(event, SourcesEvent):
        return event.kind, [p.model_dump() for p in event.passages]
    if isinstance(event, TokenEvent):
        return event.kind, {"text": event.text}
    if isinstance(event, AnswerEvent):
        return event.kind, event.answer.model_dump()
    raise TypeError(f"unknown stream event {event!r}")
