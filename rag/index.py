"""The on-disk index: FAISS vectors + chunk records + a manifest that says what built them.

Writes are atomic: data files carry a content hash in their name and are written first; the
manifest that points at them is replaced last with os.replace. A crash at any point leaves the
previous manifest pointing at previous files, which are deleted only after the swap.

Texts extracted from PDF, HTML, DOCX (and Markdown with tables) are what their citations' offsets
index, so they are stored here too, content-addressed (`texts/<sha256>.txt`, UTF-8, no newline
translation) and listed per document in the manifest (`"text"`); `rag.sources` reads them back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from rag.chunking import SPLITTER_VERSION, Chunk, chunk_document
from rag.documents import Document, Problem
from rag.embedding import Embedder
from rag.errors import IndexCorrupt, IndexError_, IndexMismatch, IndexMissing  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: chunks carry heading and page; extracted texts stored in texts/
TEXTS = "texts"
MANIFEST = "manifest.json"



@dataclass(frozen=True)
class SearchHit:
    row: int
    score: float


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_total: int = 0
    rebuilt_because: str | None = None
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)  # files not indexed, with the reason

    def to_dict(self) -> dict:
        """The report as the API and the chat show it."""
        out = {k: v for k, v in self.__dict__.items() if k != "problems"}
        out["problems"] = [p.to_dict() for p in self.problems]
        out["seconds"] = round(self.seconds, 3)
        return out

    def summary(self) -> str:
        lines = []
        if self.rebuilt_because:
            lines.append(f"rebuilt from scratch: {self.rebuilt_because}")
        lines.append(
            f"documents: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {len(self.unchanged)} unchanged"
        )
        lines.append(
            f"chunks: {self.chunks_added} added, {self.chunks_removed} removed, {self.chunks_total} in index"
        )
        if self.problems:
            lines.append(f"not indexed ({len(self.problems)}):")
            lines.extend(f"  {p.name}: {p.reason}" for p in self.problems)
        lines.append(f"took {self.seconds:.2f} s")
        return "\n".join(lines)


def chunk_settings(chunk_size: int, chunk_overlap: int) -> dict:
    return {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap, "splitter": SPLITTER_VERSION}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class VectorIndex:
    """Chunks and their vectors, searchable by inner product (cosine on normalised vectors)."""

    def __init__(self, manifest: dict, chunks: list[Chunk], vectors: np.ndarray):
        import faiss

        self.manifest = manifest
        self.chunks = chunks
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.faiss = faiss.IndexFlatIP(int(manifest["dim"]))
        if len(chunks):
            self.faiss.add(self.vectors)

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def documents(self) -> dict[str, dict]:
        return self.manifest["documents"]

    def search(self, vector: np.ndarray, k: int) -> list[SearchHit]:
        if not len(self.chunks):
            return []
        k = min(k, len(self.chunks))
        scores, rows = self.faiss.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        return [SearchHit(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]

    # --- persistence ---------------------------------------------------------
    @classmethod
    def load(cls, index_dir: Path, expect: dict | None = None) -> "VectorIndex":
        """Load and validate; `expect` holds embedder/dim/chunking that must match."""
        import faiss

        manifest_path = index_dir / MANIFEST
        if not manifest_path.exists():
            raise IndexMissing(f"no index in {index_dir}; run `rag ingest` to build it")
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
            files = manifest["files"]
            version = manifest["format_version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupt(f"{manifest_path} is unreadable ({exc}); run `rag ingest` to rebuild the index") from exc
        if version != FORMAT_VERSION:
            raise IndexMismatch(
                f"index in {index_dir} has format version {version}, this program reads {FORMAT_VERSION}; "
                "run `rag ingest` to rebuild it"
            )
        for problem in mismatches(manifest, expect or {}):
            raise IndexMismatch(f"index in {index_dir} was built with {problem}; run `rag ingest` to rebuild it")
        try:
            chunk_lines = (index_dir / files["chunks"]).read_text("utf-8").splitlines()
            chunks = [Chunk(**json.loads(line)) for line in chunk_lines if line.strip()]
            fidx = faiss.read_index(str(index_dir / files["vectors"]))
            vectors = fidx.reconstruct_n(0, fidx.ntotal) if fidx.ntotal else np.zeros((0, manifest["dim"]), "float32")
        except Exception as exc:  # noqa: BLE001 - any failure here means the files are damaged
            raise IndexCorrupt(f"index files in {index_dir} are damaged ({exc}); run `rag ingest` to rebuild") from exc
        if len(chunks) != len(vectors) or len(chunks) != manifest.get("chunk_count"):
            raise IndexCorrupt(
                f"index in {index_dir} is inconsistent ({len(chunks)} chunks, {len(vectors)} vectors); "
                "run `rag ingest` to rebuild it"
            )
        return cls(manifest, chunks, vectors)

    def save(self, index_dir: Path) -> None:
        import faiss

        index_dir.mkdir(parents=True, exist_ok=True)
        chunk_bytes = "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in self.chunks).encode()
        vec_bytes = faiss.serialize_index(self.faiss).tobytes()
        digest = hashlib.sha256(chunk_bytes + vec_bytes).hexdigest()[:16]
        files = {"chunks": f"chunks-{digest}.jsonl", "vectors": f"vectors-{digest}.faiss"}
        _atomic_write_bytes(index_dir / files["chunks"], chunk_bytes)
        _atomic_write_bytes(index_dir / files["vectors"], vec_bytes)
        self.manifest = {**self.manifest, "files": files, "chunk_count": len(self.chunks), "updated_at": time.time()}
        _atomic_write_bytes(index_dir / MANIFEST, json.dumps(self.manifest, indent=2).encode())
        keep = set(files.values()) | {MANIFEST, "README.md"}
        for old in index_dir.iterdir():
            if old.is_file() and old.name not in keep and (old.suffix in {".jsonl", ".faiss", ".tmp"}):
                old.unlink(missing_ok=True)
        texts = {d.get("text") for d in self.manifest.get("documents", {}).values()}
        if (index_dir / TEXTS).is_dir():
            for old in (index_dir / TEXTS).iterdir():
                if f"{TEXTS}/{old.name}" not in texts:
                    old.unlink(missing_ok=True)


def mismatches(manifest: dict, expect: dict) -> Iterable[str]:
    for key, want in expect.items():
        have = manifest.get(key)
        if have != want:
            yield f"{key}={have!r}, but {want!r} is configured"


def ingest(
    docs: list[Document],
    index_dir: Path,
    embedder: Embedder,
    chunk_size: int,
    chunk_overlap: int,
    progress: Callable[[int], object] | None = None,
    problems: list[Problem] | None = None,
    on_chunked: Callable[[int], object] | None = None,
) -> tuple[VectorIndex, IngestReport]:
    """Bring the index in line with `docs`, embedding only new or changed documents.

    `progress(n)` after each embedded batch; `on_chunked(total)` once chunking is done, with the number
    of chunks to embed; `problems` (files that could not be read) are carried into the report.
    """
    t0 = time.perf_counter()
    report = IngestReport(problems=list(problems or []))
    expect = {"embedder": embedder.id, "dim": embedder.dim, "chunking": chunk_settings(chunk_size, chunk_overlap)}
    try:
        old = VectorIndex.load(index_dir, expect)
    except IndexMissing:
        old = None
    except (IndexMismatch, IndexCorrupt) as exc:
        report.rebuilt_because = str(exc).split("; run")[0]
        old = None

    old_docs = old.documents if old else {}
    new_ids = {d.doc_id for d in docs}
    keep_rows: list[int] = []
    current = {d.doc_id: d.sha256 for d in docs}
    if old:
        for row, chunk in enumerate(old.chunks):
            doc = old_docs.get(chunk.doc_id)
            if doc and current.get(chunk.doc_id) == doc["sha256"]:
                keep_rows.append(row)
    report.removed = sorted(set(old_docs) - new_ids)
    to_embed: list[Chunk] = []
    documents: dict[str, dict] = {}
    for doc in docs:
        prev = old_docs.get(doc.doc_id)
        if prev and prev["sha256"] == doc.sha256:
            report.unchanged.append(doc.doc_id)
            documents[doc.doc_id] = prev
            continue
        (report.changed if prev else report.added).append(doc.doc_id)
        chunks = chunk_document(doc, chunk_size, chunk_overlap)
        to_embed.extend(chunks)
        documents[doc.doc_id] = {
            "sha256": doc.sha256,
            "chunks": len(chunks),
            "chars": len(doc.text),
            "type": doc.kind,
            "pages": doc.pages,
            "text": store_text(index_dir, doc.text) if doc.derived else None,
        }
    if on_chunked:
        on_chunked(len(to_embed))

    vectors = []
    batch = 64
    for i in range(0, len(to_embed), batch):
        part = to_embed[i : i + batch]
        vectors.append(embedder.embed([c.search_text for c in part]))
        if progress:
            progress(len(part))
    new_vectors = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), dtype=np.float32)

    kept_chunks = [old.chunks[r] for r in keep_rows] if old else []
    kept_vectors = old.vectors[keep_rows] if old else np.zeros((0, embedder.dim), dtype=np.float32)
    report.chunks_added = len(to_embed)
    report.chunks_removed = (len(old.chunks) - len(keep_rows)) if old else 0
    manifest = {
        "format_version": FORMAT_VERSION,
        **expect,
        "documents": dict(sorted(documents.items())),
    }
    index = VectorIndex(manifest, kept_chunks + to_embed, np.concatenate([kept_vectors, new_vectors]))
    changed = report.added or report.changed or report.removed or old is None
    if changed or not (index_dir / MANIFEST).exists():
        index.save(index_dir)
    else:
        index.manifest = old.manifest
    report.chunks_total = len(index)
    report.seconds = time.perf_counter() - t0
    return index, report


def store_text(index_dir: Path, text: str) -> str:
    """Write an extracted text once, named by its content; returns its path relative to the index folder."""
    data = text.encode("utf-8")
    name = f"{TEXTS}/{hashlib.sha256(data).hexdigest()}.txt"
    path = index_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(path, data)
    return name


def changed_documents(index: VectorIndex, seeds_dir: Path) -> list[str]:
    """Indexed documents whose file changed or is gone (by sha256 of the bytes, without parsing)."""
    from rag.documents import sha256_bytes

    out = []
    for doc_id, meta in index.documents.items():
        path = seeds_dir / doc_id
        try:
            if sha256_bytes(path.read_bytes()) != meta["sha256"]:
                out.append(doc_id)
        except OSError:
            out.append(doc_id)
    return sorted(out)


def stale_documents(index: VectorIndex, docs: list[Document]) -> list[str]:
    """Documents whose content differs from what the index was built from (added, changed or removed)."""
    indexed = {k: v["sha256"] for k, v in index.documents.items()}
    current = {d.doc_id: d.sha256 for d in docs}
    return sorted(k for k in indexed.keys() | current.keys() if indexed.get(k) != current.get(k))
