"""Markdown through markdown-it-py's CommonMark parser (with GFM tables), whose tokens carry source lines.

markdown-it-py was chosen because every block token has a `map` of source lines, so paragraphs,
headings and list items are cited as exact spans of the original .md file; it is already installed
(Gradio depends on it), pure Python, and follows CommonMark, so a wrapped paragraph is one paragraph
and `-`/`1.` lists, fences and setext headings are read the way a Markdown viewer shows them.
(python-markdown renders to HTML without source positions; mistune's AST has no line numbers.)

Table rows are written as "Header: value; Header: value" (synthesized text), so a Markdown file with a
table is cited through its stored extracted text (`layout` notices the synthesized blocks).
Raw HTML blocks are left out: tags never reach the index.
"""

from __future__ import annotations

from rag.formats import Block, Extraction


def _line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    starts.append(len(text) + 1)  # sentinel: one past the last line
    return starts


def _plain(inline) -> str:
    """The visible text of an inline token (emphasis, links and code marks removed)."""
    out = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            out.append(child.content if child.type != "html_inline" else "")
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif child.type == "image":
            out.append(child.content)
    return " ".join("".join(out).split())


def extract_markdown(text: str) -> Extraction:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    starts = _line_starts(text)

    def line_span(first: int, last: int) -> tuple[int, int]:
        """Offsets of source lines [first, last), trimmed."""
        a = starts[min(first, len(starts) - 1)]
        b = min(starts[min(last, len(starts) - 1)] - 1, len(text))
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        return a, b

    def content_span(first: int, last: int, content: str) -> tuple[int, int]:
        """From where the content's first line starts in the source (after `#`, `-`, `>` marks) to the end."""
        a, b = line_span(first, last)
        head = content.split("\n", 1)[0].strip()
        if head:
            found = text.find(head[: min(len(head), 40)], a, b)
            if found >= 0:
                a = found
        return a, b

    blocks: list[Block] = []
    list_depth = 0
    item_fresh = False  # the next paragraph is the first of a list item
    row: list[str] | None = None
    header: list[str] | None = None
    in_head = False
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif t.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif t.type == "list_item_open":
            item_fresh = True
        elif t.type == "heading_open" and t.map:
            inline = tokens[i + 1]
            a, b = content_span(t.map[0], t.map[1] if t.markup.startswith("#") else t.map[0] + 1, inline.content)
            closing = b
            while closing > a and text[closing - 1] == "#":
                closing -= 1
            if t.markup.startswith("#") and closing < b and (closing == a or text[closing - 1] in " \t"):
                b = closing  # an ATX heading's closing hashes are not content
                while b > a and text[b - 1].isspace():
                    b -= 1
            blocks.append(Block("heading", start=a, end=b, level=int(t.tag[1])))
        elif t.type == "paragraph_open" and t.map:
            inline = tokens[i + 1]
            a, b = content_span(t.map[0], t.map[1], inline.content)
            kind = "item" if (list_depth and item_fresh) else "paragraph"
            item_fresh = False
            blocks.append(Block(kind, start=a, end=b))
        elif t.type in ("fence", "code_block") and t.map:
            first, last = t.map
            if t.type == "fence":
                first += 1
                closing = line_span(last - 1, last)
                if text[closing[0] : closing[1]].startswith(t.markup):
                    last -= 1
            a, b = line_span(first, last)
            if b > a:
                blocks.append(Block("paragraph", start=a, end=b))
        elif t.type == "thead_open":
            in_head, header = True, []
        elif t.type == "thead_close":
            in_head = False
        elif t.type == "tr_open":
            row = []
        elif t.type in ("th_open", "td_open"):
            row.append(_plain(tokens[i + 1]))
        elif t.type == "tr_close":
            if in_head:
                header = row
            elif row and any(row):
                blocks.append(Block("row", text=table_row(header or [], row)))
            row = None
        i += 1
    return Extraction(kind="markdown", blocks=blocks, source=text)


def table_row(header: list[str], cells: list[str]) -> str:
    """'Model: Fern XL; Width: 90 cm; Price: $499' — each cell with its column header (empty cells left out)."""
    parts = []
    for n, cell in enumerate(cells):
        cell = " ".join(cell.split())
        if not cell:
            continue
        name = " ".join(header[n].split()) if n < len(header) and header[n].strip() else ""
        parts.append(f"{name}: {cell}" if name and name != cell else cell)
    return "; ".join(parts)
