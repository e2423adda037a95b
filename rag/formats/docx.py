"""DOCX through python-docx: body paragraphs and tables in document order; headers and footers left out.

python-docx is the maintained reader of the OOXML word-processing format with paragraph styles (so
"Heading 2" becomes heading level 2 and "List Bullet"/numbered paragraphs become list items) and
table cells; docx2txt flattens everything into one string without styles or table structure, and
converting through LibreOffice is a 300 MB dependency. The body is walked directly so paragraphs and
tables keep their order (python-docx lists them separately). The first row of a table is its header.
"""

from __future__ import annotations

import re
from io import BytesIO

from rag.formats import Block, Extraction, UnreadableDocument
from rag.formats.markdown import table_row

_HEADING = re.compile(r"heading\s*(\d)", re.IGNORECASE)


def extract_docx(data: bytes) -> Extraction:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(BytesIO(data))
    except Exception as exc:  # python-docx raises many kinds for damaged packages
        raise UnreadableDocument(f"damaged or unsupported DOCX ({type(exc).__name__}: {exc})") from exc
    blocks: list[Block] = []
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            block = _paragraph(Paragraph(child, document))
            if block:
                blocks.append(block)
        elif tag == "tbl":
            _table(Table(child, document), blocks)
    return Extraction(kind="docx", blocks=blocks)


def _paragraph(p) -> Block | None:
    text = " ".join(p.text.split())
    if not text:
        return None
    style = (p.style.name if p.style is not None else "") or ""
    m = _HEADING.match(style)
    if m:
        return Block("heading", text=text, level=int(m.group(1)))
    if style.lower() == "title":
        return Block("heading", text=text, level=1)
    # python-docx has no public numbering property: the paragraph's XML says whether it is numbered
    numbered = p._p.pPr is not None and p._p.pPr.numPr is not None  # noqa: SLF001
    if numbered or style.lower().startswith("list"):
        return Block("item", text=text)
    return Block("paragraph", text=text)


def _table(table, blocks: list[Block]) -> None:
    header: list[str] = []
    for n, row in enumerate(table.rows):
        cells, seen = [], set()
        for cell in row.cells:
            # a merged cell is returned once per grid column; its XML element (no public handle) says which
            if id(cell._tc) in seen:  # noqa: SLF001
                continue
            seen.add(id(cell._tc))  # noqa: SLF001
            cells.append(" ".join(cell.text.split()))
        if n == 0:
            header = cells
            continue
        if any(cells):
            blocks.append(Block("row", text=table_row(header, cells)))
