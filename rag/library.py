"""The documents a running server answers from, changed while it runs: upload, list, remove.

Why one object for the API and the chat: both must apply the same checks (size, type from content,
a safe file name), share the one writer of the index and show the same statuses. Nothing here
knows HTTP: errors are `RagError`s carrying their status (413, 415, 404, 409, 503).

An upload is checked, then written into the documents folder atomically (a hidden temporary file
hard-linked to its final name, so a half-written file is never seen and an existing file is never
overwritten), then indexed in the background by a single writer thread. Indexing is incremental:
the documents already in the index are passed to `rag.index.ingest` as they are recorded in it
(nothing re-read or re-embedded), only new files are parsed and embedded. The index files are
replaced atomically and last, so a failed upload (unreadable file, embedding error) leaves the
previous index on disk and served; the failed file is taken out of the folder and its problem stays
listed until it is removed. After each write, `on_indexed()` makes the server serve the new index.

Statuses: pending (saved, waiting for the writer), indexing, ready (in the served index), failed
(`problem` says why), deleting (file gone, chunks being removed).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rag.documents import Document, parse_document, sha256_bytes
from rag.errors import RagError
from rag.formats import UnreadableDocument, detect

if TYPE_CHECKING:  # the index and the embedder load numpy and faiss: only when a document is written
    from rag.embedding import Embedder
    from rag.index import VectorIndex
    from rag.settings import Settings

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 120  # file names stay readable in the chat and portable across file systems
MAX_WAITING = 32  # uploads and removals queued for the writer at once; more get 503
_UNSAFE = re.compile(r'[<>:"|?*]')  # reserved on Windows: a folder copied there must still work
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


@runtime_checkable
class PipelineLike(Protocol):
    """What the library needs of the served pipeline (`rag.pipeline.Pipeline` has it): the settings its index
    was built with, the embedder that adds to it, and the index it answers from.

    A served pipeline without them (a test fake, a pipeline built around another search) is still served,
    so `get_pipeline()` may return anything; `isinstance(pipeline, PipelineLike)` says whether it can list
    documents and take new ones (501 otherwise)."""

    settings: Settings
    embedder: Embedder
    index: VectorIndex


class DocumentTooLarge(RagError):
    status = 413


class UnknownDocument(RagError):
    status = 404


class DuplicateDocument(RagError):
    status = 409


class LibraryBusy(RagError):
    status = 503


def document_id(name: str) -> str:
    """A short, URL-safe id for a document name (its path in the documents folder); stable across re-indexing."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:12]


def sanitise_name(raw: str) -> str:
    """A safe file name from what a client sent: no folders, no hidden file, no control characters.

    Only the last path component is kept (either separator), control/format characters are dropped,
    characters Windows reserves become "_", leading dots and spaces go (no hidden or relative names),
    and the name is shortened keeping its suffix. Nothing usable left: "document".
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    name = _UNSAFE.sub("_", name)
    name = " ".join(name.split()).strip(". ")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > 16 or " " in suffix:
        stem, suffix = name, ""
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1].rstrip(". ") or "document"
    if stem.lower() in _WINDOWS_DEVICES:
        stem = f"_{stem}"
    return f"{stem}.{suffix}" if suffix else stem


def _candidates(name: str):
    """The name, then "name (2).ext", "name (3).ext", … for collisions."""
    yield name
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    for n in range(2, 10_000):
        yield f"{stem} ({n}).{suffix}" if suffix else f"{stem} ({n})"
    raise DuplicateDocument(f"too many documents named like {name!r}", hint="rename the file")


@dataclass
class Entry:
    """An upload or a removal the served index does not show yet (or a failure to keep listing)."""

    id: str
    name: str
    status: str  # pending | indexing | failed | deleting
    action: str  # add | delete
    type: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    pages: int | None = None
    chunks: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("action")
        return out


class Library:
    """Upload, list and remove documents of a running server; one writer thread indexes the changes.

    `get_pipeline()` is the served pipeline (None while loading; raises its load error), `on_indexed()`
    is called by the writer after each index write to serve the new index at once.
    """

    def __init__(
        self,
        settings: Settings,
        get_pipeline: Callable[[], object | None],
        on_indexed: Callable[[], object] = lambda: None,
    ):
        self.settings = settings
        self.get_pipeline = get_pipeline
        self.on_indexed = on_indexed
        self.entries: dict[str, Entry] = {}
        self.version = 0  # bumped on every change, so a page knows when to redraw its list
        self._cond = threading.Condition()
        self._writer: threading.Thread | None = None
        self._working = False

    @property
    def folder(self) -> Path:
        return Path(self.settings.seeds_dir)

    # --- reading ------------------------------------------------------------------------------
    def _pipeline(self) -> PipelineLike:
        pipeline = self.get_pipeline()
        if pipeline is None:
            raise LibraryBusy("the model and index are loading; try again in a moment")
        if not isinstance(pipeline, PipelineLike):
            raise LibraryBusy("this server's pipeline has no index that documents could be added to", status=501)
        return pipeline

    def _indexed(self) -> dict[str, dict]:
        """The documents of the served index (empty while loading, or for a pipeline without an index)."""
        try:
            pipeline = self.get_pipeline()
        except RagError:
            return {}
        return dict(pipeline.index.documents or {}) if isinstance(pipeline, PipelineLike) else {}

    def list(self) -> list[dict]:
        """Every document: the served index's (ready), then uploads and removals still in progress."""
        indexed = self._indexed()
        with self._cond:
            entries = {e.name: Entry(**asdict(e)) for e in self.entries.values()}
        out = []
        for name, meta in sorted(indexed.items()):
            entry = entries.pop(name, None)
            if entry is not None and entry.action == "delete":
                out.append({**_ready(name, meta), "status": entry.status, "problem": entry.problem})
            else:  # an add entry for an indexed name is one just finished: the index has the truth
                out.append(_ready(name, meta))
        out.extend(e.to_dict() for e in entries.values() if e.action == "add")
        return out

    def get(self, doc_id: str) -> dict:
        for doc in self.list():
            if doc["id"] == doc_id:
                return doc
        raise UnknownDocument(f"no document with id {doc_id!r}", hint="GET /documents lists the ids")

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._working or any(e.status in ("pending", "indexing", "deleting") for e in self.entries.values())

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until the writer has nothing left to do; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (
                    not self._working and not any(e.status in ("pending", "deleting") for e in self.entries.values())
                ),
                timeout,
            )

    # --- changing -----------------------------------------------------------------------------
    def add(self, filename: str, data: bytes) -> dict:
        """Check, save and queue one upload; returns its entry (status pending). Raises RagError."""
        self._pipeline()  # 503 before anything is written while the server cannot index
        limit = self.settings.max_upload_bytes
        if len(data) > limit:
            raise DocumentTooLarge(
                f"{filename or 'the file'} is {_size(len(data))}; uploads are limited to {_size(limit)}",
                hint="RAG_MAX_UPLOAD_BYTES sets the limit",
            )
        if not data.strip():
            raise UnreadableDocument(f"{filename or 'the file'} is empty")
        wanted = sanitise_name(filename)
        kind = detect(data, wanted)  # UnreadableDocument (415) for types that cannot be read
        digest = sha256_bytes(data)
        tmp = self._write_temporary(data)  # outside the lock: listing stays quick while a big file is written
        try:
            indexed = self._indexed()
            with self._cond:
                same = [n for n, m in indexed.items() if m.get("sha256") == digest and not self._deleting(n)]
                same += [
                    e.name
                    for e in self.entries.values()
                    if e.action == "add" and e.sha256 == digest and e.status != "failed"
                ]
                if same:
                    raise DuplicateDocument(f"this file is already in the documents as {same[0]}")
                if sum(e.status in ("pending", "indexing", "deleting") for e in self.entries.values()) >= MAX_WAITING:
                    raise LibraryBusy(f"{MAX_WAITING} changes are already waiting to be indexed; try again shortly")
                name = self._publish(tmp, wanted, set(indexed) | {e.name for e in self.entries.values()})
                entry = Entry(document_id(name), name, "pending", "add", kind, digest, len(data))
                self.entries[entry.id] = entry
                self._changed()
        finally:
            tmp.unlink(missing_ok=True)
        log.info("upload %s saved (%s, %s); indexing", name, kind, _size(len(data)))
        return entry.to_dict()

    def remove(self, doc_id: str) -> dict:
        """Remove a document: its file at once, its chunks by the writer. Raises UnknownDocument (404)."""
        indexed = self._indexed()
        with self._cond:
            entry = self.entries.get(doc_id)
            if entry is not None and entry.action == "add":
                if entry.status == "indexing":
                    raise DuplicateDocument(f"{entry.name} is being indexed; remove it once it is ready", status=409)
                if entry.status == "pending":
                    self._unlink(entry.name)
                del self.entries[doc_id]  # pending or failed: never reached the index
                self._changed()
                return {**entry.to_dict(), "status": "deleted", "problem": None}
            name = entry.name if entry is not None else next((n for n in indexed if document_id(n) == doc_id), None)
            if name is None:
                raise UnknownDocument(f"no document with id {doc_id!r}", hint="GET /documents lists the ids")
            self._unlink(name)
            meta = indexed.get(name, {})
            removal = Entry(
                doc_id,
                name,
                "deleting",
                "delete",
                meta.get("type"),
                meta.get("sha256"),
                pages=meta.get("pages"),
                chunks=meta.get("chunks"),
            )
            self.entries[doc_id] = removal
            self._changed()
        return removal.to_dict()

    def _deleting(self, name: str) -> bool:
        return any(e.action == "delete" and e.name == name for e in self.entries.values())

    def _changed(self) -> None:
        """Under the lock: note the change, wake waiters and make sure the writer runs."""
        self.version += 1
        self._cond.notify_all()
        if self._writer is None and any(e.status in ("pending", "deleting") for e in self.entries.values()):
            self._writer = threading.Thread(target=self._write_loop, name="rag-library-writer", daemon=True)
            self._writer.start()

    def _write_temporary(self, data: bytes) -> Path:
        """The upload as a hidden file in the documents folder (never ingested: discovery skips dot files)."""
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Path(tmp)

    def _publish(self, tmp: Path, name: str, taken: set[str]) -> str:
        """Give the written file the first free name (never overwriting a file); returns the name used."""
        for candidate in _candidates(name):
            if candidate in taken:
                continue
            target = self.folder / candidate
            try:
                os.link(tmp, target)  # atomic, and fails if the name exists
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links
                if target.exists():
                    continue
                os.replace(tmp, target)
            return candidate
        raise AssertionError("unreachable: _candidates raises when it runs out")

    def _unlink(self, name: str) -> None:
        path = self.folder / name
        root = self.folder.resolve()
        if root not in path.resolve().parents and not path.is_symlink():
            raise UnknownDocument(f"{name} is not inside the documents folder")
        path.unlink(missing_ok=True)

    # --- the writer ------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            with self._cond:
                adds = [e for e in self.entries.values() if e.status == "pending"]
                removals = [e for e in self.entries.values() if e.status == "deleting"]
                if not adds and not removals:
                    self._writer = None
                    self._working = False
                    self._cond.notify_all()
                    return
                self._working = True
                for e in adds:
                    e.status = "indexing"
                self.version += 1
            try:
                self._write(adds, removals)
            except Exception as exc:  # reported on the entries; the old index stays
                reason = (
                    exc.describe() if isinstance(exc, RagError) else f"indexing failed ({type(exc).__name__}: {exc})"
                )
                if not isinstance(exc, RagError):
                    log.error("indexing uploads failed", exc_info=exc)
                with self._cond:
                    for e in adds:
                        if e.status == "indexing":
                            self._fail(e, reason)
                    for e in removals:
                        e.status, e.problem = "failed", reason
                    self.version += 1

    def _fail(self, entry: Entry, reason: str) -> None:
        """Under the lock: mark an upload failed and take its file out of the folder."""
        entry.status, entry.problem = "failed", reason
        self.version += 1
        try:
            self._unlink(entry.name)  # a file the index cannot hold does not stay in the folder
        except (OSError, RagError):
            log.warning("could not remove the failed upload %s", entry.name, exc_info=True)

    def _write(self, adds: list[Entry], removals: list[Entry]) -> None:
        from rag.ann import Layout
        from rag.index import VectorIndex, ingest
        from rag.pipeline import index_expectations

        pipeline = self._pipeline()
        settings = pipeline.settings
        embedder = pipeline.embedder
        # the index on disk, checked like the server loads it: a mismatch must fail here, not rebuild from nothing
        current = VectorIndex.load(Path(settings.index_dir), index_expectations(settings, embedder))
        gone = {e.name for e in removals}
        docs: list[Document] = [
            Document(
                name, self.folder / name, "", meta["sha256"], kind=meta.get("type", "text"), pages=meta.get("pages")
            )
            for name, meta in current.documents.items()
            if name not in gone
        ]  # recorded as they are: ingest keeps their chunks and vectors (same sha256), reads nothing
        for e in adds:
            try:
                data = (self.folder / e.name).read_bytes()
                doc = parse_document(data, e.name, self.folder / e.name)
            except UnreadableDocument as exc:
                with self._cond:
                    self._fail(e, exc.describe())
                continue
            except Exception as exc:  # a parser bug on one file must not stop the others
                log.warning("reading %s failed", e.name, exc_info=exc)
                with self._cond:
                    self._fail(e, f"could not be parsed ({type(exc).__name__}: {exc})")
                continue
            e.pages = doc.pages
            docs = [d for d in docs if d.doc_id != e.name] + [doc]
        indexing = [e for e in adds if e.status == "indexing"]
        if not indexing and not removals:
            return
        _, report = ingest(
            docs,
            Path(settings.index_dir),
            embedder,
            settings.chunk_size,
            settings.chunk_overlap,
            layout=Layout.of(settings.index),
        )
        log.info("documents indexed: %s", report.summary().replace("\n", "; "))
        self.on_indexed()
        with self._cond:
            for e in indexing + removals:
                self.entries.pop(e.id, None)
            self.version += 1


def _ready(name: str, meta: dict) -> dict:
    return {
        "id": document_id(name),
        "name": name,
        "status": "ready",
        "type": meta.get("type"),
        "sha256": meta.get("sha256"),
        "bytes": None,
        "pages": meta.get("pages"),
        "chunks": meta.get("chunks"),
        "median_chars": meta.get("median_chars"),
        "split_badly": meta.get("split_badly"),
        "problem": None,
    }


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"
