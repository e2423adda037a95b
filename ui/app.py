"""The chat UI: a Gradio Blocks page over the pipeline, mounted into the API's FastAPI app.

    from ui.app import mount_ui
    mount_ui(app, get_pipeline)          # after every API route is added: "/" catches the rest

`get_pipeline()` returns the loaded pipeline, None while it loads, or raises the load error. The
UI only calls `pipeline.ask_stream` and `pipeline.info`; the pipeline serialises model access.

Answers stream into the chat as the model writes them, then are replaced by the final, verified
answer (which may differ: the stream is the raw reply, the final answer is checked and may be a
refusal). Citation markers show as badges; the sources panel shows each cited passage with the
exact cited words in <mark>. Follow-up questions are searched together with a few words of the
previous turn (rag/followup.py).

With a `library` (rag/library.py, the server's), the page also adds and removes documents, lists them
with their indexing status, and draws its example questions from what is loaded (ui/documents.py); the
status timer keeps ticking so a changed index (an upload, `rag ingest` elsewhere) shows without a reload.

Load limits: given the API's `Admission` (`rag serve` passes it), a chat answer takes a slot like
an API request does, and is told "busy" when there is none, so the chat and the API share one
limit. Gradio's own queue is bounded too (`max_size`): unbounded, 200 `queue/join` calls from one
client were all accepted and each unread job kept ~0.5 MB. Uploads (Gradio accepts them at
/gradio_api/upload without auth, whatever the page shows) are capped in size and deleted after
`UPLOAD_TTL_S`.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Sequence

import anyio
import gradio as gr
from fastapi import HTTPException

from ui import documents, render
from ui.chat import DEFAULT_EXAMPLES, GetPipeline, answer_events, assistant, status_markdown, user

STREAM_MIN_INTERVAL_S = 0.05  # at most ~20 chat updates a second while tokens arrive
STATUS_POLL_S = 2.0
SETTLED_POLL_S = 5.0  # once ready: slower, but still noticing a changed index
MAX_QUESTION_CHARS = 2000  # the API's default limit (Settings.max_question_chars)
QUEUE_MAX_SIZE = 4  # chat events waiting in Gradio's queue (Settings.queue_size when mounted by rag serve)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # without a library (python -m ui); `rag serve` uses Settings.max_upload_bytes
UPLOAD_TTL_S = 3600  # uploaded files older than this are deleted…
UPLOAD_SWEEP_S = 600  # …checked this often
BUSY_MESSAGE = "The server is busy answering other questions; please ask again in a moment."
_END = object()


# --- the page -------------------------------------------------------------------------------------------


def build_ui(
    get_pipeline: GetPipeline,
    examples: Sequence[str] = DEFAULT_EXAMPLES,
    title: str = "rag-chat",
    library=None,
    admission: Any = None,
    upload_ttl_s: int = UPLOAD_TTL_S,
) -> gr.Blocks:
    """The chat page. Mount it with `mount_ui` (which also adds the page's CSS).

    `examples` are the clickable questions for a pipeline without an index (the defaults suit the bundled
    seed document); a real pipeline's come from its documents. `library`: the upload/remove panel.
    `admission` (rag.api.service.Admission) makes each answer take one of the API's slots.
    """

    async def respond(message: str, chat: list, history: list):
        question = (message or "").strip()
        chat = list(chat or [])
        history = list(history or [])
        if not question:
            yield gr.update(), chat, gr.update(), history
            return
        chat.append(user(question))
        chat.append(assistant(render.streaming_html("")))
        yield "", chat, gr.update(), history
        try:
            slot = admission.admit() if admission is not None else contextlib.nullcontext()
        except HTTPException:  # no slot left: what the API answers with 503, as a chat message
            chat[-1] = assistant(render.error_html(BUSY_MESSAGE))
            yield "", chat, gr.update(), history
            return
        searched = None
        passages: list[dict] = []
        last = 0.0
        # answer_events blocks (retrieval, llama.cpp): one step at a time in a worker thread. If the page
        # goes away mid-answer, the running step finishes first (anyio waits for it), then closing the
        # generator closes the pipeline's stream, which frees the model.
        events = iter(answer_events(get_pipeline, question, history))
        try:
            async with slot:  # waits for the model's turn behind admitted API requests
                while (event := await anyio.to_thread.run_sync(next, events, _END)) is not _END:
                    kind, payload = event
                    if kind == "loading":
                        chat[-1] = assistant(render.loading_html())
                        yield "", chat, gr.update(), history
                    elif kind == "error":
                        chat[-1] = assistant(render.error_html(payload))
                        yield "", chat, gr.update(), history
                    elif kind == "start":
                        searched = payload.query if payload.applied else None
                        if searched:
                            chat[-1] = assistant(render.streaming_html("", searched))
                            yield "", chat, gr.update(), history
                    elif kind == "sources":
                        passages = payload
                        yield "", chat, render.sources_html(question, None, passages), history
                    elif kind == "stream":
                        now = time.monotonic()
                        if now - last >= STREAM_MIN_INTERVAL_S:
                            last = now
                            chat[-1] = assistant(render.streaming_html(payload, searched))
                            yield "", chat, gr.update(), history
                    elif kind == "final":
                        answer = payload
                        chat[-1] = assistant(render.answer_html(answer, searched))
                        sources = render.sources_html(question, answer, passages)
                        history.append(
                            {
                                "question": question,
                                "query": searched or question,
                                "answer_text": answer.get("answer"),
                                "refused": bool(answer.get("refused")),
                                "message_index": len(chat) - 1,
                                "sources": sources,
                            }
                        )
                        yield "", chat, sources, history
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def show_sources(history: list, evt: gr.SelectData):
        """Clicking a message shows the sources of its turn."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        for turn in history or []:
            if index in (turn["message_index"], turn["message_index"] - 1):
                return turn["sources"]
        return gr.update()

    def reset():
        return [], [], render.sources_html(), ""

    def status(shown):
        """The status line; the examples and document list only when what is loaded changed."""
        text, settled = status_markdown(get_pipeline)
        try:
            pipeline = get_pipeline()
        except Exception:  # noqa: BLE001 - the status line says it
            pipeline = None
        busy = library is not None and library.busy
        signature = (id(pipeline), library.version if library is not None else 0)
        timer = gr.Timer(SETTLED_POLL_S if settled and not busy else STATUS_POLL_S, active=True)
        if signature == shown:
            return text, timer, shown, gr.update(), gr.update(), gr.update()
        samples = [[q] for q in documents.suggested_questions(pipeline, examples, DEFAULT_EXAMPLES)]
        entries = library.list() if library is not None else []
        return (
            text,
            timer,
            signature,
            gr.Dataset(samples=samples, visible=bool(samples)),
            documents.documents_html(entries),
            gr.Dropdown(choices=documents.removable(entries), value=None),
        )

    def listed():
        entries = library.list()
        return documents.documents_html(entries), gr.Dropdown(choices=documents.removable(entries), value=None)

    def add_files(paths):
        return documents.upload_files(library, paths), None, *listed()

    def remove(doc_id):
        return documents.remove_document(library, doc_id), *listed()

    sweep = min(UPLOAD_SWEEP_S, upload_ttl_s)
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(sweep, upload_ttl_s)) as demo:
        with gr.Row(equal_height=False):
            gr.Markdown(f"### {render.text_html(title)} — answers from your documents, with sources you can check")
        status_line = gr.Markdown(render.text_html(render.LOADING_MESSAGE), elem_id="rag-status")
        history = gr.State([])
        shown = gr.State(None)  # what the examples and document list were drawn from
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    elem_id="rag-chat",
                    label="Chat",
                    height=440,
                    latex_delimiters=[],
                    buttons=["copy"],
                    feedback_options=None,
                    placeholder="Ask a question about the documents. Answers cite the passages they come from.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        elem_id="rag-question",
                        placeholder="Ask about the documents… (Enter to send)",
                        show_label=False,
                        scale=5,
                        lines=1,
                        max_lines=4,
                        autofocus=True,
                        max_length=MAX_QUESTION_CHARS,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rag-send")
                ex = gr.Dataset(
                    components=[question], samples=[], label="Example questions", elem_id="rag-examples", visible=False
                )
                clear = gr.Button("New conversation", size="sm", variant="secondary")
            with gr.Column(scale=2, min_width=280):
                with gr.Accordion("Documents", open=True, visible=library is not None):
                    upload = gr.File(
                        label="Add documents", file_count="multiple", type="filepath", height=110, elem_id="rag-upload"
                    )
                    doc_list = gr.HTML(documents.documents_html([]), elem_id="rag-documents")
                    with gr.Row():
                        doc_choice = gr.Dropdown(
                            choices=[], label="Remove a document", scale=3, elem_id="rag-remove-choice"
                        )
                        remove_button = gr.Button("Remove", size="sm", scale=1, min_width=80, elem_id="rag-remove")
                    library_note = gr.Markdown("", elem_id="rag-library-note")
                gr.Markdown("#### Sources")
                sources = gr.HTML(render.sources_html(), elem_id="rag-sources")
        timer = gr.Timer(STATUS_POLL_S)

        outputs = [question, chatbot, sources, history]
        # one answer at a time across the page (the model is one), so a session's turns never interleave
        ask = dict(
            fn=respond,
            inputs=[question, chatbot, history],
            outputs=outputs,
            api_visibility="private",
            concurrency_id="rag-answer",
            concurrency_limit=1,
        )
        question.submit(**ask, show_progress="minimal")
        send.click(**ask, show_progress="minimal")
        ex.click(lambda sample: sample[0], [ex], [question], api_visibility="private", queue=False).then(
            **ask, show_progress="minimal"
        )
        if library is not None:
            upload.upload(add_files, [upload], [library_note, upload, doc_list, doc_choice], api_visibility="private")
            remove_button.click(remove, [doc_choice], [library_note, doc_list, doc_choice], api_visibility="private")
        chatbot.select(show_sources, [history], [sources], api_visibility="private", show_progress="hidden")
        clear.click(reset, None, [chatbot, history, sources, question], api_visibility="private", queue=False)
        chatbot.clear(reset, None, [chatbot, history, sources, question], api_visibility="private", queue=False)
        refreshed = [status_line, timer, shown, ex, doc_list, doc_choice]
        demo.load(status, [shown], refreshed, api_visibility="private", show_progress="hidden")
        timer.tick(status, [shown], refreshed, api_visibility="private", show_progress="hidden")
    return demo


def mount_ui(
    app,
    get_pipeline: GetPipeline,
    path: str = "/",
    examples: Sequence[str] = DEFAULT_EXAMPLES,
    library=None,
    admission: Any = None,
    queue_size: int = QUEUE_MAX_SIZE,
    max_upload_bytes: int | None = None,
    upload_ttl_s: int = UPLOAD_TTL_S,
    **mount_kwargs,
):
    """Mount the chat page on `app` at `path`; returns `app`.

    Call it after the API routes are added: a mount at "/" takes every path no earlier route matched.
    `admission` is the API's (`app.state.service.admission`), so chat answers count against its limit;
    `queue_size` bounds Gradio's own queue of waiting chat events. Extra keyword arguments go to
    `gr.mount_gradio_app` (e.g. `auth_dependency=` to protect the page).
    """
    blocks = build_ui(get_pipeline, examples, library=library, admission=admission, upload_ttl_s=upload_ttl_s)
    # api_open=False: events run only through the (bounded) queue, never via direct REST calls
    blocks.queue(max_size=queue_size, api_open=False, default_concurrency_limit=1)
    mount_kwargs.setdefault("footer_links", [])
    mount_kwargs.setdefault("run_history", False)
    if max_upload_bytes is None:
        max_upload_bytes = library.settings.max_upload_bytes if library is not None else MAX_UPLOAD_BYTES
    mount_kwargs.setdefault("max_file_size", max_upload_bytes)
    css = render.CSS + documents.CSS + mount_kwargs.pop("css", "")
    return gr.mount_gradio_app(app, blocks, path=path, css=css, **mount_kwargs)
