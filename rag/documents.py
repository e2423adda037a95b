"""Load the corpus and find the spans worth indexing, keeping offsets into the original files."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import CorpusError  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")

# Words that mark web furniture: paywalls, newsletter prompts, cookie banners, share bars.
_CALL_TO_ACTION = re.compile(
    r"\b(subscri\w*|purchase|sign[ -]?(up|in)|log[ -]?in|register|newsletter|continue reading|read more|"
    r"click here|cookies?|advertis\w*|sponsored|share (this|on)|follow us|download (the|our) app|"
    r"all rights reserved|paywall|premium members?|unlock)\b",
    re.IGNORECASE,
)
MAX_BOILERPLATE_WORDS = 15



@dataclass(frozen=True)
class Segment:
    """A kept paragraph: text == document.text[start:end]."""

    start: int
    end: int


@dataclass
class Document:
    doc_id: str
    path: Path
    text: str
    sha256: str
    segments: list[Segment] = field(default_factory=list)
    dropped: list[Segment] = field(default_factory=list)


def is_boilerplate(paragraph: str) -> bool:
    """Short lines that ask the reader to do something (subscribe, sign in, accept cookies) carry no content."""
    words = paragraph.split()
    return 0 < len(words) <= MAX_BOILERPLATE_WORDS and bool(_CALL_TO_ACTION.search(paragraph))


def split_paragraphs(text: str) -> list[Segment]:
    """Non-empty lines (or blank-line separated blocks) with surrounding whitespace trimmed."""
    segments = []
    for match in re.finditer(r"[^\n]+", text):
        start, end = match.span()
        chunk = match.group()
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk) - len(chunk.rstrip())
        if end - trail > start + lead:
            segments.append(Segment(start + lead, end - trail))
    return segments


def clean(text: str) -> tuple[list[Segment], list[Segment]]:
    kept, dropped = [], []
    for seg in split_paragraphs(text):
        (dropped if is_boilerplate(text[seg.start : seg.end]) else kept).append(seg)
    return kept, dropped


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode(data: bytes, path: Path) -> str | None:
    """UTF-8 text or None (with a warning naming the file) for binary or undecodable files."""
    if b"\x00" in data:
        log.warning("skipping %s: looks binary (contains NUL bytes)", path)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        log.warning("skipping %s: not valid UTF-8 (%s)", path, exc.reason)
        return None
    return text.removeprefix("\ufeff")


def discover(seeds_dir: Path) -> list[Path]:
    if not seeds_dir.exists():
        raise CorpusError(f"documents folder {seeds_dir} does not exist; put .txt or .md files there")
    if not seeds_dir.is_dir():
        raise CorpusError(f"{seeds_dir} is not a folder")
    paths = sorted(
        p for p in seeds_dir.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    )
    if not paths:
        raise CorpusError(f"no .txt or .md documents in {seeds_dir}; add some and run `rag ingest` again")
    return paths


def load_document(path: Path, seeds_dir: Path) -> Document | None:
    data = path.read_bytes()
    text = decode(data, path)
    if text is None:
        return None
    kept, dropped = clean(text)
    doc_id = path.relative_to(seeds_dir).as_posix()
    for seg in dropped:
        log.info("%s: dropped boilerplate %r", doc_id, text[seg.start : seg.end])
    return Document(doc_id=doc_id, path=path, text=text, sha256=sha256_bytes(data), segments=kept, dropped=dropped)


def load_corpus(seeds_dir: Path) -> list[Document]:
    docs = [d for d in (load_document(p, seeds_dir) for p in discover(seeds_dir)) if d is not None]
    if not docs:
        raise CorpusError(f"no readable UTF-8 documents in {seeds_dir}")
    return docs
