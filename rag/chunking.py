"""Structure-aware chunks whose text is always an exact slice of the document's cited text.

Units: a paragraph (its sentences grouped up to chunk_size), a lead-in paragraph together with the
list items that follow it, a table row (already written with its column headers). Chunks never
cross a unit, a page or dropped boilerplate, and a heading is never a chunk on its own: it is the
chunk's `heading` path, which retrieval reads with the text (`search_text`) while citations keep
pointing at the body text.

Every chunk is at most chunk_size characters: a sentence longer than that (a 1 MB line without a
full stop) is cut at word boundaries, a word longer than that at chunk_size.

Linear time: the sentence splitter looks at a bounded window around each full stop (the old one ran a
regex over `text[:dot]` and copied `text[dot:]` at every period: measured 10.5 s for 100 KB and 32 s
for 200 KB of one line; now 0.11 s for 1 MB).

`passage_stats` says how a document came out: its passages and their median length, and whether it
looks split badly, so a format problem shows in `rag ingest`'s summary instead of in wrong answers.
Measured at the default chunk size of 320: prose packs into passages of about half of it (median 172
characters for the seed text, 174 for tests/fixtures/base-passwd.html, 205-260 for the HTML manuals of
base-passwd, zlib and the longer libffi pages in /usr/share/doc), while the two HTML 4 pages of issue
25, whose inline `<TT>` cut every sentence, came out at medians of 18 and 12. Reference pages made of
one-line paragraphs sit in between: of the 63 pages of the Node.js API reference with at least 10
passages, 61 have medians of 68-245 and two fall under the threshold (deprecations.html at 24, lines
such as "Type: End-of-Life"; globals.html at 48). Hence a fifth of the chunk size (64 characters at
320): every shredded page measured is far under it, 61 of those 63 pages above it; a quarter (80) would
also flag three more of them, at 68-79.
"""

from __future__ import annotations

import re
import statistics
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rag.documents import Document
from rag.formats import HEADING_SEPARATOR, Segment

SPLITTER_VERSION = "blocks-v2"
LEAD_IN_CONTEXT = 120  # characters of a list's lead-in kept in the context of its later chunks

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "inc", "ltd", "co", "corp", "jr", "sr", "st", "vs", "etc", "no", "fig",
    "e.g", "i.e", "gen", "gov", "sen", "rep", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec",
}  # fmt: skip
_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s)")
_INITIALISM = re.compile(r"(?:[a-z]\.)*[a-z]")
MAX_WORD_LOOKBACK = 40  # an abbreviation is a short word: look no further back than this
SPLIT_BADLY_SHARE = 0.2  # a median passage under this share of the chunk size looks shredded…
SPLIT_BADLY_MIN_PASSAGES = 10  # …in a document with at least this many passages (of prose, not table rows)


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    chunk_id: str
    start: int
    end: int
    text: str
    heading: str | None = None  # heading path, e.g. "Travel policy > Meals"
    page: int | None = None  # 1-based page for paged formats

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def search_text(self) -> str:
        """What BM25 and the embedder read: the heading path, then the text."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


def _is_abbreviation(text: str, dot: int) -> bool:
    i = dot
    floor = max(0, dot - MAX_WORD_LOOKBACK)
    while i > floor and not text[i - 1].isspace():
        i -= 1
    if i == dot or (i == floor and floor > 0 and not text[i - 1].isspace()):
        return False
    token = text[i:dot].lower().strip("\"'(")
    # Initialisms such as "U.S." or "J." end with a single letter before the dot.
    return token in _ABBREVIATIONS or bool(_INITIALISM.fullmatch(token))


def _next_visible(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos].isspace():
        pos += 1
    return pos


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets of sentences in text[start:end]; whitespace between sentences is excluded."""
    end = len(text) if end is None else end
    spans, cur = [], _next_visible(text, start, end)
    for m in _BOUNDARY.finditer(text, start, end):
        if m.end() <= cur:
            continue
        if m.group().startswith(".") and len(m.group()) == 1 and _is_abbreviation(text, m.start()):
            continue
        nxt = _next_visible(text, m.end(), end)
        if nxt < end and not (text[nxt].isupper() or text[nxt].isdigit() or text[nxt] in "\"'\u201c(["):
            continue
        spans.append((cur, m.end()))
        cur = nxt
    if cur < end:
        tail_end = end
        while tail_end > cur and text[tail_end - 1].isspace():
            tail_end -= 1
        if tail_end > cur:
            spans.append((cur, tail_end))
    return spans


def split_long(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Cut text[start:end] into pieces of at most `size` characters, at whitespace where there is any."""
    pieces = []
    while end - start > size:
        cut = start + size
        ws = cut
        while ws > start and not text[ws].isspace():
            ws -= 1
        if ws > start:
            cut = ws
            piece_end = cut
            while piece_end > start and text[piece_end - 1].isspace():
                piece_end -= 1
        else:
            piece_end = cut  # one word longer than size: cut inside it
        pieces.append((start, piece_end))
        start = _next_visible(text, cut, end)
    if end > start:
        pieces.append((start, end))
    return pieces


def _pieces(text: str, seg: Segment, size: int) -> list[tuple[int, int]]:
    """The segment's sentences, each at most `size` characters."""
    out = []
    for s, e in split_sentences(text, seg.start, seg.end):
        out.extend(split_long(text, s, e, size) if e - s > size else [(s, e)])
    return out


def _units(segments: list[Segment]) -> list[list[Segment]]:
    """Group each list with the paragraph that leads into it; every other segment is its own unit."""
    units: list[list[Segment]] = []
    for seg in segments:
        prev = units[-1] if units else None
        same_place = prev is not None and prev[-1].page == seg.page and prev[-1].heading == seg.heading
        if seg.kind == "item" and same_place and prev[-1].kind in ("item", "paragraph"):
            prev.append(seg)
        else:
            units.append([seg])
    return units


def chunk_document(doc: Document, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Chunks of at most chunk_size characters; a chunk never crosses a unit, page or dropped boilerplate."""
    chunks: list[Chunk] = []
    text = doc.text
    for unit in _units(doc.segments):
        first = unit[0]
        pieces = [p for seg in unit for p in _pieces(text, seg, chunk_size)]
        lead = text[first.start : first.end] if len(unit) > 1 and first.kind == "paragraph" else None
        for n, (start, end) in enumerate(_pack(pieces, chunk_size, chunk_overlap)):
            heading = first.heading
            if lead and n and start >= first.end:  # a later chunk of a list: its lead-in as context
                short = lead if len(lead) <= LEAD_IN_CONTEXT else lead[:LEAD_IN_CONTEXT].rsplit(" ", 1)[0] + "…"
                heading = f"{heading}{HEADING_SEPARATOR}{short}" if heading else short
            chunks.append(
                Chunk(doc.doc_id, f"{doc.doc_id}#{len(chunks)}", start, end, text[start:end], heading, first.page)
            )
    return chunks


def _pack(pieces: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """Consecutive pieces grouped up to `size` characters, stepping back over up to `overlap` characters."""
    spans = []
    i = 0
    while i < len(pieces):
        j = i + 1
        while j < len(pieces) and pieces[j][1] - pieces[i][0] <= size:
            j += 1
        spans.append((pieces[i][0], pieces[j - 1][1]))
        if j >= len(pieces):
            break
        nxt = j
        while nxt - 1 > i and pieces[j - 1][1] - pieces[nxt - 1][0] <= overlap:
            nxt -= 1
        i = nxt
    return spans


@dataclass(frozen=True)
class PassageStats:
    passages: int
    median_chars: int
    split_badly: bool

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, name: str) -> str:
        """'zlib.html: 550 passages, median 48 characters — the file may have been split badly'"""
        count = f"{self.passages} passage{'' if self.passages == 1 else 's'}"
        line = f"{name}: {count}, median {self.median_chars} characters"
        return line + (" — the file may have been split badly" if self.split_badly else "")


def passage_stats(chunks: Sequence[Chunk], chunk_size: int, segments: Sequence[Segment] = ()) -> PassageStats:
    """The number of passages, their median length, and whether the document looks split badly.

    The median is taken over the passages of prose: a table row is one passage by design, so a price
    list of 200 rows is not mis-split (a document of nothing but rows gets the median of its rows).
    `segments` are the document's, to know its rows; without them every passage counts as prose.

    Split badly: at least SPLIT_BADLY_MIN_PASSAGES passages of prose, and a median under
    SPLIT_BADLY_SHARE of the chunk size (64 characters at the default 320; figures in the module
    docstring). Both conditions, because a short document (a note, a FAQ of five one-line answers) has
    short passages by nature and says little about its format; among many passages a median that low
    means most were cut short of a sentence, which is what a format problem does.
    """
    rows = sorted((s.start, s.end) for s in segments if s.kind == "row")
    starts = [start for start, _ in rows]

    def is_row(chunk: Chunk) -> bool:
        i = bisect_right(starts, chunk.start) - 1
        return i >= 0 and rows[i][0] <= chunk.start < rows[i][1]

    prose = [c.end - c.start for c in chunks if not is_row(c)] if rows else [c.end - c.start for c in chunks]
    lengths = prose or [c.end - c.start for c in chunks]
    median = round(statistics.median(lengths)) if lengths else 0
    badly = len(prose) >= SPLIT_BADLY_MIN_PASSAGES and median < SPLIT_BADLY_SHARE * chunk_size
    return PassageStats(len(chunks), median, badly)
