"""The chat page under load and abuse: shared admission with the API, a bounded Gradio queue, bounded uploads."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fastapi.testclient import TestClient

from rag.api import create_app
from rag.api.service import RagService
from rag.settings import Settings
from ui.app import BUSY_MESSAGE, build_ui, mount_ui

from .test_api import BASE, api_pipeline


def respond_of(blocks):
    return next(f.fn for f in blocks.fns.values() if getattr(f.fn, "__name__", "") == "respond")


def run_respond(respond, question="When did Brad Smith meet Wang Wentao?"):
    async def go():
        return [step async for step in respond(question, [], [], "c1", None)]

    return asyncio.run(go())


def test_a_chat_answer_takes_an_api_slot():
    seen = []  # the admission slots taken while the pipeline answers
    pipeline = api_pipeline(on_ask=lambda question: seen.append(service.admission.admitted))
    service = RagService(Settings(queue_size=1), pipeline)
    steps = run_respond(respond_of(build_ui(service)))
    assert seen == [1] and service.admission.admitted == 0
    assert "Wednesday" in steps[-1][1][-1]["content"]


def test_the_chat_is_told_busy_when_the_api_holds_every_slot():
    pipeline = api_pipeline()
    service = RagService(Settings(queue_size=1), pipeline)
    admission = service.admission
    held = [admission.admit() for _ in range(admission.capacity)]  # API requests: one answered, one waiting
    steps = run_respond(respond_of(build_ui(service)))
    assert "busy" in steps[-1][1][-1]["content"] and BUSY_MESSAGE.split()[0] in steps[-1][1][-1]["content"]
    assert pipeline.calls == [] and admission.admitted == admission.capacity
    for slot in held:
        slot.release()


def _gradio(app):
    return app.routes[-1].app  # the mount at "/"


def test_gradio_queue_is_bounded():
    pipeline = api_pipeline()
    pipeline.gate.clear()  # the first answer holds the model; the rest would pile up
    app = create_app(Settings(queue_size=2), pipeline=pipeline)
    service = app.state.service
    mount_ui(app, service)  # Gradio's queue holds Settings.queue_size
    blocks = _gradio(app).get_blocks()
    fn_index = next(i for i, f in blocks.fns.items() if getattr(f.fn, "__name__", "") == "respond")
    try:
        with TestClient(app, base_url=BASE) as c:
            codes = []
            for n in range(40):
                body = {
                    "data": [f"question {n}", [], [], f"c{n}", None],
                    "fn_index": fn_index,
                    "session_hash": f"s{n}",
                    "event_data": None,
                    "trigger_id": None,
                }
                codes.append(c.post("/gradio_api/queue/join", json=body).status_code)
            assert codes.count(200) <= 2 + 1, codes  # queue_size waiting + the one being processed
            assert codes.count(503) >= 37
            pipeline.gate.set()
    finally:
        pipeline.gate.set()


def _upload(client, name: str, size: int):
    return client.post("/gradio_api/upload", files={"files": (name, b"x" * size, "text/plain")})


def test_uploads_are_capped_at_max_upload_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    app = create_app(Settings(max_upload_bytes=1024 * 1024), pipeline=api_pipeline())
    mount_ui(app, app.state.service)  # capped at Settings.max_upload_bytes
    with TestClient(app, base_url=BASE) as c:
        assert _upload(c, "doc.txt", 200_000).status_code == 200  # over the 64 KB question limit
        big = _upload(c, "big.txt", 1024 * 1024 + 1)
        assert big.status_code in (400, 413), big.text
        assert not [p for p in tmp_path.rglob("big.txt")]


def test_uploads_are_deleted_after_their_time(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    app = create_app(Settings(), pipeline=api_pipeline())
    mount_ui(app, app.state.service, upload_ttl_s=1)
    with TestClient(app, base_url=BASE) as c:
        r = _upload(c, "note.txt", 100)
        assert r.status_code == 200
        stored = Path(r.json()[0])
        assert stored.exists()
        deadline = time.monotonic() + 10
        while stored.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not stored.exists(), "the upload was not swept"
