"""Load the corpus: every file's type is read from its content, its blocks become segments worth indexing.

`Document.text` is the text every offset indexes: the decoded original file for plain text and
Markdown without tables (rule in rag/formats/text.py), or a text extracted from the blocks for PDF,
HTML, DOCX and tables (`derived`), which ingestion stores beside the index so citations stay exact.

A file that cannot be read is never skipped silently and never stops the others: `scan_corpus`
returns it as a `Problem` (name and reason) that `rag ingest` prints and the ingest report carries.
Symbolic links that lead out of the documents folder are refused (a link to /etc/passwd must not be
indexed and served to whoever can ask questions).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import CorpusError
from rag.formats import Segment, UnreadableDocument, extract, layout

log = logging.getLogger(__name__)

__all__ = ["CorpusError", "Corpus", "Document", "Problem", "Segment", "load_corpus", "load_document", "scan_corpus"]

# Words that mark web furniture: paywalls, newsletter prompts, cookie banners, share bars.
_CALL_TO_ACTION = re.compile(
    r"\b(subscri\w*|purchase|sign[ -]?(up|in)|log[ -]?in|register|newsletter|continue reading|read more|"
    r"click here|cookies?|advertis\w*|sponsored|share (this|on)|follow us|download (the|our) app|"
    r"all rights reserved|paywall|premium members?|unlock)\b",
    re.IGNORECASE,
)
MAX_BOILERPLATE_WORDS = 15
MAX_FILE_BYTES = 200 * 1024 * 1024  # larger files are reported, not read into memory


@dataclass
class Document:
    doc_id: str
    path: Path
    text: str
    sha256: str
    segments: list[Segment] = field(default_factory=list)
    dropped: list[Segment] = field(default_factory=list)
    kind: str = "text"
    derived: bool = False  # text was extracted (stored in the index folder), not the file itself
    pages: int | None = None


@dataclass(frozen=True)
class Problem:
    """A file that was not indexed, and why."""

    name: str
    reason: str

    def to_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason}


@dataclass
class Corpus:
    documents: list[Document]
    problems: list[Problem]


def is_boilerplate(paragraph: str) -> bool:
    """Short lines that ask the reader to do something (subscribe, sign in, accept cookies) carry no content."""
    words = paragraph.split()
    return 0 < len(words) <= MAX_BOILERPLATE_WORDS and bool(_CALL_TO_ACTION.search(paragraph))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_document(data: bytes, doc_id: str, path: Path) -> Document:
    """Bytes to a Document (raises UnreadableDocument with the reason)."""
    extraction = extract(data, doc_id)
    laid = layout(extraction)
    kept, dropped = [], []
    for seg in laid.segments:
        (dropped if seg.kind != "row" and is_boilerplate(laid.text[seg.start : seg.end]) else kept).append(seg)
    for seg in dropped:
        log.info("%s: dropped boilerplate %r", doc_id, laid.text[seg.start : seg.end])
    if not kept:
        raise UnreadableDocument(f"no text to index in this {extraction.kind} file")
    return Document(
        doc_id=doc_id,
        path=path,
        text=laid.text,
        sha256=sha256_bytes(data),
        segments=kept,
        dropped=dropped,
        kind=extraction.kind,
        derived=laid.derived,
        pages=extraction.pages,
    )


def discover(seeds_dir: Path) -> tuple[list[Path], list[Problem]]:
    """Every non-hidden file under seeds_dir, and the links that were refused."""
    if not seeds_dir.exists():
        raise CorpusError(
            f"documents folder {seeds_dir} does not exist",
            hint="create it and put .txt, .md, .html, .pdf or .docx files there",
        )
    if not seeds_dir.is_dir():
        raise CorpusError(f"{seeds_dir} is not a folder")
    root = seeds_dir.resolve()
    paths, problems = [], []
    for folder, dirs, files in os.walk(seeds_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        for name in [d for d in dirs if (here / d).is_symlink()]:
            dirs.remove(name)  # walked only if it stays inside (then its files are reached the normal way)
            problem = _link_problem(here / name, root, seeds_dir)
            if problem:
                problems.append(problem)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = here / name
            if path.is_symlink():
                problem = _link_problem(path, root, seeds_dir)
                if problem:
                    problems.append(problem)
                    continue
            if path.is_file():
                paths.append(path)
    return sorted(paths), problems


def _link_problem(path: Path, root: Path, seeds_dir: Path) -> Problem | None:
    target = path.resolve()
    if target == root or root in target.parents:
        return None
    return Problem(
        path.relative_to(seeds_dir).as_posix(), f"symbolic link to {target}, outside the documents folder: refused"
    )


def load_document(path: Path, seeds_dir: Path) -> Document | None:
    """One file as a Document, or None (with a warning naming the file and the reason)."""
    try:
        return read_document(path, seeds_dir)
    except UnreadableDocument as exc:
        log.warning("skipping %s: %s", path, exc.describe())
        return None


def read_document(path: Path, seeds_dir: Path) -> Document:
    doc_id = path.relative_to(seeds_dir).as_posix()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UnreadableDocument(f"too large ({size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES / 1e6:.0f} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(f"cannot be read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise UnreadableDocument("empty file")
    return parse_document(data, doc_id, path)


def scan_corpus(seeds_dir: Path, progress: Callable[[Path], object] | None = None) -> Corpus:
    """Every readable document, and a Problem for each file that is not (the others are still read)."""
    paths, problems = discover(seeds_dir)
    docs = []
    for path in paths:
        try:
            docs.append(read_document(path, seeds_dir))
        except UnreadableDocument as exc:
            problems.append(Problem(path.relative_to(seeds_dir).as_posix(), exc.describe()))
        except Exception as exc:  # a parser bug on one file must not stop the others
            log.warning("reading %s failed", path, exc_info=exc)
            problems.append(
                Problem(path.relative_to(seeds_dir).as_posix(), f"could not be parsed ({type(exc).__name__}: {exc})")
            )
        if progress:
            progress(path)
    problems.sort(key=lambda p: p.name)
    return Corpus(docs, problems)


def load_corpus(seeds_dir: Path) -> list[Document]:
    """The readable documents; CorpusError when there are none (naming what was wrong with the files)."""
    corpus = scan_corpus(seeds_dir)
    for p in corpus.problems:
        log.warning("skipping %s: %s", p.name, p.reason)
    if not corpus.documents:
        raise_empty(seeds_dir, corpus.problems)
    return corpus.documents


def raise_empty(seeds_dir: Path, problems: list[Problem]):
    if problems:
        listed = "; ".join(f"{p.name}: {p.reason}" for p in problems[:5])
        raise CorpusError(f"no readable documents in {seeds_dir} ({listed})")
    raise CorpusError(
        f"no documents in {seeds_dir}", hint="add .txt, .md, .html, .pdf or .docx files and run `rag ingest` again"
    )
