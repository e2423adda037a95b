"""Document formats: the type is read from the bytes, each format is turned into ordered blocks.

A block is a heading, a paragraph, a list item or a table row. Blocks either point into the file's
own decoded text (plain text, Markdown without tables: citations then resolve in the original file)
or carry text of their own (PDF, HTML, DOCX, and table rows written with their column headers).
`layout()` turns the blocks into the one text that citation offsets index and the segments worth
chunking, so `text[start:end] == chunk.text` holds in every format.

The type comes from the content, the extension only breaks ties between text formats: `%PDF-` is
PDF, a ZIP holding `word/document.xml` is DOCX, text whose first tags are HTML is HTML whatever the
name (`page.txt` holding a web page is parsed as HTML, so no tag reaches the index), other text is
Markdown when named .md/.markdown and plain text otherwise. Anything else is an `UnreadableDocument`
with the reason; the caller reports it by name and carries on with the other files.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from typing import Literal

from rag.errors import RagError

BlockKind = Literal["heading", "paragraph", "item", "row"]
TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".xhtml", ""}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
KINDS = ("text", "markdown", "html", "pdf", "docx")


class UnreadableDocument(RagError):
    """A file that cannot be indexed (unsupported type, encrypted, no text layer, bad encoding)."""

    status = 415


@dataclass
class Block:
    """One unit of a document. `text` None: the block is `source[start:end]` of the decoded file."""

    kind: BlockKind
    text: str | None = None
    start: int = 0
    end: int = 0
    level: int = 0  # heading level, 1 = top
    page: int | None = None  # 1-based, paged formats only


@dataclass
class Extraction:
    kind: str  # one of KINDS
    blocks: list[Block]
    source: str | None = None  # the decoded file, for formats whose blocks point into it
    pages: int | None = None


@dataclass(frozen=True)
class Segment:
    """A kept block in the cited text: text[start:end]. `heading` is the path of headings above it."""

    start: int
    end: int
    kind: BlockKind = "paragraph"
    heading: str | None = None
    page: int | None = None


@dataclass
class Layout:
    text: str  # what citation offsets index
    derived: bool  # True: text was written from the blocks and is stored beside the index
    segments: list[Segment] = field(default_factory=list)


HEADING_SEPARATOR = " > "


# --- type detection ------------------------------------------------------------------------------------
_HTML_START = re.compile(
    rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|meta|title)\b", re.IGNORECASE | re.DOTALL
)
_HTML_TAGS = re.compile(r"</?(html|head|body|div|p|span|table|ul|ol|li|h[1-6]|nav|script|style|a\s)\b", re.IGNORECASE)


def _looks_like_html(text: str) -> bool:
    head = text[:4096]
    if _HTML_START.match(head.encode("utf-8", "replace")):
        return True
    stripped = head.lstrip()
    return stripped.startswith("<") and len(_HTML_TAGS.findall(head)) >= 3


def detect(data: bytes, name: str) -> str:
    """The document type from its content (one of KINDS), or UnreadableDocument saying why not."""
    from rag.formats.text import decode_text

    suffix = _suffix(name)
    if data.startswith(b"%PDF") or b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(BytesIO(data)).namelist())
        except zipfile.BadZipFile as exc:
            raise UnreadableDocument(f"damaged ZIP container ({exc})") from exc
        if "word/document.xml" in names:
            return "docx"
        kind = "an OpenDocument file" if "mimetype" in names else "a ZIP archive"
        raise UnreadableDocument(f"unsupported type: {kind}", hint="save it as .docx, .pdf, .html, .md or .txt")
    magic = _binary_magic(data)
    if magic:
        raise UnreadableDocument(f"unsupported type: {magic}", hint="only text, Markdown, HTML, PDF and DOCX are read")
    text = decode_text(data)  # raises UnreadableDocument for binary or undecodable bytes
    if _looks_like_html(text):
        return "html"
    if suffix not in TEXT_SUFFIXES:
        raise UnreadableDocument(
            f"unsupported type: {suffix} text", hint="rename it .txt if it is prose meant to be answered from"
        )
    return "markdown" if suffix in MARKDOWN_SUFFIXES else "text"


_MAGIC = [
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\xd0\xcf\x11\xe0", "a legacy Office file (.doc/.xls)"),
    (b"{\\rtf", "an RTF file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF)"),
]


def _binary_magic(data: bytes) -> str | None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    return None


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    slash = max(name.rfind("/"), name.rfind("\\"))
    return name[dot:].lower() if dot > slash + 1 else ""


def extract(data: bytes, name: str) -> Extraction:
    """Detect the type and extract the blocks. Raises UnreadableDocument with the reason."""
    kind = detect(data, name)
    if kind == "pdf":
        from rag.formats.pdf import extract_pdf

        return extract_pdf(data)
    if kind == "docx":
        from rag.formats.docx import extract_docx

        return extract_docx(data)
    from rag.formats.text import decode_text

    text = decode_text(data)
    if kind == "html":
        from rag.formats.html import extract_html

        return extract_html(text)
    if kind == "markdown":
        from rag.formats.markdown import extract_markdown

        return extract_markdown(text)
    from rag.formats.text import extract_text

    return extract_text(text)


# --- layout ----------------------------------------------------------------------------------------------
def layout(extraction: Extraction) -> Layout:
    """The cited text and the segments to chunk, with heading paths.

    When every block points into the decoded file, the file's text is the cited text. Otherwise a text is
    written from the blocks: blocks of one kind in a run (list items, table rows) one per line, other blocks
    separated by a blank line, headings included so a reader of the stored text sees the structure.
    """
    blocks = extraction.blocks
    derived = extraction.source is None or any(b.text is not None for b in blocks)
    stack: list[tuple[int, str]] = []
    segments: list[Segment] = []
    parts: list[str] = []
    pos = 0
    prev: Block | None = None
    for b in blocks:
        body = b.text if b.text is not None else extraction.source[b.start : b.end]
        body = body.strip() if b.text is not None else body
        if not body.strip():
            continue
        if derived:
            if prev is not None:
                sep = "\n" if (b.kind == prev.kind and b.kind in ("item", "row") and b.page == prev.page) else "\n\n"
                parts.append(sep)
                pos += len(sep)
            prefix = {"item": "- ", "heading": "#" * max(1, min(6, b.level)) + " "}.get(b.kind, "")
            parts.append(prefix + body)
            start = pos + len(prefix)
            pos = start + len(body)
            end = pos
        else:
            start, end = b.start, b.end
        prev = b
        if b.kind == "heading":
            title = " ".join(body.lstrip("#").split())
            while stack and stack[-1][0] >= b.level:
                stack.pop()
            stack.append((b.level, title))
            continue
        path = HEADING_SEPARATOR.join(t for _, t in stack) or None
        segments.append(Segment(start, end, b.kind, path, b.page))
    text = "".join(parts) + ("\n" if parts else "") if derived else extraction.source
    return Layout(text=text, derived=derived, segments=segments)
