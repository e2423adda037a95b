"""The FastAPI app factory: one service (one pipeline, one model) shared by every route.

Without a `pipeline`, the lifespan starts loading it in the background, so the server answers at once
(/health 503 "loading") and /ask works when the model is in. "/" stays free for the chat UI.

The middleware here wraps the whole app, so it covers the chat mounted at "/" as well as the API:
- `HostGuard`: DNS rebinding. A page on rebind.attacker.example can re-point its name at 127.0.0.1
  and then call this server from the victim's browser as same-origin; `POST /ask` with
  `Host: rebind.attacker.example` was answered. Only `allowed_hosts` names and IP literals pass.
- One CORS policy (`cors_origins`) for API and chat: with a CORSMiddleware on the parent app, Gradio
  leaves out its own, which allowed any localhost origin with credentials (and any origin when the
  Host was a LAN name) even though the README says an empty RAG_CORS_ORIGINS disables CORS.
- `MethodGuard`: a wrong method on an API path is 405; with the chat mounted at "/" it fell through
  to Gradio and came back 404.
"""

from __future__ import annotations

import hmac
import ipaddress
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import rag
from rag.api import docs, documents, errors, openai_compat, routes
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
        docs_url=None,  # rag/api/docs.py: the same pages from local files, not a CDN
        redoc_url=None,
    )
    docs.install(app)
    app.state.service = service
    errors.install_handlers(app)
    guarded = [Depends(bearer_auth(settings.api_token))] if settings.api_token else []
    app.include_router(routes.status)
    app.include_router(routes.answers, dependencies=guarded)
    app.include_router(openai_compat.router, dependencies=guarded)
    app.include_router(documents.router, dependencies=guarded)
    upload_limit = settings.max_upload_bytes + documents.UPLOAD_OVERHEAD_BYTES
    # documents, not questions: the API's upload and the chat's (Gradio's route under the "/" mount)
    uploads = {"/documents": upload_limit, "/gradio_api/upload": upload_limit}
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, routes=uploads)
    app.add_middleware(MethodGuard, openapi=app.openapi)
    # Always present (an empty list allows no origin): its presence also tells a mounted Gradio app to
    # leave out its own CORS headers. Added late = outer, so a 413 or 401 still carries the CORS headers.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(HostGuard, allowed=settings.allowed_hosts)  # outermost: a foreign Host gets nothing else
    return app


def bearer_auth(token: str):
    """Dependency checking `Authorization: Bearer <token>` in constant time; also shows "Authorize" in /docs."""
    scheme = HTTPBearer(auto_error=False, description="The server's RAG_API_TOKEN.")
    expected = token.encode()

    async def check(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> None:
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise errors.unauthorized()

    return check


class HostGuard:
    """400 for a `Host` header that is neither an IP address nor an allowed name.

    IP literals always pass: DNS rebinding needs a name the attacker controls, and a server bound to a
    LAN address must stay reachable by that address. A request without a Host header (HTTP/1.0, not a
    browser) passes too. `allowed` entries: exact names, `.example.org` for it and its subdomains, `*`.
    """

    def __init__(self, app: ASGIApp, allowed: list[str]):
        self.app = app
        self.any = "*" in allowed
        self.names = {h.lower().strip("[]") for h in allowed if not h.startswith(".")}
        self.suffixes = tuple(h.lower() for h in allowed if h.startswith("."))

    def allows(self, host_header: str) -> bool:
        host = host_header.strip().lower()
        if host.startswith("["):  # [::1]:8000
            host = host[1 : host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.rsplit(":", 1)[0]
        host = host.rstrip(".")
        if self.any or host in self.names:
            return True
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            pass
        return bool(self.suffixes) and (host.endswith(self.suffixes) or "." + host in self.suffixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = dict(scope["headers"]).get(b"host")
            if host is not None and not self.allows(host.decode("latin-1")):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                response = JSONResponse(
                    {"detail": "unknown Host header; add the name to RAG_ALLOWED_HOSTS to serve it"}, status_code=400
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class MethodGuard:
    """405 (with `Allow`) for a known API path asked with a method it does not serve.

    Needed because a mount at "/" (the chat) takes every request no route fully matched, including
    `GET /ask`. The API's paths and methods come from its OpenAPI schema (read once, at the first
    request, when every route is in), which is public anyway and stable across FastAPI's internals."""

    def __init__(self, app: ASGIApp, openapi):
        self.app = app
        self.openapi = openapi
        self.paths: list[tuple] | None = None

    def _paths(self) -> list[tuple]:
        if self.paths is None:
            paths = []
            for template, operations in self.openapi().get("paths", {}).items():
                methods = {m.upper() for m in operations if m.isalpha()}
                if "GET" in methods:
                    methods.add("HEAD")
                paths.append((compile_path(template)[0], methods))
            self.paths = paths
        return self.paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            allowed = next((methods for regex, methods in self._paths() if regex.match(path)), None)
            if allowed and scope["method"] not in allowed:
                allow = ", ".join(sorted(allowed))
                response = JSONResponse(
                    {"detail": f"method {scope['method']} not allowed; use {allow}"},
                    status_code=405,
                    headers={"Allow": allow},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """413 for request bodies over `max_bytes` (or `routes[path]` for paths with their own limit, uploads):
    at once from Content-Length, or while reading a chunked body.

    The chat's upload route (Gradio's, under the "/" mount) gets the document limit too: with the 64 KB
    limit for questions it refused any real document.
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
