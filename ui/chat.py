"""What the chat shows for a question, as a sequence of steps; no Gradio here, so it is tested directly.

`ui.app` turns these steps into chat and sources-panel updates.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Callable, Iterable, Sequence

from rag.contract import AnswerEvent, SourcesEvent, TokenEvent
from rag.errors import QueryError, RagError
from rag.text import counted
from rag.followup import PassageFrequency, Turn, passage_frequency, rewrite
from ui import render

log = logging.getLogger("rag.ui")

GetPipeline = Callable[[], Any]  # the loaded pipeline, None while loading; raises the load error

DEFAULT_EXAMPLES = (
    "When did Brad Smith meet Wang Wentao?",
    "Who translated the announcement?",
    "Which company developed ChatGPT?",
    "How many employees does Microsoft have in China?",
)


_frequencies: "weakref.WeakKeyDictionary[Any, PassageFrequency]" = weakref.WeakKeyDictionary()


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
    bits = [render.text_html(documents_phrase(docs, names)), render.text_html(counted(chunks, "passage")) if isinstance(chunks, int) else f"{chunks} passages"]
    if info.get("model"):
        bits.append(render.text_html(str(info["model"])) + (f" ({info['mode']})" if info.get("mode") else ""))
    return "Ready · " + " · ".join(bits), True


def answer_events(
    get_pipeline: GetPipeline,
    question: str,
    history: Sequence[dict],
) -> Iterable[tuple[str, Any]]:
    """What the chat should show for one question, as (kind, payload) steps:

    ("start", rewrite) · ("sources", [passage dicts]) · ("stream", raw text) · ("final", answer dict)
    or one ("loading", None) / ("error", message) instead. Never raises.
    """
    try:
        pipeline = get_pipeline()
    except RagError as exc:  # the load error, reported in the chat
        yield "error", exc.describe()
        return
    if pipeline is None:
        yield "loading", None
        return
    turns = [Turn(t["query"], t.get("answer_text"), t.get("refused", False)) for t in history if t.get("query")]
    rw = rewrite(question, turns, frequency_for(pipeline))
    yield "start", rw
    stream = None
    try:
        stream = pipeline.ask_stream(rw.query)
        raw = ""
        for event in stream:
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
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()  # a generator closed early releases the model
            except Exception:  # noqa: BLE001
                log.debug("closing the answer stream failed", exc_info=True)


def _explain(exc: Exception) -> str:
    if isinstance(exc, QueryError):
        return f"That question cannot be searched: {exc.describe()}"
    if isinstance(exc, RagError):
        return exc.describe()
    log.error("answering failed", exc_info=exc)
    return f"Something went wrong while answering ({type(exc).__name__}: {exc}). Please try again."
