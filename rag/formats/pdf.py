"""PDF text layer through pypdfium2, page by page; every block carries its page number.

pypdfium2 was chosen because it binds PDFium (Chrome's PDF engine) as a self-contained wheel with no
system libraries, is Apache/BSD licensed (PyMuPDF is AGPL), reads the text layer several times faster
than pure-Python pdfminer.six/pypdf, and exposes each character's font size, which is how headings
are found here (a line set at least 1.2 times larger than the body text). The text is written line by
line with "\\r\\n"; lines are joined into paragraphs (a hyphen at a line end is rejoined), a paragraph
ends where a line closes a sentence well short of the page's longest line or a bullet starts.
Page numbers ("3", "Page 3 of 9") and running headers/footers repeated on most pages are dropped.

Encrypted PDFs (a password is needed) and PDFs without a text layer (scans: no characters on any
page) are refused with that reason; OCR them first (e.g. ocrmypdf) and add the result.
"""

from __future__ import annotations

import re
from collections import Counter
from statistics import median

from rag.formats import Block, Extraction, UnreadableDocument
from rag.text import counted

HEADING_RATIO = 1.2
SHORT_LINE = 0.85
_PAGE_NUMBER = re.compile(r"(page\s+)?\d{1,4}(\s*(of|/)\s*\d{1,4})?|[-\u2013]\s*\d{1,4}\s*[-\u2013]", re.IGNORECASE)
_BULLET = re.compile(r"(?:[\u2022\u25aa\u25cf\u2013*-]|\d{1,3}[.)])\s+(?=\S)")
_SENTENCE_END = re.compile(r"[.!?:;][\"'\u201d\u2019)\]]*$")


def extract_pdf(data: bytes) -> Extraction:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise UnreadableDocument(
                "encrypted PDF (a password is needed to read it)", hint="save an unprotected copy and add that"
            ) from exc
        raise UnreadableDocument(f"damaged PDF ({exc})") from exc
    try:
        pages = [_page_lines(pdf[i]) for i in range(len(pdf))]
    finally:
        pdf.close()
    if not any(text.strip() for lines in pages for text, _ in lines):
        raise UnreadableDocument(
            f"no text layer in {counted(len(pages), 'page')}: an image-only (scanned) PDF",
            hint="run OCR on it (e.g. ocrmypdf) and add the result",
        )
    sizes = Counter()
    for lines in pages:
        for text, size in lines:
            if size:
                sizes[round(size, 1)] += len(text)
    body = sizes.most_common(1)[0][0] if sizes else 0.0
    repeated = _running_lines(pages)
    blocks: list[Block] = []
    for number, lines in enumerate(pages, 1):
        blocks.extend(_page_blocks(lines, number, body, repeated))
    return Extraction(kind="pdf", blocks=blocks, pages=len(pages))


def _page_lines(page) -> list[tuple[str, float]]:
    """(line text, median font size or 0 when unknown) for each line of a page."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        n = textpage.count_chars()
        text = textpage.get_text_range() if n else ""
        sized = len(text) == n
        out, pos = [], 0
        for line in text.replace("\r\n", "\n").split("\n") if "\r\n" in text else text.split("\n"):
            size = 0.0
            if sized and line.strip():
                sizes = [pdfium_c.FPDFText_GetFontSize(textpage.raw, i) for i in range(pos, pos + len(line))]
                sizes = [s for s, ch in zip(sizes, line) if not ch.isspace() and s > 0]
                size = median(sizes) if sizes else 0.0
            out.append((line.strip(), size))
            pos += len(line) + (2 if "\r\n" in text else 1)
        return out
    finally:
        textpage.close()
        page.close()


def _mask(line: str) -> str:
    return re.sub(r"\d+", "#", line.lower())


def _running_lines(pages) -> set[str]:
    """Masked first/last lines that recur on most pages (running headers and footers)."""
    if len(pages) < 3:
        return set()
    seen: Counter = Counter()
    for lines in pages:
        texts = [t for t, _ in lines if t]
        seen.update({_mask(t) for t in texts[:2] + texts[-2:]})
    return {t for t, n in seen.items() if n >= 0.6 * len(pages)}


def _page_blocks(lines, page: int, body: float, repeated: set[str]) -> list[Block]:
    lines = [(t, s) for t, s in lines if not (t and (_PAGE_NUMBER.fullmatch(t) or _mask(t) in repeated))]
    width = max((len(t) for t, _ in lines), default=0)
    blocks: list[Block] = []
    cur: list[str] = []
    cur_kind = "paragraph"

    def flush():
        nonlocal cur
        if cur:
            blocks.append(Block(cur_kind, text=_join(cur), page=page))
        cur = []

    for text, size in lines:
        if not text:
            flush()
            continue
        if body and size >= HEADING_RATIO * body and len(text) <= 120:
            if blocks and blocks[-1].kind == "heading" and not cur and blocks[-1].level == _level(size, body):
                blocks[-1].text += " " + text  # a heading wrapped over two lines
            else:
                flush()
                blocks.append(Block("heading", text=text, level=_level(size, body), page=page))
            continue
        bullet = _BULLET.match(text)
        if bullet or not cur or (_SENTENCE_END.search(cur[-1]) and len(cur[-1]) < SHORT_LINE * width):
            flush()
            cur_kind = "item" if bullet else "paragraph"
            text = text[bullet.end() :] if bullet else text
        cur.append(text)
    flush()
    return blocks


def _level(size: float, body: float) -> int:
    ratio = size / body
    return 1 if ratio >= 1.6 else 2 if ratio >= 1.35 else 3


def _join(lines: list[str]) -> str:
    out = lines[0]
    for line in lines[1:]:
        if out.endswith("-") and line[:1].islower() and len(out) > 1 and out[-2].isalpha():
            out = out[:-1] + line  # a word hyphenated at the line end
        else:
            out += " " + line
    return out
