"""Every error leaves the API as JSON `{"detail": "..."}` with a fitting status, never a stack trace.

Pipeline exceptions are translated here, in one place, for /ask, the stream and the OpenAI routes alike.
The service (rag/api/service.py) raises only `RagError`s (busy, loading, a rejected question), because the
chat calls it too and must not know HTTP types; `install_handlers` turns those into the same JSON here.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rag.errors import QueryError, RagError, Unavailable

log = logging.getLogger("rag.api")


def bad_question(message: str) -> HTTPException:
    return HTTPException(422, f"question: {message}")


def client_gone() -> HTTPException:
    """The client disconnected before its answer was ready; nobody reads this (499 as nginx logs it)."""
    return HTTPException(499, "client closed the request")


def unauthorized() -> HTTPException:
    return HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def translate(exc: Exception) -> HTTPException:
    """Map an exception raised while answering to the HTTP error the client gets (logging the unexpected).

    Every error a user can cause or fix is a `RagError` carrying its own status; anything else is a bug.
    """
    if isinstance(exc, HTTPException):
        return exc
    if isinstance(exc, QueryError):
        return bad_question(exc.describe())
    if isinstance(exc, Unavailable):  # busy, loading, failed to load: said at load, not per request
        retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return HTTPException(exc.status, exc.describe(), headers=retry)
    if isinstance(exc, RagError):
        if exc.status >= 500:
            log.error("answering failed: %s", exc)
        return HTTPException(exc.status, exc.describe())
    log.error("unexpected error while answering", exc_info=exc)
    return HTTPException(500, "internal server error; the server log has the details")


def _location(loc) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """One readable message plus the itemised problems (without echoing the input back)."""
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
    detail = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


async def _rag_error(request: Request, exc: Exception) -> JSONResponse:
    """A `RagError` a route let through (the service's busy, loading or rejected question): as `translate` says."""
    error = translate(exc)
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error; the server log has the details"}, status_code=500)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(Exception, _unexpected_error)
