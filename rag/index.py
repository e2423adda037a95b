"""The on-disk index: FAISS vectors + chunk records + a manifest that says what built them.

Writes are atomic: data files carry a content hash in their name and are written first; the
manifest that points at them is replaced last with os.replace. A crash at any point leaves the
previous manifest pointing at previous files, which are deleted only after the swap.

Texts extracted from PDF, HTML, DOCX (and Markdown with tables) are what their citations' offsets
index, so they are stored here too, content-addressed (`texts/<sha256>.txt`, UTF-8, no newline
translation) and listed per document in the manifest (`"text"`); `rag.sources` reads them back.

One writer at a time: `ingest` holds an exclusive flock on `index/.lock` from load to save. Without
it two `rag ingest` runs each deleted the other's data files and both exited 0, leaving a manifest
that pointed at deleted files. A writer deletes only what it replaced (the previous manifest's
files) and, under the lock, leftovers with this module's own names (temp files and data files no
manifest points at, from a crashed writer); any other file in the folder is left alone.

Loading verifies what it reads, cheaply: the manifest's shape, each data file's sha256, that vectors
are finite and unit length and of the manifest's dimension, that chunks agree with the documents they
claim to come from, and that stored texts still hash to their names. Measured on the seed index (16
chunks): the checks take ~0.01 ms of a 0.14 ms load; sha256 runs at roughly 1 GB/s, so 10,000 MiniLM
vectors (15 MB) would add about 15 ms. A
damaged index is `IndexCorrupt`, which `ingest` answers by rebuilding.

The FAISS structure (exact, or HNSW above a size) is rag/ann.py's, recorded in the manifest and checked against
the vector file. The vectors are in memory once, inside FAISS (`VectorIndex.vectors` is a view of them): the
vector file is hashed and parsed through one open file straight into the index, and written to disk straight
from it. Before, a load held the file's bytes, the parsed index, a reconstructed copy and a rebuilt flat index
(four copies, 6 GB at 1M 384-dim vectors; two of them for as long as the index was served), and a save two more. Files are created with mode
0666 minus the umask, as any other file the user writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.ann import EXACT, Layout, inner_product, structure_of, vectors_view
from rag.chunking import SPLITTER_VERSION, Chunk, PassageStats, chunk_document, passage_stats
from rag.documents import Document, Problem
from rag.embedding import Embedder
from rag.errors import IndexBusy, IndexCorrupt, IndexError_, IndexMismatch, IndexMissing

__all__ = ["IndexBusy", "IndexCorrupt", "IndexError_", "IndexMismatch", "IndexMissing", "VectorIndex", "ingest"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: chunks carry heading and page; extracted texts stored in texts/
TEXTS = "texts"
MANIFEST = "manifest.json"
LOCK = ".lock"
# Names this module writes; nothing else in the folder is ever deleted.
DATA_FILE = re.compile(r"(chunks-[0-9a-f]{16}\.jsonl|vectors-[0-9a-f]{16}\.faiss)")
STORED_TEXT = re.compile(r"[0-9a-f]{64}\.txt")  # texts/<sha256>.txt
TEMP_FILE = re.compile(r"\..+\.[0-9a-f]{16}\.tmp")
CHECK_ROWS = 65_536  # vectors checked (and copied into a rebuilt structure) per block: bounded scratch memory
UNIT_NORM_TOLERANCE = 1e-3  # float32 normalised vectors are within ~1e-6 of 1; a damaged one is far off
MAX_LISTED = 20  # documents read in one ingest listed by name in the summary (a badly split one always is)


@dataclass(frozen=True)
class SearchHit:
    row: int
    score: float


@dataclass
class IngestReport:
    """What an ingest did. `passages`: every indexed document's passage count, median passage length and
    whether it looks split badly (rag.chunking.passage_stats; also recorded per document in the manifest),
    so the summary names a document a format problem shredded, as issue 25's HTML pages were."""

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
    chunk_size: int = 0
    passages: dict[str, PassageStats] = field(default_factory=dict)  # every indexed document's, by name

    def to_dict(self) -> dict:
        """The report as the API and the chat show it."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("problems", "passages")}
        out["problems"] = [p.to_dict() for p in self.problems]
        out["passages"] = {name: stats.to_dict() for name, stats in self.passages.items()}
        out["seconds"] = round(self.seconds, 3)
        return out

    def passage_lines(self) -> list[str]:
        """One line per document read this time (at most MAX_LISTED, then a count), and one per document
        that looks split badly, read this time or not: a warning stays in the summary until it is fixed."""
        fresh = [n for n in self.added + self.changed if n in self.passages]
        flagged = {n for n, stats in self.passages.items() if stats.split_badly}
        quiet = [n for n in fresh if n not in flagged]
        shown = set(quiet[:MAX_LISTED]) | flagged
        names = [n for n in fresh if n in shown] + sorted(flagged - set(fresh))
        lines = [f"  {self.passages[n].describe(n)}" for n in names]
        if len(quiet) > MAX_LISTED:
            lines.append(f"  … and {len(quiet) - MAX_LISTED} more")
        return lines

    def summary(self) -> str:
        lines = []
        if self.rebuilt_because:
            lines.append(f"rebuilt from scratch: {self.rebuilt_because}")
        lines.append(
            f"documents: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {len(self.unchanged)} unchanged"
        )
        lines.append(f"chunks: {self.chunks_added} added, {self.chunks_removed} removed, {self.chunks_total} in index")
        listed = self.passage_lines()
        if listed:
            lines.append(f"passages (chunk size {self.chunk_size} characters):")
            lines.extend(listed)
        if self.problems:
            lines.append(f"not indexed ({len(self.problems)}):")
            lines.extend(f"  {p.name}: {p.reason}" for p in self.problems)
        lines.append(f"took {self.seconds:.2f} s")
        return "\n".join(lines)


def chunk_settings(chunk_size: int, chunk_overlap: int) -> dict:
    return {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap, "splitter": SPLITTER_VERSION}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    # os.open with 0o666 lets the umask decide the mode (mkstemp always made 0600 files)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- one writer at a time ----------------------------------------------------------------------------

_held: dict[tuple[int, Path], int] = {}  # (thread, index folder) holding the lock, with a re-entry count
_held_guard = threading.Lock()


@contextlib.contextmanager
def writer_lock(index_dir: Path):
    """Exclusive write access to `index_dir` (re-entrant within a thread); `IndexBusy` if another
    process or thread holds it. The lock file stays: unlinking a flock'ed file lets a third writer lock a new one."""
    index_dir.mkdir(parents=True, exist_ok=True)
    key = (threading.get_ident(), index_dir.resolve())
    with _held_guard:
        if key in _held:
            _held[key] += 1
            fd = None
        else:
            fd = os.open(index_dir / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise IndexBusy(
                    f"another `rag ingest` is writing the index in {index_dir}",
                    hint="wait for it to finish, then run this again",
                ) from None
            _held[key] = 1
            _remove_leftovers(index_dir)
    try:
        yield
    finally:
        with _held_guard:
            _held[key] -= 1
            if _held[key] == 0:
                del _held[key]
                if fd is not None:
                    os.close(fd)  # releases the flock


def _remove_leftovers(index_dir: Path) -> None:
    """Under the lock: temp files and unreferenced data files of a writer that crashed."""
    try:
        referenced = set(json.loads((index_dir / MANIFEST).read_text("utf-8"))["files"].values())
    except Exception:  # noqa: BLE001 - no readable manifest: nothing is referenced, keep data files anyway
        referenced = None
    texts = index_dir / TEXTS
    for path in [*index_dir.iterdir(), *(texts.iterdir() if texts.is_dir() else [])]:
        stale_temp = TEMP_FILE.fullmatch(path.name)
        orphan = referenced is not None and DATA_FILE.fullmatch(path.name) and path.name not in referenced
        if (stale_temp or orphan) and path.is_file() and not path.is_symlink():
            log.info("removing leftover %s from an interrupted write", path.name)
            path.unlink(missing_ok=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class VectorIndex:
    """Chunks and their vectors, searchable by inner product (cosine on normalised vectors).

    `vectors`: float32 rows, built into the FAISS structure `layout` chooses for their number (exact when no
    layout is given), or a FAISS index that already holds them (loaded, or built by `ingest`). The vectors live
    once, in the FAISS index; `vectors` is a read-only view of them (rag/ann.py). The manifest's `index` entry
    records the structure."""

    def __init__(self, manifest: dict, chunks: list[Chunk], vectors, layout: Layout | None = None):
        import faiss

        dim = int(manifest["dim"])
        self.faiss = vectors if isinstance(vectors, faiss.Index) else (layout or Layout()).build(vectors, dim)
        if layout is not None:
            layout.tune(self.faiss)
        self.manifest = {**manifest, "index": structure_of(self.faiss)}
        self.chunks = chunks
        self.vectors = vectors_view(self.faiss)

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def structure(self) -> dict:
        return self.manifest["index"]

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
    def load(cls, index_dir: Path, expect: dict | None = None, layout: Layout | None = None) -> VectorIndex:
        """Load and validate; `expect` holds embedder/dim/chunking that must match, `layout` (the index
        settings' rag.ann.Layout) the structure the index must have for its size, and its efSearch."""
        manifest_path = index_dir / MANIFEST
        if not manifest_path.exists():
            raise IndexMissing(f"no index in {index_dir}; run `rag ingest` to build it")
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
            version = manifest["format_version"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorrupt(f"{manifest_path} is unreadable ({exc}); run `rag ingest` to rebuild the index") from exc
        if version != FORMAT_VERSION:
            raise IndexMismatch(
                f"index in {index_dir} has format version {version}, this program reads {FORMAT_VERSION}; "
                "run `rag ingest` to rebuild it"
            )
        problem = _manifest_problem(manifest)
        if problem:
            raise IndexCorrupt(f"{manifest_path} is damaged ({problem}); run `rag ingest` to rebuild the index")
        for problem in mismatches(manifest, expect or {}):
            raise IndexMismatch(f"index in {index_dir} was built with {problem}; run `rag ingest` to rebuild it")
        if layout is not None:
            have, want = manifest.get("index") or {"kind": EXACT}, layout.structure(manifest["chunk_count"])
            if have != want:
                raise IndexMismatch(
                    f"index in {index_dir} is {describe_structure(have)}, but {layout.why(manifest['chunk_count'])}"
                    f" ({describe_structure(want)}); run `rag ingest` to rebuild it (no re-embedding)"
                )
        files = manifest["files"]
        try:
            chunk_bytes = (index_dir / files["chunks"]).read_bytes()
            problem, fidx = _read_vectors(index_dir / files["vectors"], manifest, chunk_bytes)
        except OSError as exc:
            raise IndexCorrupt(f"index files in {index_dir} are missing ({exc}); run `rag ingest` to rebuild") from exc
        except Exception as exc:  # any failure here means the files are damaged
            raise IndexCorrupt(f"index files in {index_dir} are damaged ({exc}); run `rag ingest` to rebuild") from exc
        if problem:
            raise IndexCorrupt(f"index files in {index_dir} were changed ({problem}); run `rag ingest` to rebuild")
        try:
            chunks = [Chunk(**json.loads(line)) for line in chunk_bytes.decode("utf-8").splitlines() if line.strip()]
            vectors = vectors_view(fidx)
        except Exception as exc:  # any failure here means the files are damaged
            raise IndexCorrupt(f"index files in {index_dir} are damaged ({exc}); run `rag ingest` to rebuild") from exc
        if len(chunks) != len(vectors) or len(chunks) != manifest["chunk_count"]:
            raise IndexCorrupt(
                f"index in {index_dir} is inconsistent ({len(chunks)} chunks, {len(vectors)} vectors); "
                "run `rag ingest` to rebuild it"
            )
        problem = (
            _structure_problem(manifest, fidx)
            or _content_problem(manifest, chunks, vectors, fidx.d)
            or _stored_text_problem(index_dir, manifest)
        )
        if problem:
            raise IndexCorrupt(f"index in {index_dir} is damaged ({problem}); run `rag ingest` to rebuild it")
        return cls(manifest, chunks, fidx, layout)

    def save(self, index_dir: Path) -> None:
        """Write the data files, swap the manifest, then delete the generation the swap replaced.

        The FAISS index is written straight to a temp file (no serialised copy in memory: at 1M 384-dim vectors
        that copy was 1.5 GB, twice), hashed from disk, then renamed to its content-addressed name."""
        chunk_bytes = "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in self.chunks).encode()
        with writer_lock(index_dir):
            manifest_path = index_dir / MANIFEST
            previous = _referenced_files(manifest_path)
            if manifest_path.is_dir() and not manifest_path.is_symlink():
                # not ours to delete: moved aside so the rebuild can write its manifest
                aside = manifest_path.with_name(f"{MANIFEST}.broken-{int(time.time())}")
                log.warning("%s is a folder; moved it to %s", manifest_path, aside.name)
                manifest_path.rename(aside)
            vec_tmp, vec_sha = _write_faiss_temp(index_dir, self.faiss)
            try:
                chunk_sha = _sha256(chunk_bytes)
                digest = _sha256((chunk_sha + vec_sha).encode())[:16]
                files = {"chunks": f"chunks-{digest}.jsonl", "vectors": f"vectors-{digest}.faiss"}
                _atomic_write_bytes(index_dir / files["chunks"], chunk_bytes)
                os.replace(vec_tmp, index_dir / files["vectors"])
            finally:
                vec_tmp.unlink(missing_ok=True)
            self.manifest = {
                **self.manifest,
                "files": files,
                "checksums": {"chunks": chunk_sha, "vectors": vec_sha},
                "chunk_count": len(self.chunks),
                "updated_at": time.time(),
            }
            _atomic_write_bytes(manifest_path, json.dumps(self.manifest, indent=2).encode())
            for name in previous - set(files.values()):
                (index_dir / name).unlink(missing_ok=True)
            texts = {d.get("text") for d in self.manifest.get("documents", {}).values()}
            if (index_dir / TEXTS).is_dir():  # stored texts no document names any more (only our names)
                for old in (index_dir / TEXTS).iterdir():
                    if STORED_TEXT.fullmatch(old.name) and f"{TEXTS}/{old.name}" not in texts:
                        old.unlink(missing_ok=True)


def _referenced_files(manifest_path: Path) -> set[str]:
    """The data files a manifest points at (only names this module writes), or nothing if unreadable."""
    try:
        names = json.loads(manifest_path.read_text("utf-8"))["files"].values()
    except Exception:  # noqa: BLE001 - a damaged manifest references nothing we may delete
        return set()
    return {n for n in names if isinstance(n, str) and DATA_FILE.fullmatch(n)}


def _manifest_problem(manifest) -> str | None:
    """What is wrong with the manifest's shape, if anything (a hand-edited or truncated manifest)."""
    if not isinstance(manifest, dict):
        return "not a JSON object"
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(files.get(k), str) for k in ("chunks", "vectors")):
        return "no `files` entry for chunks and vectors"
    if not all(DATA_FILE.fullmatch(files[k]) for k in ("chunks", "vectors")):
        return "`files` names something other than this index's data files"
    dim, count = manifest.get("dim"), manifest.get("chunk_count")
    if not (isinstance(dim, int) and not isinstance(dim, bool) and dim > 0):
        return "no valid `dim`"
    if not (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
        return "no valid `chunk_count`"
    documents = manifest.get("documents")
    if not isinstance(documents, dict):
        return "no `documents` entry"
    for doc_id, doc in documents.items():
        if not (isinstance(doc, dict) and isinstance(doc.get("sha256"), str) and isinstance(doc.get("chunks"), int)):
            return f"document {doc_id!r} has no sha256 or chunk count"
        text = doc.get("text")
        if text is not None and not (
            isinstance(text, str) and text.startswith(f"{TEXTS}/") and STORED_TEXT.fullmatch(text[len(TEXTS) + 1 :])
        ):
            return f"document {doc_id!r} names a stored text that is not one of this index's"
    checksums = manifest.get("checksums")
    if checksums is not None and not (
        isinstance(checksums, dict) and all(isinstance(checksums.get(k), str) for k in ("chunks", "vectors"))
    ):
        return "`checksums` is malformed"
    return None


def _write_faiss_temp(index_dir: Path, index) -> tuple[Path, str]:
    """The FAISS index written to a temp file in `index_dir` (synced), and its sha256."""
    import faiss

    tmp = index_dir / f".vectors.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))
            f.flush()
            os.fsync(f.fileno())
        with tmp.open("rb") as f:
            return tmp, _stream_sha256(f)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _stream_sha256(f, prefix: bytes = b"") -> str:
    digest = hashlib.sha256(prefix)
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _read_vectors(path: Path, manifest: dict, chunk_bytes: bytes):
    """(problem, FAISS index): the vector file hashed and parsed through one open file, so a writer deleting it
    meanwhile cannot swap it under us, and parsed straight into the index (one copy in memory)."""
    import faiss

    with path.open("rb") as f:
        problem = _checksum_problem(manifest, chunk_bytes, f)
        if problem:
            return problem, None
        f.seek(0)
        return None, faiss.read_index(faiss.PyCallbackIOReader(f.read))


def _checksum_problem(manifest: dict, chunk_bytes: bytes, vec_file) -> str | None:
    """Data files must hash to what was written: the manifest's sha256s, or (older indexes without them)
    the digest their names carry. `vec_file`: the open vector file, read in blocks."""
    checksums = manifest.get("checksums")
    if checksums:
        if _sha256(chunk_bytes) != checksums["chunks"]:
            return f"{manifest['files']['chunks']} does not match its sha256"
        if _stream_sha256(vec_file) != checksums["vectors"]:
            return f"{manifest['files']['vectors']} does not match its sha256"
        return None
    digest = _stream_sha256(vec_file, prefix=chunk_bytes)[:16]
    if not all(digest in manifest["files"][k] for k in ("chunks", "vectors")):
        return "the data files do not match the digest in their names"
    return None


def describe_structure(structure: dict) -> str:
    if structure.get("kind") == "hnsw":
        return f"HNSW (M={structure.get('m')}, efConstruction={structure.get('ef_construction')})"
    return "exact" if structure.get("kind") == EXACT else f"a {structure.get('kind')!r} index"


def _structure_problem(manifest: dict, fidx) -> str | None:
    """The vector file must be the structure the manifest records (none recorded: exact), by inner product."""
    recorded, found = manifest.get("index") or {"kind": EXACT}, structure_of(fidx)
    if recorded != found:
        return f"the vector file is {describe_structure(found)}, the manifest says {describe_structure(recorded)}"
    if not inner_product(fidx):
        return "the vector file does not search by inner product"
    return None


def _stored_text_problem(index_dir: Path, manifest: dict) -> str | None:
    """Stored extracted texts exist and still hash to their names (citations index them)."""
    for doc_id, doc in manifest["documents"].items():
        if doc.get("text"):
            try:
                data = (index_dir / doc["text"]).read_bytes()
            except OSError:
                return f"the stored text of {doc_id!r} is missing"
            if _sha256(data) != Path(doc["text"]).stem:
                return f"the stored text of {doc_id!r} was changed"
    return None


def _content_problem(manifest: dict, chunks: list[Chunk], vectors: np.ndarray, file_dim: int) -> str | None:
    """Vectors of the right dimension, finite and unit length; chunks that agree with the documents."""
    if file_dim != manifest["dim"]:
        return f"the vectors have dimension {file_dim}, the manifest says {manifest['dim']}"
    for start in range(0, len(vectors), CHECK_ROWS):  # in blocks: no full-size temporaries at 1M vectors
        block = vectors[start : start + CHECK_ROWS]
        if not np.isfinite(block).all():
            return "some vectors are not finite numbers"
        if np.abs(np.linalg.norm(block, axis=1) - 1.0).max() > UNIT_NORM_TOLERANCE:
            return "some vectors are not unit length"
    documents = manifest["documents"]
    counts: dict[str, int] = {}
    for chunk in chunks:
        if chunk.doc_id not in documents:
            return f"chunk {chunk.chunk_id!r} belongs to no indexed document"
        if not (0 <= chunk.start <= chunk.end and chunk.end - chunk.start == len(chunk.text)):
            return f"chunk {chunk.chunk_id!r} has offsets that do not fit its text"
        counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
    for doc_id, doc in documents.items():
        if counts.get(doc_id, 0) != doc["chunks"]:
            return f"{doc_id!r} has {counts.get(doc_id, 0)} chunks, the manifest says {doc['chunks']}"
    return None


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
    layout: Layout | None = None,
) -> tuple[VectorIndex, IngestReport]:
    """Bring the index in line with `docs`, embedding only new or changed documents.

    `progress(n)` after each embedded batch; `on_chunked(total)` once chunking is done, with the number
    of chunks to embed; `problems` (files that could not be read) are carried into the report; `layout`
    (rag.ann.Layout.of(the index settings); None: the production defaults) chooses the FAISS structure.

    Holds the writer lock throughout (`IndexBusy` if another ingest runs). An index that fails its
    checks is rebuilt; a document whose stored chunks no longer match its text is re-embedded. A structure
    the layout no longer chooses (the setting changed, or the index grew past the threshold) is rebuilt
    from the stored vectors; only adding to an index of the chosen structure adds to it in place.
    """
    if layout is None:
        from rag.settings import IndexSettings

        layout = Layout.of(IndexSettings())
    with writer_lock(index_dir):
        return _ingest(docs, index_dir, embedder, chunk_size, chunk_overlap, progress, problems, on_chunked, layout)


def _structure_for(layout: Layout, dim: int, old: VectorIndex | None, keep_rows: list[int], new_vectors: np.ndarray):
    """The FAISS index for the kept rows of `old` then `new_vectors`. When every old row is kept and the old
    structure is the one wanted, the new vectors are added to it (an HNSW graph is not rebuilt for an upload);
    otherwise a fresh one is built, the kept rows copied in blocks (no full-size temporary)."""
    from rag.ann import empty

    total = len(keep_rows) + len(new_vectors)
    want = layout.structure(total)
    if old is not None and old.structure == want and keep_rows == list(range(len(old.chunks))):
        index, old.faiss, old.vectors = old.faiss, None, None  # taken over: `old` can hand out no stale view
    else:
        index = empty(want, dim)
        for start in range(0, len(keep_rows), CHECK_ROWS):
            index.add(np.ascontiguousarray(old.vectors[keep_rows[start : start + CHECK_ROWS]]))
    if len(new_vectors):
        index.add(np.ascontiguousarray(new_vectors, dtype=np.float32))
    layout.tune(index)
    return index


EMBED_GROUP = 64  # texts per embed() call while ingesting: `progress` is reported after each


def embed_all(texts: list[str], embedder: Embedder, progress: Callable[[int], object] | None = None) -> np.ndarray:
    """The texts' vectors, in their order, embedded longest first in groups of EMBED_GROUP.

    Why longest first across the whole ingest: an embedder pads each batch to its longest text, and groups
    taken in document order mix short and long chunks. Sorted, each batch holds texts of nearly one length:
    1,010 synthetic chunks (`rag bench`'s corpus, 2 threads) take 10.4-11.2 s per 1,000 instead of 15.1-16.4
    in document order (`python -m rag_eval.bench.ingest_order`), the same vectors; sorting within a group of
    64, as the embedder does, recovers little. The order of the returned rows is the texts' order.
    """
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for at in range(0, len(order), EMBED_GROUP):
        rows = order[at : at + EMBED_GROUP]
        out[rows] = embedder.embed([texts[i] for i in rows])
        if progress:
            progress(len(rows))
    return out


def _ingest(docs, index_dir, embedder, chunk_size, chunk_overlap, progress, problems, on_chunked, layout: Layout):
    t0 = time.perf_counter()
    report = IngestReport(problems=list(problems or []), chunk_size=chunk_size)
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
    current = {d.doc_id: d.sha256 for d in docs}
    if old:  # same sha256 but stored chunks that are not the document's text: re-embed that document
        # (a document passed with no text stands for "as recorded": rag.library does that, reading nothing)
        texts = {d.doc_id: d.text for d in docs if d.text}
        drifted = {c.doc_id for c in old.chunks if c.doc_id in texts and texts[c.doc_id][c.start : c.end] != c.text}
        old_docs = {k: v for k, v in old_docs.items() if k not in drifted}
    keep_rows: list[int] = []
    if old:
        for row, chunk in enumerate(old.chunks):
            doc = old_docs.get(chunk.doc_id)
            if doc and current.get(chunk.doc_id) == doc["sha256"]:
                keep_rows.append(row)
    report.removed = sorted(set(old.documents if old else {}) - new_ids)
    to_embed: list[Chunk] = []
    documents: dict[str, dict] = {}
    for doc in docs:
        prev = old_docs.get(doc.doc_id)
        if prev and prev["sha256"] == doc.sha256:
            report.unchanged.append(doc.doc_id)
            documents[doc.doc_id] = prev
            continue
        (report.changed if prev or (old and doc.doc_id in old.documents) else report.added).append(doc.doc_id)
        chunks = chunk_document(doc, chunk_size, chunk_overlap)
        to_embed.extend(chunks)
        stats = passage_stats(chunks, chunk_size, doc.segments)
        documents[doc.doc_id] = {
            "sha256": doc.sha256,
            "chunks": len(chunks),
            "chars": len(doc.text),
            "type": doc.kind,
            "pages": doc.pages,
            "text": store_text(index_dir, doc.text) if doc.derived else None,
            "median_chars": stats.median_chars,
            "split_badly": stats.split_badly,
        }
        report.passages[doc.doc_id] = stats
    _recorded_stats(documents, report, old, keep_rows, chunk_size)
    if on_chunked:
        on_chunked(len(to_embed))

    new_vectors = embed_all([c.search_text for c in to_embed], embedder, progress)

    kept_chunks = [old.chunks[r] for r in keep_rows] if old else []
    old_structure = old.structure if old else None
    report.chunks_added = len(to_embed)
    report.chunks_removed = (len(old.chunks) - len(keep_rows)) if old else 0
    manifest = {
        "format_version": FORMAT_VERSION,
        **expect,
        "documents": dict(sorted(documents.items())),
    }
    structure = _structure_for(layout, embedder.dim, old, keep_rows, new_vectors)
    index = VectorIndex(manifest, kept_chunks + to_embed, structure, layout)
    restructured = old_structure is not None and old_structure != index.structure
    if restructured:
        log.info("index structure: %s, was %s", describe_structure(index.structure), describe_structure(old_structure))
    changed = report.added or report.changed or report.removed or old is None or restructured
    if changed or not (index_dir / MANIFEST).exists():
        index.save(index_dir)
    else:
        index.manifest = old.manifest
    report.chunks_total = len(index)
    report.seconds = time.perf_counter() - t0
    return index, report


def _recorded_stats(
    documents: dict[str, dict], report: IngestReport, old, keep_rows: list[int], chunk_size: int
) -> None:
    """Passage figures of the documents kept as they were: from the manifest, or (an index written before
    the figures were recorded) from their stored chunks, without their table rows known."""
    kept: dict[str, list[Chunk]] = {}
    for row in keep_rows:
        chunk = old.chunks[row]
        kept.setdefault(chunk.doc_id, []).append(chunk)
    for doc_id, meta in documents.items():
        if doc_id in report.passages:
            continue
        if isinstance(meta.get("median_chars"), int) and isinstance(meta.get("split_badly"), bool):
            report.passages[doc_id] = PassageStats(meta["chunks"], meta["median_chars"], meta["split_badly"])
            continue
        stats = passage_stats(kept.get(doc_id, []), chunk_size)
        documents[doc_id] = {**meta, "median_chars": stats.median_chars, "split_badly": stats.split_badly}
        report.passages[doc_id] = stats


def store_text(index_dir: Path, text: str) -> str:
    """Write an extracted text once, named by its content; returns its path relative to the index folder."""
    data = text.encode("utf-8")
    digest = _sha256(data)
    name = f"{TEXTS}/{digest}.txt"
    path = index_dir / name
    if not path.is_file() or _sha256(path.read_bytes()) != digest:  # missing, or damaged: (re)write it
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
