"""The FastAPI app factory: one service (one pipeline, one model) shared by every route.

Without a `pipeline`, the lifespan starts loading it in the background, so the server answers at once
(/health 503 "loading") and /ask works when the model is in. "/" stays free for the chat UI.
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import rag
from rag.api import documents, errors, openai_compat, routes
from rag.api.service import Loader, RagService, load_pipeline

MAX_BODY_BYTES = 64 * 1024  # a 2000-character question is ~8 KB of JSON even fully escaped


def create_app(settings, pipeline=None, loader: Loader | None = None) -> FastAPI:
    """`pipeline` given: ready at once (tests, embedding in another app). Otherwise `loader(settings)`
    (default: the real pipeline with its llama.cpp model) runs in a background thread at startup."""
    service = RagService(settings, pipeline)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if service.state.status == "loading":
            service.start_loading(loader or load_pipeline)
        yield

    app = FastAPI(
        title="rag-chat API",
        version=rag.__version__,
        description="Answers from your documents, with citations you can check (offsets into the original files).",
        lifespan=lifespan,
    )
    app.state.service = service
    errors.install_handlers(app)
    guarded = [Depends(bearer_auth(settings.api_token))] if settings.api_token else []
    app.include_router(routes.status)
    app.include_router(routes.answers, dependencies=guarded)
    app.include_router(openai_compat.router, dependencies=guarded)
    app.include_router(documents.router, dependencies=guarded)
    upload_limit = settings.max_upload_bytes + documents.UPLOAD_OVERHEAD_BYTES
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, routes={"/documents": upload_limit})
    if settings.cors_origins:  # added last = outermost, so a 413 or 401 still carries the CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def bearer_auth(token: str):
    """Dependency checking `Authorization: Bearer <token>` in constant time; also shows "Authorize" in /docs."""
    scheme = HTTPBearer(auto_error=False, description="The server's RAG_API_TOKEN.")
    expected = token.encode()

    async def check(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> None:
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise errors.unauthorized()

    return check


class BodyLimit:
    """413 for request bodies over `max_bytes` (or `routes[path]` for paths with their own limit, uploads):
    at once from Content-Length, or while reading a chunked body.

    Plain ASGI (not BaseHTTPMiddleware) so streamed responses pass through untouched.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, routes: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.routes = routes or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.routes.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(limit)(scope, receive, send)
            return
        await self.app(scope, self._counting(receive, limit), send)

    def _counting(self, receive: Receive, limit: int) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise HTTPException(413, self._message(limit))  # FastAPI's body parser re-raises HTTPException
            return message

        return counted

    @staticmethod
    def _message(limit: int) -> str:
        return f"request body larger than {limit} bytes"

    def _too_large(self, limit: int) -> JSONResponse:
        return JSONResponse({"detail": self._message(limit)}, status_code=413)
