"""Plain text: the decoding rule every citation offset obeys, and paragraphs as blank-line blocks.

Offsets rule (one function, `decode_text`, used by ingestion, evaluation and every source reader):
offsets index the file's bytes decoded as UTF-8 (or UTF-16/32 when a BOM or the NUL pattern says so),
with the byte-order mark removed and line endings left exactly as they are (a CRLF counts as two
characters). That is `open(path, encoding="utf-8-sig", newline="").read()` for UTF-8 files; plain
`open(path).read()` translates CRLF and shifts every later offset by one per line.

Paragraphs: a blank line ends a paragraph; inside a block, hard-wrapped lines join into one paragraph
(the old reader made every line a paragraph and cut wrapped sentences in two). A line break still
ends a paragraph when the block is not hard-wrapped (a line over 100 characters, or no line that
breaks mid-sentence: one paragraph per line), when the line closes a sentence well short of the wrap width, before a list item (`-`, `*`,
`•`, `1.`, `1)`) and before a `Label: value` line. `#` lines and `===`/`---` underlines are headings.
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.formats import Block, Extraction, UnreadableDocument

WRAP_MAX = 100  # lines longer than this are not hard-wrapped prose
SHORT_LINE = 0.75  # a sentence-final line shorter than this share of the wrap width ends its paragraph

_ITEM = re.compile(r"[ \t]*(?:[-*+\u2022\u25aa\u2013]|\d{1,3}[.)])[ \t]+(?=\S)")
_ATX = re.compile(r"[ \t]{0,3}(#{1,6})[ \t]+(?=\S)")
_SETEXT = re.compile(r"[ \t]{0,3}(=+|-+)[ \t]*\r?$")
_LABEL = re.compile(r"[ \t]*[A-Z][\w ()/-]{0,30}:[ \t]+\S")
_SENTENCE_END = re.compile(r"[.!?:;][\"'\u201d\u2019)\]]*\s*$")


def decode_text(data: bytes) -> str:
    """The text citation offsets index (see the module docstring), or UnreadableDocument."""
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xef\xbb\xbf", "utf-8"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xfe\xff", "utf-16-be"),
    ):
        if data.startswith(bom):
            return _decode(data[len(bom) :], codec)
    if b"\x00" in data:
        codec = _utf16_without_bom(data)
        if codec is None:
            raise UnreadableDocument("looks binary (contains NUL bytes) and is no text encoding we know")
        return _decode(data, codec)
    return _decode(data, "utf-8")


def _decode(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(
            f"not valid {codec.upper()} (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save it as UTF-8",
        ) from exc


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text of mostly ASCII characters has a NUL in every other byte."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.6 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) > 0.6 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def read_source_text(path: Path) -> str:
    """The decoded text of a file on disk, by the offsets rule."""
    return decode_text(Path(path).read_bytes())


def _lines(text: str, start: int, end: int):
    """(start, end) of each line in text[start:end], end excluding the line break."""
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        stop = end if nl < 0 else nl
        yield pos, stop
        pos = stop + 1


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def extract_text(text: str) -> Extraction:
    blocks: list[Block] = []
    for m in re.finditer(r"(?:[^\n]*\S[^\n]*(?:\n|$))+", text):  # runs of non-blank lines
        blocks.extend(_block_paragraphs(text, m.start(), m.end()))
    return Extraction(kind="text", blocks=blocks, source=text)


def _block_paragraphs(text: str, start: int, end: int) -> list[Block]:
    lines = [(a, b) for a, b in (_trim(text, *span) for span in _lines(text, start, end)) if b > a]
    if not lines:
        return []
    width = max(b - a for a, b in lines)
    # Hard-wrapped prose: short lines, and at least one of them breaks mid-sentence. A block whose every
    # line ends a sentence ("Title.\nSubscribe now!") is one paragraph per line.
    wrapped = width <= WRAP_MAX and any(
        not _SENTENCE_END.search(text[a:b]) and not _ITEM.match(text[a:b]) for a, b in lines[:-1]
    )
    out: list[Block] = []
    cur: list[int] | None = None  # [start, end, kind]
    cur_kind = "paragraph"
    prev_len = 0  # the length of the line before, read only once a block is open

    def flush():
        nonlocal cur
        if cur is not None:
            out.append(Block(cur_kind, start=cur[0], end=cur[1]))
        cur = None

    for i, (a, b) in enumerate(lines):
        line = text[a:b]
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        atx = _ATX.match(line)
        if atx:
            flush()
            out.append(Block("heading", start=a + atx.end(), end=b, level=len(atx.group(1))))
            continue
        if nxt is not None and _SETEXT.fullmatch(text[nxt[0] : nxt[1]]) and not _ITEM.match(line):
            flush()
            level = 1 if text[nxt[0]] == "=" else 2
            out.append(Block("heading", start=a, end=b, level=level))
            lines[i + 1] = (nxt[0], nxt[0])  # the underline itself is not content
            continue
        if b == a or _SETEXT.fullmatch(line):
            continue
        item = _ITEM.match(line)
        starts_new = (
            cur is None
            or item is not None
            or not wrapped
            or _LABEL.match(line) is not None
            or (_SENTENCE_END.search(text[max(cur[0], cur[1] - 4) : cur[1]]) and prev_len < SHORT_LINE * width)
        )
        if starts_new:
            flush()
            cur_kind = "item" if item else "paragraph"
            cur = [a + (item.end() if item else 0), b]
        else:
            cur[1] = b
        prev_len = b - a
    flush()
    return out
