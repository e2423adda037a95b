"""Real documents of every format, written from scratch for tests and fixtures (no binary files committed).

`pdf()` writes a minimal PDF by hand (Helvetica, one content stream per page, a correct xref table),
so the text layer, font sizes and page count are known exactly; `docx()` uses python-docx.
"""

from __future__ import annotations

import textwrap
from io import BytesIO


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf(pages: list[list[tuple[str, str]]], wrap: int = 80, encrypt: bool = False) -> bytes:
    """One page per list of (style, text): style "h1"/"h2" (large bold), "p" (wrapped paragraph), "li" (bullet).

    An empty page list entry makes a page with no text (like a scanned page).
    """
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages_obj = add(b"")
    regular = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    bold = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    kids = []
    for page in pages:
        ops, y = [], 760
        for style, text in page:
            if style in ("h1", "h2"):
                size = 20 if style == "h1" else 15
                lines = [text]
                font = "F2"
            else:
                size, font = 11, "F1"
                prefix = "- " if style == "li" else ""
                lines = textwrap.wrap(prefix + text, wrap)
            for line in lines:
                ops.append(f"BT /{font} {size} Tf 72 {y} Td ({_escape(line)}) Tj ET")
                y -= int(size * 1.4)
            y -= 10
        stream = "\n".join(ops).encode("cp1252")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> >>" % (pages_obj, content, regular, bold)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    encrypt_ref = b""
    if encrypt:  # RC4 40-bit standard security handler with a user password we do not give
        enc = add(b"<< /Filter /Standard /V 1 /R 2 /O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> /P -44 >>")
        encrypt_ref = b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (enc, b"ab" * 16, b"ab" * 16)
    out = BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R%s >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, catalog, encrypt_ref, xref)
    )
    return out.getvalue()


def docx(blocks: list[tuple[str, object]]) -> bytes:
    """Blocks: ("h1"|"h2", text), ("p", text), ("li", text), ("table", [[header...], [row...], ...])."""
    import docx as python_docx

    document = python_docx.Document()
    for style, value in blocks:
        if style in ("h1", "h2"):
            document.add_heading(value, level=int(style[1]))
        elif style == "p":
            document.add_paragraph(value)
        elif style == "li":
            document.add_paragraph(value, style="List Bullet")
        elif style == "table":
            rows = value
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
    section = document.sections[0]
    section.footer.paragraphs[0].text = "Confidential footer text"
    buf = BytesIO()
    document.save(buf)
    return buf.getvalue()
