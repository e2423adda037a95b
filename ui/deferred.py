"""The chat page mounted once the model is in, so `rag serve` listens and loads without waiting for Gradio.

    from ui.deferred import mount_ui_later
    mount_ui_later(app, app.state.service)   # where `mount_ui` would go; the page comes a few seconds later

Why: `import gradio` and building the page took ~3 s of the 5.1 s from `rag serve` to /health "ready" (median
of 3 runs, 2 cores shared with an evaluation; `python -X importtime`: gradio 4.8 s of the imports), all of it
before uvicorn listened, while the model itself loads in ~1 s. Now the API listens at once, the model loads,
and only then (so the two do not compete for the interpreter) is Gradio imported and the page built, in a
thread; it is mounted exactly as `mount_ui` mounts it (ui/app.py: the same queue, limits and CORS policy),
and Gradio's start-up (its queue) is run as its own lifespan would, then closed with the server's.

Until then "/" answers 503 with a small page that reloads itself every second (and `Retry-After: 1`); a chat
that could not be built says so there and in the log, and the API keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from starlette.routing import Mount

log = logging.getLogger("rag.ui")

POLL_S = 0.1  # how often the builder looks whether the model is in
STARTING = """<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="1"><title>rag-chat</title></head>
<body style="font-family: sans-serif; margin: 3em"><p>{message}</p></body></html>
"""


class DeferredChat:
    """An ASGI app at "/": a "starting" page until `chat` (Gradio's app) is set, then that app."""

    def __init__(self, app, service, mount_kwargs: dict):
        self.app = app
        self.service = service
        self.mount_kwargs = mount_kwargs
        self.chat = None
        self.failed: str | None = None
        self.ready = threading.Event()  # set once the chat is mounted (or could not be): tests wait on it

    async def __call__(self, scope, receive, send) -> None:
        if self.chat is not None:
            await self.chat(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        message = self.failed or "The chat is starting; this page reloads itself."
        body = STARTING.format(message=message).encode()
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        if self.failed is None:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def build(self, stack: contextlib.AsyncExitStack) -> None:
        """After the model loaded (or failed to): Gradio imported and the page built in a thread, then its
        start-up run here, its shutdown entered into `stack` (the server's lifespan)."""
        try:
            while self.service.state.status == "loading":
                await asyncio.sleep(POLL_S)
            gradio_app = await asyncio.to_thread(self._mount)
            await stack.enter_async_context(gradio_app.router.lifespan_context(gradio_app))
            blocks = gradio_app.get_blocks()
            blocks.run_startup_events()  # what gr.mount_gradio_app's lifespan runs: the queue
            await blocks.run_extra_startup_events()
            self.chat = gradio_app
        except Exception as exc:  # the API keeps serving without its chat page
            log.error("could not build the chat page", exc_info=exc)
            self.failed = f"The chat page could not be started ({type(exc).__name__}); the API still answers."
        finally:
            self.ready.set()

    def _mount(self):
        """`mount_ui` on the real app (Gradio checks its CORS middleware), then its new "/" mount taken out of
        the route list again: this object stays the route and hands requests to Gradio's app."""
        from ui.app import mount_ui

        before = list(self.app.router.routes)
        mount_ui(self.app, self.service, **self.mount_kwargs)
        added = [r for r in self.app.router.routes if r not in before and isinstance(r, Mount)]
        for route in added:
            self.app.router.routes.remove(route)
        return added[-1].app


def mount_ui_later(app, service, **mount_kwargs) -> DeferredChat:
    """Mount the chat page at "/" once `service` has loaded its pipeline (see the module's docstring).

    Call it where `mount_ui` would be called: after the API routes, before the server starts."""
    deferred = DeferredChat(app, service, mount_kwargs)
    app.mount("/", deferred)
    outer = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a) -> AsyncIterator:
        async with outer(a) as state, contextlib.AsyncExitStack() as stack:
            task = asyncio.create_task(deferred.build(stack))
            try:
                yield state
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
    return deferred
