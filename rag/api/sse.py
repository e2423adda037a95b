"""Server-Sent Events: the wire format, and a response that always frees its model slot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


def sse(data: Any, event: str | None = None) -> str:
    """One event; `data` is JSON-encoded unless it is already a string (as OpenAI's `[DONE]`)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n"


class EventStream(StreamingResponse):
    """text/event-stream whose `on_close` runs however the response ends: finished, failed, or the client
    disconnected (Starlette cancels the body then), or even before the body was first iterated."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None]):
        # no-cache/no-buffering so proxies pass each event on as it is produced
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()
