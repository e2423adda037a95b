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

For daily use (ui/conversations.py): conversations live in the browser's localStorage (`gr.BrowserState`),
survive reloads and are listed to reopen or delete. The question box is cleared only when its question is
taken, never by the answer's later updates, so a next question typed while an answer streams stays there.
Two small scripts (`PAGE_JS`): the copy button copies the answer's plain text with its numbered sources
(the message itself is HTML), and a tap on an [n] badge shows that answer's sources and scrolls its
passage into view — on a phone the sources panel is below the chat, out of sight.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Sequence

import anyio
import gradio as gr
from fastapi import HTTPException

from ui import conversations, documents, render
from ui.chat import DEFAULT_EXAMPLES, GetPipeline, answer_events, assistant, status_markdown, user

STREAM_MIN_INTERVAL_S = 0.05  # at most ~20 chat updates a second while tokens arrive
STATUS_POLL_S = 2.0
SETTLED_POLL_S = 5.0  # once ready: slower, but still noticing a changed index
MAX_QUESTION_CHARS = 2000  # the API's default limit (Settings.max_question_chars)
QUEUE_MAX_SIZE = 4  # chat events waiting in Gradio's queue (Settings.queue_size when mounted by rag serve)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # without a library (python -m ui); `rag serve` uses Settings.max_upload_bytes
UPLOAD_TTL_S = 3600  # uploaded files older than this are deleted…
UPLOAD_SWEEP_S = 600  # …checked this often
STORAGE_KEY = "rag-chat-conversations"
# BrowserState encrypts what it stores with this; a random one per start (Gradio's default) made every
# stored conversation unreadable after `rag serve` restarted. The data never leaves the reader's browser.
STORAGE_SECRET = "rag-chat-conversations-v1"
BUSY_MESSAGE = "The server is busy answering other questions; please ask again in a moment."
_END = object()


PAGE_JS = """
() => {
  if (window.__ragWired) return;
  window.__ragWired = true;
  // The nearest ancestor of `el` holding exactly one message's `sel` (the message `el` belongs to).
  const own = (el, sel) => {
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      const found = node.querySelectorAll ? node.querySelectorAll(sel) : [];
      if (found.length === 1) return found[0];
      if (found.length > 1) return null;
    }
    return null;
  };
  document.addEventListener("click", (event) => {
    const chat = document.getElementById("rag-chat");
    if (!chat || !chat.contains(event.target)) return;
    // copy: the answer's plain text with its numbered sources, not the message's HTML
    const button = event.target.closest("button");
    const label = button ? ((button.getAttribute("aria-label") || "") + " " + (button.title || "")).toLowerCase() : "";
    if (button && label.includes("copy")) {
      const plain = own(button, ".rag-copy[title]");
      if (plain) {
        event.stopPropagation();
        event.preventDefault();
        navigator.clipboard.writeText(plain.getAttribute("title"));
        return;
      }
    }
    // a badge: once the sources panel shows this answer's sources, bring the cited passage into view
    const badge = event.target.closest(".rag-badge");
    if (!badge) return;
    const mark = own(badge, ".rag-turn");
    const found = mark ? /rag-turn-(\\d+)/.exec(mark.className) : null;
    const turn = found ? found[1] : null;
    const n = badge.textContent.trim();
    const started = Date.now();
    const look = () => {
      const panel = document.querySelector("#rag-sources .rag-sources" + (turn !== null ? `[data-turn="${turn}"]` : ""));
      const card = panel && panel.querySelector(`.rag-source.rag-cited[data-n="${n}"]`);
      if (card) {
        card.scrollIntoView({behavior: "smooth", block: "start"});
        card.classList.add("rag-flash");
        setTimeout(() => card.classList.remove("rag-flash"), 1500);
      } else if (Date.now() - started < 3000) {
        setTimeout(look, 100);
      }
    };
    look();
  }, true);
}
"""


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

    async def respond(message: str, chat: list, history: list, conversation: str, saved: Any):
        question = (message or "").strip()
        chat = list(chat or [])
        history = list(history or [])
        keep = gr.update()  # the box after the question is taken: whatever the reader types next stays
        if not question:
            yield gr.update(), chat, gr.update(), history, gr.update(), gr.update()
            return
        chat.append(user(question))
        chat.append(assistant(render.streaming_html("")))
        yield "", chat, gr.update(), history, gr.update(), gr.update()

        def saving():
            stored = conversations.store(saved, conversation, chat, history)
            return stored, gr.Dropdown(choices=conversations.choices(stored), value=conversation)

        try:
            slot = admission.admit() if admission is not None else contextlib.nullcontext()
        except HTTPException:  # no slot left: what the API answers with 503, as a chat message
            chat[-1] = assistant(render.error_html(BUSY_MESSAGE))
            yield keep, chat, gr.update(), history, *saving()
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
                    same = (gr.update(), gr.update())  # the stored conversations: written once, at the end
                    if kind == "loading":
                        chat[-1] = assistant(render.loading_html())
                        yield keep, chat, gr.update(), history, *same
                    elif kind == "error":
                        chat[-1] = assistant(render.error_html(payload))
                        yield keep, chat, gr.update(), history, *same
                    elif kind == "start":
                        searched = payload.query if payload.applied else None
                        if searched:
                            chat[-1] = assistant(render.streaming_html("", searched))
                            yield keep, chat, gr.update(), history, *same
                    elif kind == "sources":
                        passages = payload
                        yield keep, chat, render.sources_html(question, None, passages), history, *same
                    elif kind == "stream":
                        now = time.monotonic()
                        if now - last >= STREAM_MIN_INTERVAL_S:
                            last = now
                            chat[-1] = assistant(render.streaming_html(payload, searched))
                            yield keep, chat, gr.update(), history, *same
                    elif kind == "final":
                        answer = payload
                        turn = len(chat) - 1
                        chat[-1] = assistant(render.answer_html(answer, searched, turn=turn))
                        final_sources = render.sources_html(question, answer, passages, turn=turn)
                        history.append(
                            {
                                "question": question,
                                "query": searched or question,
                                "answer_text": answer.get("answer"),
                                "refused": bool(answer.get("refused")),
                                "message_index": turn,
                                "sources": final_sources,
                            }
                        )
                        yield keep, chat, final_sources, history, *same
            yield keep, chat, gr.update(), history, *saving()
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

    def restore(saved):
        """On page load: the conversation the reader was in, as it was."""
        conversation, chat, history = conversations.opened(saved, None)
        return (
            chat,
            history,
            history[-1]["sources"] if history else render.sources_html(),
            conversation,
            gr.Dropdown(choices=conversations.choices(saved), value=conversation if history else None),
        )

    def reopen(choice, saved):
        conversation, chat, history = conversations.opened(saved, choice)
        stored = conversations.store(saved, conversation, chat, history) if history else saved
        return chat, history, history[-1]["sources"] if history else render.sources_html(), conversation, stored

    def reset(saved):
        """A new, empty conversation (stored once it has a question); earlier ones stay in the list."""
        return [], [], render.sources_html(), conversations.new_id(), gr.Dropdown(
            choices=conversations.choices(saved), value=None
        )

    def delete(conversation, saved):
        stored = conversations.delete(saved, conversation)
        return [], [], render.sources_html(), conversations.new_id(), stored, gr.Dropdown(
            choices=conversations.choices(stored), value=None
        )

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
        conversation = gr.State("")  # the id of the conversation on screen (ui/conversations.py)
        saved = gr.BrowserState(conversations.empty(), storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
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
                with gr.Row(equal_height=True):
                    conv_list = gr.Dropdown(
                        choices=[], value=None, label="Earlier conversations", scale=3, elem_id="rag-conversations"
                    )
                    clear = gr.Button("New conversation", size="sm", variant="secondary", scale=1, elem_id="rag-new")
                    forget = gr.Button("Delete conversation", size="sm", variant="stop", scale=1, elem_id="rag-delete")
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

        outputs = [question, chatbot, sources, history, saved, conv_list]
        # one answer at a time across the page (the model is one), so a session's turns never interleave
        ask = dict(
            fn=respond,
            inputs=[question, chatbot, history, conversation, saved],
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
        fresh = [chatbot, history, sources, conversation, conv_list]
        clear.click(reset, [saved], fresh, api_visibility="private", queue=False)
        chatbot.clear(reset, [saved], fresh, api_visibility="private", queue=False)
        forget.click(delete, [conversation, saved], [chatbot, history, sources, conversation, saved, conv_list],
                     api_visibility="private", queue=False)  # fmt: skip
        conv_list.input(reopen, [conv_list, saved], [chatbot, history, sources, conversation, saved],
                        api_visibility="private", queue=False)  # fmt: skip
        demo.load(restore, [saved], fresh, api_visibility="private", show_progress="hidden")
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
    js = PAGE_JS if "js" not in mount_kwargs else mount_kwargs.pop("js")
    return gr.mount_gradio_app(app, blocks, path=path, css=css, js=js, **mount_kwargs)
