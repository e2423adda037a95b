"""HTML: the main content as headings, paragraphs, list items and table rows, with the page furniture left out.

selectolax (lexbor) was chosen over trafilatura: it is one small wheel with no dependencies (trafilatura
pulls in lxml, courlan, htmldate, justext and charset detection), parses a page in about a millisecond,
and leaves the structure to us, so headings become heading paths and table rows keep their column
headers. trafilatura's scoring is tuned for news articles and drops short blocks (a price-table row, a
one-line list item) that a question may be about; here what is removed is explicit and testable:

- never content: script, style, noscript, template, svg, iframe, button, nav, aside, footer and the
  page-level header (a header inside article/main is kept: it holds the title); a form only when it
  holds no heading (a search box, a login form: ASP.NET-era pages wrap the whole body in one form);
- elements whose role is navigation/banner/contentinfo/search, or whose id/class names a menu, navbar,
  breadcrumb, sidebar, table of contents, cookie banner, share bar, skip link or DocBook's
  NAVHEADER/NAVFOOTER;
- when the page marks its main content (main, role=main, a single article) only that is read.

Block or inline is decided the robust way round: `BLOCK` lists the elements that start a block (the
HTML standard's flow and sectioning elements, with the legacy ones such as center, dir, listing); every
other element, known or not, is inline and its text stays in the sentence with the spaces the page has.
The earlier rule was the opposite (a list of inline tags, everything else a boundary) and it failed on
pages as they are found: DocBook's `<TT CLASS="FILENAME">`, `big`, `acronym`, `nobr` and custom elements
were boundaries, so "the master versions of <TT>/etc/passwd</TT> and <TT>/etc/group</TT>." became five
passages. Measured at the default chunk size of 320 on the two HTML 4 pages of issue 25 (in
/usr/share/doc): base-passwd's users-and-groups.html went from 204 passages with a median of 18
characters to 55 with a median of 260, zlib's zlib_how.html from 551 (median 12) to 126 (median 220);
tests/fixtures/base-passwd.html (DocBook style) from 49 (median 17) to 13 (median 174).

- `<br>` is a line break inside its block; two in a row (`text<br><br>text`, how pages without `<p>`
  separate paragraphs) end the block.
- `dl`: each term stays with its description, as one item "term — description" (terms of one
  description joined with ", "), so a question about an option or a glossary word finds both; the
  dash (not a newline) keeps the term and the first sentence in one sentence for the chunker.
- A table is data (rows written with their column headers) unless it is a layout table: one holding a
  heading, another table or a `<pre>`, one of a single cell, or one without header cells and with a cell
  of more than `LAYOUT_CELL_CHARS` characters; those are read as blocks, cell by cell.
- The walk is iterative: a page of 5,000 nested divs (lexbor keeps such nesting) raised RecursionError
  in the recursive walk it replaces; only a definition list inside a definition list recurses.
"""

from __future__ import annotations

import re

from rag.formats import Block, Extraction
from rag.formats.markdown import table_row

SKIP = {
    "script", "style", "noscript", "template", "svg", "iframe", "button", "nav", "aside", "footer",
    "head", "select", "option", "input", "textarea", "object", "embed", "canvas", "audio", "video", "map", "dialog",
    "title", "frame", "frameset", "noembed", "applet", "datalist", "output", "progress", "meter",
}  # fmt: skip
HEADINGS = {f"h{n}": n for n in range(1, 7)}
BLOCK = {
    "address", "article", "blockquote", "body", "caption", "center", "dd", "details", "dir", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "form", "header", "hgroup", "hr", "html", "legend", "li", "listing",
    "main", "menu", "noframes", "ol", "p", "plaintext", "pre", "search", "section", "summary", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "ul", "xmp", "colgroup", *HEADINGS,
}  # fmt: skip
PREFORMATTED = {"pre", "listing", "xmp", "plaintext"}
LAYOUT_CELL_CHARS = 400  # a data table's cell is a value or a sentence; a cell this long holds the page's prose
_FURNITURE_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar", "complementary"}
_FURNITURE_NAMES = re.compile(
    r"(^|[\s_-])(nav|navbar|navigation|navheader|navfooter|menu|breadcrumbs?|sidebar|toc|table-of-contents|"
    r"cookies?|cookie-banner|consent|share|social|skip-link|skip|site-header|site-footer|footer|masthead)($|[\s_-])",
    re.IGNORECASE,
)
DASH = " — "  # between a definition list's term and its description


def _is_furniture(node) -> bool:
    attrs = node.attributes or {}
    if (attrs.get("role") or "").lower() in _FURNITURE_ROLES:
        return True
    if attrs.get("hidden") is not None or (attrs.get("aria-hidden") or "").lower() == "true":
        return True
    names = " ".join(v for k, v in attrs.items() if k in ("id", "class") and v)
    return bool(names and _FURNITURE_NAMES.search(names))


def _inside(node, tags: set[str]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in tags:
            return True
        parent = parent.parent
    return False


def _left_out(node) -> bool:
    """Elements never read: comments, furniture, a page-level header, a form that is not the page."""
    tag = node.tag
    if tag in ("-comment", "!doctype", "_comment") or tag in SKIP or _is_furniture(node):
        return True
    if tag == "header" and not _inside(node, {"article", "main"}):
        return True
    return tag == "form" and node.css_first("h1, h2, h3, h4, h5, h6") is None


def extract_html(text: str) -> Extraction:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(text)
    root = tree.css_first("main") or tree.css_first("[role=main]")
    if root is None:
        articles = tree.css("article")
        root = articles[0] if len(articles) == 1 else (tree.body or tree.root)
    blocks: list[Block] = []
    if root is not None:
        _walk(root, blocks)
    return Extraction(kind="html", blocks=blocks)


class _Text:
    """The running text of the current block: lines (split by `<br>`) of the page's own text."""

    def __init__(self, blocks: list[Block]):
        self.blocks = blocks
        self.lines: list[list[str]] = [[]]
        self.broken = False  # the last thing seen was a <br> (with only whitespace after it)

    def add(self, text: str) -> None:
        self.lines[-1].append(text)
        if text.strip():
            self.broken = False

    def line_break(self, kind: str) -> None:
        if self.broken:  # <br><br>: a paragraph break
            self.flush(kind)
            return
        self.lines.append([])
        self.broken = True

    def flush(self, kind: str) -> None:
        text = "\n".join(filter(None, (" ".join("".join(line).split()) for line in self.lines)))
        if text:
            self.blocks.append(Block(kind, text=text))
        self.lines = [[]]
        self.broken = False


def _walk(root, blocks: list[Block], kind: str = "paragraph", itself: bool = False) -> None:
    """The blocks of root's content (of root itself too when `itself`). Block elements end the running
    text; any other element is inline."""
    buf = _Text(blocks)
    kinds = [kind]  # the kind of text at each open block: "item" inside a list item, else "paragraph"
    leave = object()
    stack: list = [root] if itself else list(reversed(list(root.iter(include_text=True))))
    while stack:
        node = stack.pop()
        if node is leave:
            buf.flush(kinds.pop())
            continue
        tag = node.tag
        if tag == "-text":
            buf.add(node.text(deep=False))
            continue
        if _left_out(node):
            continue
        if tag == "br":
            buf.line_break(kinds[-1])
        elif tag == "img":
            buf.add(node.attributes.get("alt") or "")
        elif tag not in BLOCK:  # inline, known or unknown: its content continues the sentence
            stack.extend(reversed(list(node.iter(include_text=True))))
        else:
            buf.flush(kinds[-1])
            if tag in HEADINGS:
                title = _flat_text(node)
                if title:
                    blocks.append(Block("heading", text=title, level=HEADINGS[tag]))
            elif tag in PREFORMATTED:
                body = node.text(deep=True).strip()
                if body:
                    blocks.append(Block(kinds[-1], text=body))
            elif tag == "dl":
                _definitions(node, blocks)
            elif tag == "table" and not _is_layout_table(node):
                _table(node, blocks)
            else:  # a container: its text is its own block(s)
                kinds.append("item" if tag == "li" else kinds[-1])
                stack.append(leave)
                stack.extend(reversed(list(node.iter(include_text=True))))
    buf.flush(kinds[-1])


def _flat_text(node) -> str:
    """All the text under node on one line, with the page's spaces; blocks and `<br>` become spaces."""
    parts: list[str] = []
    stack = list(reversed(list(node.iter(include_text=True))))
    while stack:
        child = stack.pop()
        if isinstance(child, str):
            parts.append(child)
            continue
        tag = child.tag
        if tag == "-text":
            parts.append(child.text(deep=False))
        elif tag == "br":
            parts.append(" ")
        elif tag == "img":
            parts.append(child.attributes.get("alt") or "")
        elif not _left_out(child):
            if tag in BLOCK:
                parts.append(" ")
                stack.append(" ")
            stack.extend(reversed(list(child.iter(include_text=True))))
    return " ".join("".join(parts).split())


def _definitions(dl, blocks: list[Block]) -> None:
    """A definition list: one item per entry, its terms joined to its description ("term — description")."""
    terms: list[str] = []
    described: list[str] = []
    reading_descriptions = False

    def finish() -> None:
        nonlocal reading_descriptions
        head = ", ".join(terms)
        body = "\n".join(described)
        text = f"{head}{DASH}{body}" if head and body else head or body
        if text:
            blocks.append(Block("item", text=text))
        terms.clear()
        described.clear()
        reading_descriptions = False

    def describe(node) -> None:
        nonlocal reading_descriptions
        reading_descriptions = True
        inner: list[Block] = []
        _walk(node, inner, "item")
        for b in inner:
            if b.kind in ("paragraph", "item"):
                described.append(b.text)
            else:  # a table row or a heading inside a description: the entry ends before it
                finish()
                blocks.append(b)

    stack = list(reversed(list(dl.iter(include_text=True))))
    while stack:
        node = stack.pop()
        tag = node.tag
        if tag == "-text":
            text = " ".join(node.text(deep=False).split())
            if text:
                reading_descriptions = True
                described.append(text)
            continue
        if _left_out(node):
            continue
        if tag == "dt":
            if reading_descriptions:
                finish()
            term = _flat_text(node)
            if term:
                terms.append(term)
        elif tag == "dd":
            describe(node)
        elif tag == "div" or (tag not in BLOCK and tag != "img" and tag != "br"):  # <dl><div><dt>…, stray wrappers
            stack.extend(reversed(list(node.iter(include_text=True))))
        else:  # a block where a dt or dd belongs: read as part of the description
            wrapper: list[Block] = []
            _walk(node, wrapper, "item", itself=True)
            for b in wrapper:
                if b.kind in ("paragraph", "item"):
                    reading_descriptions = True
                    described.append(b.text)
                else:
                    finish()
                    blocks.append(b)
    finish()


def _is_layout_table(table) -> bool:
    """A table used to lay out the page (HTML 4 era): it holds headings, tables or preformatted text (DocBook
    shades a screen listing with a one-cell table), has a single cell, or has long prose cells and no header."""
    if any(n.mem_id != table.mem_id for n in table.css("table, h1, h2, h3, h4, h5, h6, pre")):
        return True
    cells = [c for c in table.css("td, th") if _nearest_table(c).mem_id == table.mem_id]
    if len(cells) == 1:
        return True
    if any(c.tag == "th" for c in cells):
        return False
    return any(len(_flat_text(c)) > LAYOUT_CELL_CHARS for c in cells)


def _table(table, blocks: list[Block]) -> None:
    for caption in table.css("caption"):
        if _nearest_table(caption).mem_id == table.mem_id and _flat_text(caption):
            blocks.append(Block("paragraph", text=_flat_text(caption)))
    rows = [r for r in table.css("tr") if _nearest_table(r).mem_id == table.mem_id]
    header: list[str] = []
    for n, row in enumerate(rows):
        cells = [c for c in row.iter() if c.tag in ("th", "td")]
        texts = [_flat_text(c) for c in cells]
        is_header = (cells and all(c.tag == "th" for c in cells)) or (n == 0 and _inside(row, {"thead"}))
        if is_header and not header:
            header = texts
            continue
        if any(texts):
            blocks.append(Block("row", text=table_row(header, texts)))


def _nearest_table(node):
    parent = node.parent
    while parent is not None and parent.tag != "table":
        parent = parent.parent
    return parent
