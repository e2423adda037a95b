"""What the chat shows for a question, as a sequence of steps; no Gradio here, so it is tested directly.

`ui.app` turns these steps into chat and sources-panel updates. The answer itself comes from the server's
`RagService` (rag/api/service.py), exactly as POST /ask/stream gets it: the service checks the question
against the configured limit, admits it into the slots the API uses too (so "busy" is one limit for both),
streams typed events and closes the stream. What is left here is the chat's own part: follow-up rewriting
and turning each outcome into something to show, never an exception.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from rag.contract import AnswerEvent, SourcesEvent, TokenEvent
from rag.errors import QueryError, RagError, ServerBusy, StillLoading
from rag.followup import PassageFrequency, Rewrite, Turn, passage_frequency, rewrite
from rag.text import counted
from ui import render

if TYPE_CHECKING:
    from rag.api.service import RagService

log = logging.getLogger("rag.ui")

BUSY_MESSAGE = "The server is busy answering other questions; please ask again in a moment."

GetPipeline = Callable[[], Any]  # the loaded pipeline, None while loading; raises the load error

DEFAULT_EXAMPLES = (
    "When did Brad Smith meet Wang Wentao?",
    "Who translated the announcement?",
    "Which company developed ChatGPT?",
    "How many employees does Microsoft have in China?",
)


_frequencies: weakref.WeakKeyDictionary[Any, PassageFrequency] = weakref.WeakKeyDictionary()


def frequency_for(pipeline: Any) -> PassageFrequency | None:
    """Passage frequency of words in the pipeline's collection (built once per pipeline), if it has one."""
    try:
        return _frequencies[pipeline]
    except (KeyError, TypeError):
        pass
    chunks = getattr(getattr(pipeline, "index", None), "chunks", None)
    if chunks is None:
        return None
    freq = passage_frequency(c.text for c in chunks)
    try:
        _frequencies[pipeline] = freq
    except TypeError:  # not weak-referenceable: rebuilt next time
        pass
    return freq


def user(text: str) -> dict:
    return {"role": "user", "content": render.text_html(text)}


def assistant(html: str) -> dict:
    return {"role": "assistant", "content": html}


def status_markdown(get_pipeline: GetPipeline) -> tuple[str, bool]:
    """(status line, ready?) for the header."""
    try:
        pipeline = get_pipeline()
    except RagError as exc:  # shown, not raised
        return f"**Error:** {render.text_html(exc.describe())}", True
    if pipeline is None:
        return render.text_html(render.LOADING_MESSAGE), False
    try:
        info = pipeline.info()
    except Exception as exc:  # noqa: BLE001
        return f"**Error:** {render.text_html(str(exc))}", True
    from ui.documents import documents_phrase, indexed_documents

    docs, chunks = info.get("documents"), info.get("chunks")
    names = sorted(indexed_documents(pipeline) or {})
    bits = [
        render.text_html(documents_phrase(docs, names)),
        render.text_html(counted(chunks, "passage")) if isinstance(chunks, int) else f"{chunks} passages",
    ]
    if info.get("model"):
        bits.append(render.text_html(str(info["model"])) + (f" ({info['mode']})" if info.get("mode") else ""))
    return "Ready · " + " · ".join(bits), True


def followup(question: str, history: Sequence[dict], pipeline: Any) -> Rewrite:
    """The question, or the question plus a few words of the previous turn when it is a follow-up."""
    turns = [Turn(t["query"], t.get("answer_text"), t.get("refused", False)) for t in history if t.get("query")]
    return rewrite(question, turns, frequency_for(pipeline))


async def answer_events(service: RagService, question: str, history: Sequence[dict]) -> AsyncIterator[tuple[str, Any]]:
    """What the chat should show for one question, as (kind, payload) steps:

    ("start", rewrite) · ("sources", [passage dicts]) · ("stream", raw text) · ("final", answer dict)
    or one ("loading", None) / ("error", message) instead. Never raises.

    Close it (`contextlib.aclosing`) if it is left early: that closes the answer stream, which frees the
    model and the admission slot.
    """
    try:
        question = service.check_question(question)
        pipeline = service.get_pipeline()
        if pipeline is None:
            yield "loading", None
            return
        # off the event loop: the first follow-up on an index counts its words (once per index)
        rw = await anyio.to_thread.run_sync(followup, question, history, pipeline)
        stream = service.open_stream(question, query=rw.query)
    except StillLoading:
        yield "loading", None
        return
    except ServerBusy as busy:  # every slot taken, by the API or other chats: what the API answers with 503
        wait = f" The wait is about {busy.retry_after} s." if busy.retry_after else ""
        yield "error", BUSY_MESSAGE + wait  # the API's Retry-After: the queue x recent answer times
        return
    except Exception as exc:  # noqa: BLE001 - a rejected question, the load error: a chat message
        yield "error", _explain(exc)
        return
    try:
        yield "start", rw
        raw = ""
        async with contextlib.aclosing(stream.events()) as events:
            async for event in events:
                if isinstance(event, SourcesEvent):
                    yield "sources", [p.model_dump() for p in event.passages]
                elif isinstance(event, TokenEvent):
                    raw += event.text
                    yield "stream", raw
                elif isinstance(event, AnswerEvent):
                    yield "final", event.answer.model_dump()
                    return
        yield "error", "The answer stream ended without an answer."
    except Exception as exc:  # noqa: BLE001 - every failure becomes a chat message
        yield "error", _explain(exc)
    finally:
        stream.close()  # however this ends: the model and the slot are free for the next question


def _explain(exc: Exception) -> str:
    if isinstance(exc, QueryError):
        return f"That question cannot be searched: {exc.describe()}"
    if isinstance(exc, RagError):
        return exc.describe()
    log.error("answering failed", exc_info=exc)
    return f"Something went wrong while answering ({type(exc).__name__}: {exc}). Please try again."
