"""The chat UI: a Gradio Blocks page over the server's `RagService`, mounted into the API's FastAPI app.

    from ui.app import mount_ui
    mount_ui(app, app.state.service)     # after every API route is added: "/" catches the rest

Why through the service (as private-gpt's Gradio UI calls the same service as its API): a chat answer is
checked against the same `RAG_MAX_QUESTION_CHARS`, admitted into the same slots (a full server is "busy"
here and 503 there), streamed and closed exactly as POST /ask/stream is, so the two cannot drift apart.
This module only renders: `ChatPage` holds the page's handlers as methods and lays the page out; the
steps of one answer come from ui/chat.py, the HTML from ui/render.py. Its limits come from the service's
Settings: the question box's length (`max_question_chars`), Gradio's queue (`queue_size`) and uploads
(`max_upload_bytes`).

Answers stream into the chat as the model writes them, then are replaced by the final, verified
answer (which may differ: the stream is the raw reply, the final answer is checked and may be a
refusal). Citation markers show as badges; the sources panel shows each cited passage with the
exact cited words in <mark>. Follow-up questions are searched together with a few words of the
previous turn (rag/followup.py).

The page also adds and removes documents through the service's library (rag/library.py, the API's too),
lists them with their indexing status, and draws its example questions from what is loaded
(ui/documents.py); the status timer keeps ticking so a changed index (an upload, `rag ingest` elsewhere)
shows without a reload.

Load limits: Gradio's own queue is bounded too (`max_size`): unbounded, 200 `queue/join` calls from one
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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import gradio as gr

from ui import conversations, documents, render
from ui.chat import BUSY_MESSAGE, DEFAULT_EXAMPLES, answer_events, assistant, status_markdown, user

if TYPE_CHECKING:
    from rag.api.service import RagService

__all__ = ["BUSY_MESSAGE", "PAGE_JS", "ChatPage", "build_ui", "mount_ui"]

STREAM_MIN_INTERVAL_S = 0.05  # at most ~20 chat updates a second while tokens arrive
STATUS_POLL_S = 2.0
SETTLED_POLL_S = 5.0  # once ready: slower, but still noticing a changed index
UPLOAD_TTL_S = 3600  # uploaded files older than this are deleted…
UPLOAD_SWEEP_S = 600  # …checked this often
STORAGE_KEY = "rag-chat-conversations"
# BrowserState encrypts what it stores with this; a random one per start (Gradio's default) made every
# stored conversation unreadable after `rag serve` restarted. The data never leaves the reader's browser.
STORAGE_SECRET = "rag-chat-conversations-v1"


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


class ChatPage:
    """The chat page over one service: the handlers Gradio calls, and `build()` to lay the page out.

    The handlers keep no state of their own (a conversation lives in the browser and in Gradio's per-session
    State), so one `ChatPage` serves every visitor.
    """

    def __init__(
        self,
        service: RagService,
        examples: Sequence[str] = DEFAULT_EXAMPLES,
        title: str = "rag-chat",
        upload_ttl_s: int = UPLOAD_TTL_S,
    ):
        self.service = service
        self.library = service.library
        self.examples = examples
        self.title = title
        self.upload_ttl_s = upload_ttl_s

    # -- answering
    async def respond(self, message: str, chat: list, history: list, conversation: str, saved: Any):
        """One question: the chat, the sources panel and the turn history as the answer comes in, then the
        conversation stored. Outputs: (question box, chat, sources, history, stored, conversation list)."""
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
        same = (gr.update(), gr.update())  # the stored conversations: written once, at the end
        searched = None
        passages: list[dict] = []
        last = 0.0
        # If the page goes away mid-answer, the running step finishes first (anyio waits for it), then closing
        # the steps closes the answer stream, which frees the model and the slot.
        async with contextlib.aclosing(answer_events(self.service, question, history)) as steps:
            async for kind, payload in steps:
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
                    turn = len(chat) - 1
                    chat[-1] = assistant(render.answer_html(payload, searched, turn=turn))
                    final_sources = render.sources_html(question, payload, passages, turn=turn)
                    history.append(
                        {
                            "question": question,
                            "query": searched or question,
                            "answer_text": payload.get("answer"),
                            "refused": bool(payload.get("refused")),
                            "message_index": turn,
                            "sources": final_sources,
                        }
                    )
                    yield keep, chat, final_sources, history, *same
        stored = conversations.store(saved, conversation, chat, history)
        listed = gr.Dropdown(choices=conversations.choices(stored), value=conversation)
        yield keep, chat, gr.update(), history, stored, listed

    def show_sources(self, history: list, evt: gr.SelectData):
        """Clicking a message shows the sources of its turn."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        for turn in history or []:
            if index in (turn["message_index"], turn["message_index"] - 1):
                return turn["sources"]
        return gr.update()

    # -- conversations
    def restore(self, saved):
        """On page load: the conversation the reader was in, as it was."""
        conversation, chat, history = conversations.opened(saved, None)
        return (
            chat,
            history,
            history[-1]["sources"] if history else render.sources_html(),
            conversation,
            gr.Dropdown(choices=conversations.choices(saved), value=conversation if history else None),
        )

    def reopen(self, choice, saved):
        conversation, chat, history = conversations.opened(saved, choice)
        stored = conversations.store(saved, conversation, chat, history) if history else saved
        return chat, history, history[-1]["sources"] if history else render.sources_html(), conversation, stored

    def reset(self, saved):
        """A new, empty conversation (stored once it has a question); earlier ones stay in the list."""
        return (
            [],
            [],
            render.sources_html(),
            conversations.new_id(),
            gr.Dropdown(choices=conversations.choices(saved), value=None),
        )

    def delete(self, conversation, saved):
        stored = conversations.delete(saved, conversation)
        return (
            [],
            [],
            render.sources_html(),
            conversations.new_id(),
            stored,
            gr.Dropdown(choices=conversations.choices(stored), value=None),
        )

    # -- status and documents
    def status(self, shown):
        """The status line; the examples and document list only when what is loaded changed."""
        get_pipeline = self.service.get_pipeline
        text, settled = status_markdown(get_pipeline)
        try:
            pipeline = get_pipeline()
        except Exception:  # noqa: BLE001 - the status line says it
            pipeline = None
        signature = (id(pipeline), self.library.version)
        timer = gr.Timer(SETTLED_POLL_S if settled and not self.library.busy else STATUS_POLL_S, active=True)
        if signature == shown:
            return text, timer, shown, gr.update(), gr.update(), gr.update()
        samples = [[q] for q in documents.suggested_questions(pipeline, self.examples, DEFAULT_EXAMPLES)]
        entries = self.library.list()
        return (
            text,
            timer,
            signature,
            gr.Dataset(samples=samples, visible=bool(samples)),
            documents.documents_html(entries),
            gr.Dropdown(choices=documents.removable(entries), value=None),
        )

    def listed(self):
        entries = self.library.list()
        return documents.documents_html(entries), gr.Dropdown(choices=documents.removable(entries), value=None)

    def add_files(self, paths):
        return documents.upload_files(self.library, paths), None, *self.listed()

    def remove(self, doc_id):
        return documents.remove_document(self.library, doc_id), *self.listed()

    # -- layout
    def build(self) -> gr.Blocks:
        """The page, its components wired to the handlers above. Mount it with `mount_ui` (which adds the CSS)."""
        title = self.title
        sweep = min(UPLOAD_SWEEP_S, self.upload_ttl_s)
        with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(sweep, self.upload_ttl_s)) as demo:
            with gr.Row(equal_height=False):
                heading = "answers from your documents, with sources you can check"
                gr.Markdown(f"### {render.text_html(title)} — {heading}")
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
                            max_length=self.service.settings.max_question_chars,  # checked again by the service
                        )
                        send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rag-send")
                    ex = gr.Dataset(
                        components=[question],
                        samples=[],
                        label="Example questions",
                        elem_id="rag-examples",
                        visible=False,
                    )
                    with gr.Row(equal_height=True):
                        conv_list = gr.Dropdown(
                            choices=[], value=None, label="Earlier conversations", scale=3, elem_id="rag-conversations"
                        )
                        clear = gr.Button(
                            "New conversation", size="sm", variant="secondary", scale=1, elem_id="rag-new"
                        )
                        forget = gr.Button(
                            "Delete conversation", size="sm", variant="stop", scale=1, elem_id="rag-delete"
                        )
                with gr.Column(scale=2, min_width=280):
                    with gr.Accordion("Documents", open=True):
                        upload = gr.File(
                            label="Add documents",
                            file_count="multiple",
                            type="filepath",
                            height=110,
                            elem_id="rag-upload",
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
                fn=self.respond,
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
            uploaded = [library_note, upload, doc_list, doc_choice]  # the file box is emptied once taken
            upload.upload(self.add_files, [upload], uploaded, api_visibility="private")
            remove_button.click(
                self.remove, [doc_choice], [library_note, doc_list, doc_choice], api_visibility="private"
            )
            chatbot.select(self.show_sources, [history], [sources], api_visibility="private", show_progress="hidden")
            fresh = [chatbot, history, sources, conversation, conv_list]
            clear.click(self.reset, [saved], fresh, api_visibility="private", queue=False)
            chatbot.clear(self.reset, [saved], fresh, api_visibility="private", queue=False)
            forgotten = [chatbot, history, sources, conversation, saved, conv_list]
            forget.click(self.delete, [conversation, saved], forgotten, api_visibility="private", queue=False)
            reopened = [chatbot, history, sources, conversation, saved]
            conv_list.input(self.reopen, [conv_list, saved], reopened, api_visibility="private", queue=False)
            demo.load(self.restore, [saved], fresh, api_visibility="private", show_progress="hidden")
            refreshed = [status_line, timer, shown, ex, doc_list, doc_choice]
            demo.load(self.status, [shown], refreshed, api_visibility="private", show_progress="hidden")
            timer.tick(self.status, [shown], refreshed, api_visibility="private", show_progress="hidden")
        return demo


def build_ui(
    service: RagService,
    examples: Sequence[str] = DEFAULT_EXAMPLES,
    title: str = "rag-chat",
    upload_ttl_s: int = UPLOAD_TTL_S,
) -> gr.Blocks:
    """The chat page over `service`. `examples` are the clickable questions for a pipeline without an index
    (the defaults suit the bundled seed document); a real pipeline's come from its documents."""
    return ChatPage(service, examples, title, upload_ttl_s).build()


def mount_ui(
    app,
    service: RagService,
    path: str = "/",
    examples: Sequence[str] = DEFAULT_EXAMPLES,
    upload_ttl_s: int = UPLOAD_TTL_S,
    **mount_kwargs,
):
    """Mount the chat page over `service` (the API's: `app.state.service`) on `app` at `path`; returns `app`.

    Call it after the API routes are added: a mount at "/" takes every path no earlier route matched.
    Gradio's queue of waiting chat events holds `RAG_QUEUE_SIZE`; uploads are capped at
    `RAG_MAX_UPLOAD_BYTES`. Extra keyword arguments go to `gr.mount_gradio_app` (e.g. `auth_dependency=`
    to protect the page).
    """
    settings = service.settings
    blocks = build_ui(service, examples, upload_ttl_s=upload_ttl_s)
    # api_open=False: events run only through the (bounded) queue, never via direct REST calls
    blocks.queue(max_size=settings.queue_size, api_open=False, default_concurrency_limit=1)
    mount_kwargs.setdefault("footer_links", [])
    mount_kwargs.setdefault("run_history", False)
    mount_kwargs.setdefault("max_file_size", settings.max_upload_bytes)
    css = render.CSS + documents.CSS + mount_kwargs.pop("css", "")
    js = PAGE_JS if "js" not in mount_kwargs else mount_kwargs.pop("js")
    return gr.mount_gradio_app(app, blocks, path=path, css=css, js=js, **mount_kwargs)
