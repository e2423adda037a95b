"""`rag serve` mounts the chat once the model is in (ui/deferred.py): until then "/" is a 503 page that reloads
itself and the API answers; after, "/" is the same Gradio page `mount_ui` gives, with its queue started and the
API's CORS policy (no Gradio CORS of its own)."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.settings import Settings
from ui.deferred import mount_ui_later

from .test_api import api_pipeline

BASE = "http://localhost"


def test_the_chat_comes_after_the_model_and_the_api_never_waits_for_it():
    pytest.importorskip("gradio")
    release = threading.Event()

    def loader(settings):
        assert release.wait(10)
        return api_pipeline()

    app = create_app(Settings(), loader=loader)
    deferred = mount_ui_later(app, app.state.service)
    with TestClient(app, base_url=BASE) as c:
        assert c.get("/health").json()["status"] == "loading"
        page = c.get("/")
        assert page.status_code == 503 and page.headers["retry-after"] == "1" and "starting" in page.text
        time.sleep(0.3)
        assert not deferred.ready.is_set()  # the page is not built while the model loads
        release.set()
        assert deferred.ready.wait(60) and deferred.failed is None
        assert c.get("/health").json()["status"] == "ready"
        page = c.get("/")
        assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
        assert c.get("/config").status_code == 200  # Gradio's own routes, under the same mount
        assert deferred.chat.get_blocks().is_running  # its queue was started, as its lifespan would
        assert c.post("/ask", json={"question": "When did Brad Smith meet Wang Wentao?"}).status_code == 200
        other = c.get("/config", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers  # the API's CORS policy, not Gradio's
        assert sum(getattr(r, "path", None) == "" for r in app.router.routes) == 1  # one "/" mount
