"""Every error leaves the API as JSON `{"detail": "..."}` with a fitting status, never a stack trace.

Pipeline exceptions are translated here, in one place, for /ask, the stream and the OpenAI routes alike.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("rag.api")

BUSY_RETRY_AFTER_S = 2  # about one answer's time with the default model
LOADING_RETRY_AFTER_S = 5


def busy(capacity: int) -> HTTPException:
    return HTTPException(
        503,
        f"server busy: {capacity} requests already admitted; retry later",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
    )


def not_ready(status: str, detail: str | None) -> HTTPException:
    if status == "loading":
        retry = {"Retry-After": str(LOADING_RETRY_AFTER_S)}
        return HTTPException(503, "the model is loading; retry shortly", headers=retry)
    return HTTPException(503, f"the server could not load its model or index: {detail}")


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
    from rag.errors import QueryError, RagError

    if isinstance(exc, HTTPException):
        return exc
    if isinstance(exc, QueryError):
        return bad_question(exc.describe())
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


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error; the server log has the details"}, status_code=500)


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
