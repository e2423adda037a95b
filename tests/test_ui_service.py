"""The chat answers through `RagService`, as POST /ask/stream does: the service's question limit, its admission
(busy), its typed events and its closing hold for a chat answer too. Driven through `ChatPage.respond`, the
handler Gradio calls, with the shared fake pipeline; no browser, no Gradio server.
"""

from __future__ import annotations

import asyncio
import html

import gradio as gr
import pytest
from fastapi import HTTPException

from rag.api.service import RagService
from rag.contract import AnswerEvent, SourcesEvent, TokenEvent
from rag.errors import RagError, ServerBusy, StillLoading
from rag.settings import Settings
from ui.app import ChatPage, build_ui
from ui.chat import BUSY_MESSAGE

from .test_ui import chat_pipeline

QUESTION = "When did Brad Smith meet Wang Wentao?"


def page(pipeline=None, **settings) -> ChatPage:
    return ChatPage(RagService(Settings(**settings), pipeline))


def ask(chat: ChatPage, question: str = QUESTION) -> list[tuple]:
    """Every update `respond` makes for one question in a new conversation."""

    async def go():
        return [step async for step in chat.respond(question, [], [], "c1", None)]

    return asyncio.run(go())


def last_reply(steps: list[tuple]) -> str:
    """The chat's last message as it reads (its HTML unescaped)."""
    return html.unescape(steps[-1][1][-1]["content"])


def assert_free(service: RagService) -> None:
    assert service.admission.admitted == 0 and not service.admission.running


# --- busy: one admission for the API and the chat ---------------------------------------------------------------


def test_busy_is_a_rag_error_with_status_503_and_a_retry_time():
    service = RagService(Settings(queue_size=1), chat_pipeline())
    held = [service.admission.admit() for _ in range(service.admission.capacity)]
    with pytest.raises(ServerBusy) as caught:
        service.open_stream(QUESTION)
    error = caught.value
    assert isinstance(error, RagError) and not isinstance(error, HTTPException)
    assert error.status == 503 and error.retry_after and "busy" in error.describe()
    for slot in held:
        slot.release()
    assert_free(service)


def test_the_chat_is_told_busy_and_keeps_the_conversation():
    fake = chat_pipeline()
    chat = page(fake, queue_size=1)
    held = [chat.service.admission.admit() for _ in range(chat.service.admission.capacity)]
    steps = ask(chat)
    assert BUSY_MESSAGE in last_reply(steps) and "rag-error" in last_reply(steps)
    assert "The wait is about 6 s." in last_reply(steps)  # 2 waiting (none at the model yet) + 1, x 2 s
    assert fake.calls == [] and chat.service.admission.admitted == len(held)
    stored = steps[-1][4]
    assert stored != gr.update() and "c1" in str(stored)  # the turn is kept, so the question can be asked again
    for slot in held:
        slot.release()
    assert "Wednesday" in last_reply(ask(chat))  # a slot free again: answered


# --- the question limit: RAG_MAX_QUESTION_CHARS, not a number of the UI's own --------------------------------------


def test_a_question_over_the_configured_limit_is_refused_without_reaching_the_model():
    fake = chat_pipeline()
    chat = page(fake, max_question_chars=40)
    steps = ask(chat, "x" * 41)
    assert "too long (41 characters; the limit is 40)" in last_reply(steps) and "rag-error" in last_reply(steps)
    assert fake.calls == []
    assert_free(chat.service)
    assert "Wednesday" in last_reply(ask(chat, "y" * 40))  # at the limit: answered
    assert fake.questions == ["y" * 40]


def test_a_question_of_invisible_characters_is_refused_like_the_api_refuses_it():
    fake = chat_pipeline()
    steps = ask(page(fake), "\u200b\u2060")
    assert "must not be blank" in last_reply(steps) and fake.calls == []


def test_the_question_box_holds_the_configured_number_of_characters():
    blocks = build_ui(RagService(Settings(max_question_chars=123), chat_pipeline()))
    box = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "rag-question")
    assert box.max_length == 123


# --- typed events and closing ---------------------------------------------------------------------------------------


def test_the_service_streams_typed_events_and_frees_the_slot():
    service = RagService(Settings(), chat_pipeline())

    async def go():
        stream = service.open_stream(QUESTION)
        assert service.admission.admitted == 1
        return [event async for event in stream.events()]

    events = asyncio.run(go())
    assert [type(e) for e in events] == [SourcesEvent, TokenEvent, TokenEvent, TokenEvent, AnswerEvent]
    assert_free(service)


def test_a_chat_answer_left_mid_stream_closes_the_pipeline_and_frees_the_slot():
    fake = chat_pipeline()
    chat = page(fake)

    async def go():
        steps = chat.respond(QUESTION, [], [], "c1", None)
        async for _, shown, *_ in steps:
            if "Wed" in shown[-1]["content"]:  # a token is on screen: the reader closes the page
                assert chat.service.admission.admitted == 1
                await steps.aclose()
                return True
        return False

    assert asyncio.run(go()), "no token was streamed"
    assert fake.closed == 1 and fake.emitted[-1] == "token"
    assert_free(chat.service)


def test_a_failure_while_answering_is_a_message_and_frees_the_slot():
    fake = chat_pipeline(fail=RuntimeError("llama exploded"))
    chat = page(fake)
    steps = ask(chat)
    assert "rag-error" in last_reply(steps) and "llama exploded" in last_reply(steps)
    assert fake.closed == 1
    assert_free(chat.service)


def test_while_loading_the_chat_says_so_and_takes_no_slot():
    chat = page()  # no pipeline yet
    with pytest.raises(StillLoading):
        chat.service.open_stream(QUESTION)
    steps = ask(chat)
    assert "Model is loading" in last_reply(steps)
    assert_free(chat.service)
