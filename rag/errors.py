"""One error base for everything a user can cause or fix: a message, a hint, and an HTTP status.

The CLI prints `rag <command>: <message>` (and the hint), the API answers `{"detail", "hint"}` with
`status`, the chat shows the message: each entry point catches only `RagError`. Anything else is a
bug and is logged with its traceback, never shown raw to a user.
"""

from __future__ import annotations


class RagError(Exception):
    """Something the user can fix. `hint` says how; `status` is the HTTP status the API answers with."""

    status: int = 400
    hint: str | None = None

    def __init__(self, message: str, hint: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message

    def describe(self) -> str:
        """One line for a terminal: the message, then the hint if there is one."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class SettingsError(RagError):
    """A setting (environment variable or command-line flag) has a bad value."""


class ServeError(RagError):
    """`rag serve` cannot listen where it was told (port in use, not allowed, no such address)."""


class CorpusError(RagError):
    """The documents folder cannot be used (missing, empty, nothing readable)."""


class IndexError_(RagError):  # noqa: N801 - the builtin IndexError is something else
    """The index is missing, built differently, or damaged; messages say what to run."""

    status = 503


class IndexMissing(IndexError_):
    pass


class IndexMismatch(IndexError_):
    pass


class IndexCorrupt(IndexError_):
    pass


class IndexBusy(IndexError_):
    """Another process is writing the index (one writer at a time; see rag/index.py)."""

    status = 409


class Unavailable(RagError):
    """The server cannot answer now: busy, still loading, or its model failed to load. `retry_after`
    (seconds, when waiting helps) is the API's Retry-After."""

    status = 503
    retry_after: int | None = None

    def __init__(self, message: str, hint: str | None = None, retry_after: int | None = None):
        super().__init__(message, hint)
        if retry_after is not None:
            self.retry_after = retry_after


class ServerBusy(Unavailable):
    """Every admission slot is taken (one answer at the model, RAG_QUEUE_SIZE waiting): the API's 503 and
    the chat's "busy" are this one error, so neither needs to know the other's HTTP types."""


class StillLoading(Unavailable):
    """The model and index are still loading (`rag serve` answers meanwhile)."""


class QueryError(RagError):
    """The question or query cannot be searched or answered (empty, too long)."""

    status = 422


class ModelError(RagError):
    """The configured model cannot be found or loaded."""

    status = 503


class TemplateError(RagError):
    """A prompt, grammar or examples file is missing or invalid."""

    status = 500


class EvalSetError(RagError):
    """An evaluation question file cannot be read."""
