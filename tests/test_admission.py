"""Admission to the model (rag/api/service.py): first come, first served across /ask, /ask/stream and the chat,
and a Retry-After computed from the queue and recent answer times."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from rag.api import create_app
from rag.api.service import DEFAULT_ANSWER_S, MAX_RETRY_AFTER_S, RECENT_ANSWERS, Admission
from rag.errors import ServerBusy
from rag.settings import Settings

from .test_api import BASE, api_pipeline


async def _until(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


# --- first come, first served ----------------------------------------------------------------------------


def test_waiting_slots_get_the_model_in_admission_order_even_when_they_start_waiting_out_of_order():
    """A streamed answer starts waiting only when its response body starts: a later /ask must not overtake it
    (an asyncio.Lock would serve them in the order they called acquire: 3, 2, 1, 0 here)."""

    async def scenario():
        admission = Admission(waiting=4)
        running = admission.admit()
        await running.__aenter__()
        slots = [admission.admit() for _ in range(4)]
        order: list[int] = []

        async def answer(i: int):
            async with slots[i]:
                order.append(i)
                await asyncio.sleep(0.01)  # a slow answer: the next waits for it

        tasks = []
        for i in reversed(range(4)):
            tasks.append(asyncio.create_task(answer(i)))
            await asyncio.sleep(0.005)
        assert order == [] and len(admission.queue) == 4
        await running.__aexit__(None, None, None)
        await asyncio.gather(*tasks)
        return order, admission

    order, admission = asyncio.run(scenario())
    assert order == [0, 1, 2, 3]
    assert admission.admitted == 0 and not admission.running and not admission.queue


def test_a_waiter_that_leaves_keeps_the_others_in_order_and_a_turn_handed_to_a_leaver_passes_on():
    async def scenario():
        admission = Admission(waiting=3)
        running = admission.admit()
        await running.__aenter__()
        a, b, c = (admission.admit() for _ in range(3))
        order: list[str] = []

        async def answer(name, slot):
            async with slot:
                order.append(name)

        ta, tb, tc = (asyncio.create_task(answer(n, s)) for n, s in zip("abc", (a, b, c), strict=True))
        await _until(lambda: len(admission.queue) == 3)
        tb.cancel()  # b's client went away while waiting
        await asyncio.gather(tb, return_exceptions=True)
        assert admission.admitted == 3 and len(admission.queue) == 2
        running.release()  # a is handed the turn ...
        ta.cancel()  # ... and leaves before it runs: c gets it
        await asyncio.gather(ta, tc, return_exceptions=True)
        return order, admission

    order, admission = asyncio.run(scenario())
    assert order == ["c"] and admission.admitted == 0 and not admission.running


def test_a_slot_released_while_it_waits_is_never_handed_the_turn():
    async def scenario():
        admission = Admission(waiting=2)
        running = admission.admit()
        await running.__aenter__()
        closed, nxt = admission.admit(), admission.admit()
        waiting = asyncio.create_task(closed.__aenter__())
        after = asyncio.create_task(nxt.__aenter__())
        await _until(lambda: len(admission.queue) == 2)
        closed.release()  # its stream was closed from outside while it waited
        assert len(admission.queue) == 1 and admission.admitted == 2
        running.release()
        await after
        assert admission.holder is nxt
        with pytest.raises(asyncio.CancelledError):
            await waiting
        nxt.release()
        return admission

    admission = asyncio.run(scenario())
    assert admission.admitted == 0 and not admission.running and not admission.queue


def test_requests_over_http_are_answered_in_arrival_order_whatever_the_route():
    """/ask and /ask/stream interleaved behind a slow answer: the pipeline starts them in the order they came."""
    pipeline = api_pipeline(delay=0.05)
    pipeline.gate.clear()
    app = create_app(Settings(queue_size=5), pipeline=pipeline)
    admission = app.state.service.admission
    routes = ["/ask", "/ask/stream", "/ask", "/ask/stream", "/ask/stream", "/ask"]

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30) as client:
            tasks = []
            for i, route in enumerate(routes):
                tasks.append(asyncio.create_task(client.post(route, json={"question": f"question {i}?"})))
                await _until(lambda n=i + 1: admission.admitted == n)
                if i == 0:
                    await _until(pipeline.running.is_set)
            pipeline.gate.set()
            return await asyncio.gather(*tasks)

    responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * len(routes)
    assert pipeline.questions == [f"question {i}?" for i in range(len(routes))]
    assert admission.admitted == 0 and not admission.running


# --- Retry-After from the queue and recent answers ---------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_is_requests_inside_times_the_median_answer_time():
    admission = Admission(waiting=2, clock=Clock())
    assert admission.retry_after() == 1 * DEFAULT_ANSWER_S  # nobody inside: one answer's time
    held = [admission.admit() for _ in range(3)]
    admission.holder = held[0]  # one running, two waiting
    assert admission.retry_after() == 3 * DEFAULT_ANSWER_S  # before any answer was timed
    for seconds in (1.0, 5.0, 3.0):
        admission.record(seconds)
    assert admission.answer_time() == 3.0 and admission.retry_after() == 9
    with pytest.raises(ServerBusy) as caught:
        admission.admit()
    assert caught.value.retry_after == 9 and caught.value.status == 503


def test_retry_after_is_bounded_and_the_median_forgets_old_answers():
    admission = Admission(waiting=1)
    admission.record(10_000.0)
    assert admission.retry_after() == MAX_RETRY_AFTER_S
    for _ in range(RECENT_ANSWERS):
        admission.record(0.01)
    assert len(admission.answer_s) == RECENT_ANSWERS and admission.answer_time() == 0.01
    assert admission.retry_after() == 1  # at least a second


def test_a_slot_records_the_time_it_held_the_model_once_and_only_for_an_answer():
    clock = Clock()

    async def scenario():
        admission = Admission(waiting=1, clock=clock)
        async with admission.admit() as slot:
            clock.now += 4.0
            slot.answered()
            clock.now += 1.0
            slot.answered()
        async with admission.admit():  # failed or left early: not recorded
            clock.now += 0.5
        return list(admission.answer_s)

    assert asyncio.run(scenario()) == [4.0]


def test_the_api_times_answers_and_its_503_says_how_long_from_them():
    pipeline = api_pipeline()
    app = create_app(Settings(queue_size=1), pipeline=pipeline)
    admission = app.state.service.admission

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30) as client:
            assert (await client.post("/ask", json={"question": "q?"})).status_code == 200
            assert (await client.post("/ask/stream", json={"question": "q?"})).status_code == 200
            assert len(admission.answer_s) == 2  # both routes time their answers
            admission.answer_s.clear()
            admission.record(7.0)
            pipeline.gate.clear()
            held = [asyncio.create_task(client.post("/ask", json={"question": "q?"})) for _ in range(2)]
            await _until(lambda: admission.admitted == 2 and pipeline.running.is_set())
            busy = await client.post("/ask", json={"question": "q?"})
            pipeline.gate.set()
            await asyncio.gather(*held)
            return busy

    busy = asyncio.run(scenario())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "14"  # (1 waiting + 1 running) x 7 s
