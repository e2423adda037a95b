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
of an ever-growing backlog. Waiting requests get the model in the order they were admitted (a ticket
each; see `Admission` for why not a lock), and Retry-After is (waiting + 1) x the median time of the
last 20 completed answers, not a constant: the same 12 SmolLM2 answers took 0.9 to over 3 s on this
2-core machine depending on its load (rag/generation_remote.py), one question 2.6 to 16 s depending on
what the model's cache held (rag_eval/bench/concurrency.py), a bigger model takes many times that, and a
deep queue multiplies it. Admission state is only touched on the event loop, so it needs no lock. The
chat page opens its answers with `open_stream` too, so the limit and the order hold for both.

A non-streamed answer whose client disconnects stops too: waiting, it leaves the queue at once;
running, the pipeline's generator is closed at its next event (a token, ~30 ms), so the model is
free for the next request instead of finishing an answer nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import statistics
import threading
import time
import unicodedata
from collections import deque
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
DEFAULT_ANSWER_S = 2.0  # the answer time Retry-After assumes before any answer was timed
RECENT_ANSWERS = 20  # answers the Retry-After median is taken over
MAX_RETRY_AFTER_S = 600
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
    """Bounded, first-come-first-served admission: `capacity` requests inside (one at the model, the rest
    waiting their turn in the order they were admitted), and a Retry-After estimated from recent answers.

    Why not an `asyncio.Lock`: it is FIFO in the order `acquire()` is called, and a streamed answer only
    calls it when its response body starts, a few event-loop steps after it was admitted, so an /ask that
    arrived later could go first. Here each slot takes a ticket when it is admitted, and the model's turn
    passes to the waiting slot with the lowest ticket. A slot that was admitted but is not yet waiting never
    holds the model up: the turn goes to whoever is waiting (or stays free until someone comes)."""

    def __init__(self, waiting: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = waiting + 1
        self.admitted = 0
        self.holder: Slot | None = None  # the slot at the model; None means nobody waits either
        self.queue: list[tuple[int, asyncio.Future, Slot]] = []  # heap by ticket
        self.tickets = itertools.count()
        self.answer_s: deque[float] = deque(maxlen=RECENT_ANSWERS)  # turn time of the last completed answers
        self.clock = clock

    @property
    def running(self) -> bool:
        return self.holder is not None

    def admit(self) -> Slot:
        """A slot, or `ServerBusy` (503 + Retry-After from the API, "busy" in the chat) when all are taken."""
        if self.admitted >= self.capacity:
            raise ServerBusy(
                f"server busy: {self.capacity} requests already admitted; retry later", retry_after=self.retry_after()
            )
        self.admitted += 1
        return Slot(self, next(self.tickets))

    def answer_time(self) -> float:
        """Median seconds a recent answer held the model (the last `RECENT_ANSWERS`), or the default before any."""
        return statistics.median(self.answer_s) if self.answer_s else DEFAULT_ANSWER_S

    def retry_after(self) -> int:
        """Whole seconds until the requests inside now are answered: (waiting + the running one) x the median
        answer time, so a client that comes back then is admitted and starts at once. At least 1, at most
        `MAX_RETRY_AFTER_S`."""
        waiting = self.admitted - (1 if self.holder is not None else 0)
        estimate = (waiting + 1) * self.answer_time()
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(estimate)))

    def record(self, seconds: float) -> None:
        self.answer_s.append(seconds)

    async def enter(self, slot: Slot) -> None:
        """Return once `slot` holds the model's turn: at once when nobody holds it, else in ticket order."""
        if self.holder is None:
            self._give(slot)
            return
        future = asyncio.get_running_loop().create_future()
        entry = (slot.ticket, future, slot)
        heapq.heappush(self.queue, entry)
        try:
            await future
        except BaseException:  # cancelled (client gone): out of the queue; a turn just handed over is passed on
            if entry in self.queue:
                self.queue.remove(entry)
                heapq.heapify(self.queue)
            raise

    def withdraw(self, slot: Slot) -> None:
        """`slot` is released while still waiting (its stream closed from outside): out of the queue, so the turn
        is never handed to a request that will not use it; its waiting task gets CancelledError."""
        for entry in [e for e in self.queue if e[2] is slot]:
            self.queue.remove(entry)
            heapq.heapify(self.queue)
            entry[1].cancel()

    def leave(self, slot: Slot) -> None:
        """`slot` is done with the model: the turn goes to the earliest-admitted waiting slot."""
        if self.holder is not slot:
            return
        self.holder = None
        while self.queue:
            _, future, waiter = heapq.heappop(self.queue)
            if not future.done():
                self._give(waiter)
                future.set_result(None)
                return

    def _give(self, slot: Slot) -> None:
        self.holder = slot
        slot.holds_turn = True
        slot.started = self.clock()


class Slot:
    """One admitted request. `async with` waits for the model's turn; `release()` is idempotent so the
    stream response can free a slot whose generator never started. `answered()` records how long the turn
    took, for Retry-After (only completed answers count: a failure or a client gone early says nothing)."""

    def __init__(self, admission: Admission, ticket: int):
        self.admission = admission
        self.ticket = ticket
        self.holds_turn = False
        self.released = False
        self.started = 0.0
        self.recorded = False

    async def __aenter__(self) -> Slot:
        try:
            await self.admission.enter(self)
        except BaseException:  # cancelled while waiting (client gone): leave the queue
            self.release()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()

    def answered(self) -> None:
        if self.holds_turn and not self.recorded:
            self.recorded = True
            self.admission.record(self.admission.clock() - self.started)

    def release(self) -> None:
        if self.holds_turn:
            self.holds_turn = False
            self.admission.leave(self)
        else:
            self.admission.withdraw(self)
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
                result = await run_in_threadpool(_consume, pipeline, question, k, stop)
                if result is not None:
                    slot.answered()
                return result

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
                    if isinstance(event, AnswerEvent):
                        self.slot.answered()
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
