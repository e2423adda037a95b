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
"""

from __future__ import annotations

import time
from typing import Sequence

import gradio as gr

from ui import render
from ui.chat import DEFAULT_EXAMPLES, GetPipeline, answer_events, assistant, status_markdown, user

STREAM_MIN_INTERVAL_S = 0.05  # at most ~20 chat updates a second while tokens arrive
STATUS_POLL_S = 2.0
MAX_QUESTION_CHARS = 2000  # the API's default limit (Settings.max_question_chars)


# --- the page -------------------------------------------------------------------------------------------


def build_ui(get_pipeline: GetPipeline, examples: Sequence[str] = DEFAULT_EXAMPLES, title: str = "rag-chat") -> gr.Blocks:
    """The chat page. Mount it with `mount_ui` (which also adds the page's CSS).

    `examples` are the clickable questions (the defaults suit the bundled seed document).
    """

    def respond(message: str, chat: list, history: list):
        question = (message or "").strip()
        chat = list(chat or [])
        history = list(history or [])
        if not question:
            yield gr.update(), chat, gr.update(), history
            return
        chat.append(user(question))
        chat.append(assistant(render.streaming_html("")))
        searched = None
        passages: list[dict] = []
        last = 0.0
        yield "", chat, gr.update(), history
        for kind, payload in answer_events(get_pipeline, question, history):
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

    def show_sources(history: list, evt: gr.SelectData):
        """Clicking a message shows the sources of its turn."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        for turn in history or []:
            if index in (turn["message_index"], turn["message_index"] - 1):
                return turn["sources"]
        return gr.update()

    def reset():
        return [], [], render.sources_html(), ""

    def status():
        text, settled = status_markdown(get_pipeline)
        return text, gr.Timer(active=not settled)

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        with gr.Row(equal_height=False):
            gr.Markdown(f"### {render.text_html(title)} — answers from your documents, with sources you can check")
        status_line = gr.Markdown(render.text_html(render.LOADING_MESSAGE), elem_id="rag-status")
        history = gr.State([])
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
                ex = gr.Examples(examples=[[q] for q in examples], inputs=[question], label="Example questions")
                clear = gr.Button("New conversation", size="sm", variant="secondary")
            with gr.Column(scale=2, min_width=280):
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
        ex.load_input_event.then(**ask, show_progress="minimal")
        chatbot.select(show_sources, [history], [sources], api_visibility="private", show_progress="hidden")
        clear.click(reset, None, [chatbot, history, sources, question], api_visibility="private", queue=False)
        chatbot.clear(reset, None, [chatbot, history, sources, question], api_visibility="private", queue=False)
        demo.load(status, None, [status_line, timer], api_visibility="private", show_progress="hidden")
        timer.tick(status, None, [status_line, timer], api_visibility="private", show_progress="hidden")
    return demo


def mount_ui(
    app, get_pipeline: GetPipeline, path: str = "/", examples: Sequence[str] = DEFAULT_EXAMPLES, **mount_kwargs
):
    """Mount the chat page on `app` at `path`; returns `app`.

    Call it after the API routes are added: a mount at "/" takes every path no earlier route matched.
    Extra keyword arguments go to `gr.mount_gradio_app` (e.g. `auth_dependency=` to protect the page).
    """
    blocks = build_ui(get_pipeline, examples)
    mount_kwargs.setdefault("footer_links", [])
    mount_kwargs.setdefault("run_history", False)
    css = render.CSS + mount_kwargs.pop("css", "")
    return gr.mount_gradio_app(app, blocks, path=path, css=css, **mount_kwargs)
