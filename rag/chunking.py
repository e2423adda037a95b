"""Sentence-aware chunks whose text is always an exact slice of the original file."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from rag.documents import Document

SPLITTER_VERSION = "sentence-v1"

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "inc", "ltd", "co", "corp", "jr", "sr", "st", "vs", "etc", "no", "fig",
    "e.g", "i.e", "gen", "gov", "sen", "rep", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec",
}  # fmt: skip
_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s+)")


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    chunk_id: str
    start: int
    end: int
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def _is_abbreviation(text: str, dot: int) -> bool:
    word = re.search(r"(\S+)$", text[:dot])
    if not word:
        return False
    token = word.group(1).lower().strip("\"'(")
    # Initialisms such as "U.S." or "J." end with a single letter before the dot.
    return token in _ABBREVIATIONS or bool(re.fullmatch(r"(?:[a-z]\.)*[a-z]", token))


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of sentences in text[start:end]; whitespace between sentences is excluded."""
    end = len(text) if end is None else end
    spans, cur = [], start
    for m in _BOUNDARY.finditer(text, start, end):
        if m.group().startswith(".") and len(m.group()) == 1 and _is_abbreviation(text, m.start()):
            continue
        nxt = text[m.end() : end].lstrip()
        if nxt and not (nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in "\"'\u201c(["):
            continue
        spans.append((cur, m.end()))
        cur = m.end()
        while cur < end and text[cur].isspace():
            cur += 1
    if cur < end and text[cur:end].strip():
        tail_end = end
        while tail_end > cur and text[tail_end - 1].isspace():
            tail_end -= 1
        spans.append((cur, tail_end))
    return spans


def chunk_document(doc: Document, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Group a paragraph's sentences up to chunk_size characters; never cross a paragraph or dropped boilerplate."""
    chunks: list[Chunk] = []
    for seg in doc.segments:
        sentences = split_sentences(doc.text, seg.start, seg.end)
        i = 0
        while i < len(sentences):
            j = i + 1
            while j < len(sentences) and sentences[j][1] - sentences[i][0] <= chunk_size:
                j += 1
            start, end = sentences[i][0], sentences[j - 1][1]
            chunks.append(
                Chunk(doc.doc_id, f"{doc.doc_id}#{len(chunks)}", start, end, doc.text[start:end])
            )
            if j >= len(sentences):
                break
            # Step back over trailing sentences that fit in the overlap, but always make progress.
            nxt = j
            while nxt - 1 > i and sentences[j - 1][1] - sentences[nxt - 1][0] <= chunk_overlap:
                nxt -= 1
            i = nxt
    return chunks
