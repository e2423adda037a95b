"""HTML: the main content as headings, paragraphs, list items and table rows, with the page furniture left out.

selectolax (lexbor) was chosen over trafilatura: it is one small wheel with no dependencies (trafilatura
pulls in lxml, courlan, htmldate, justext and charset detection), parses a page in about a millisecond,
and leaves the structure to us, so headings become heading paths and table rows keep their column
headers. trafilatura's scoring is tuned for news articles and drops short blocks (a price-table row, a
one-line list item) that a question may be about; here what is removed is explicit and testable:

- never content: script, style, noscript, template, svg, iframe, form, button, nav, aside, footer and the
  page-level header (a header inside article/main is kept: it holds the title);
- elements whose role is navigation/banner/contentinfo/search, or whose id/class names a menu, navbar,
  breadcrumb, sidebar, cookie banner, share bar or skip link;
- when the page marks its main content (main, role=main, a single article) only that is read.
"""

from __future__ import annotations

import re

from rag.formats import Block, Extraction
from rag.formats.markdown import table_row

SKIP = {
    "script", "style", "noscript", "template", "svg", "iframe", "form", "button", "nav", "aside", "footer",
    "head", "select", "option", "input", "textarea", "object", "embed", "canvas", "audio", "video", "map", "dialog",
}  # fmt: skip
INLINE = {
    "a", "abbr", "b", "bdi", "bdo", "br", "cite", "code", "data", "dfn", "em", "i", "kbd", "mark", "q", "s",
    "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var", "wbr", "label", "font", "del", "ins", "img",
}  # fmt: skip
HEADINGS = {f"h{n}": n for n in range(1, 7)}
_FURNITURE_ROLES = {"navigation", "banner", "contentinfo", "search", "menu", "menubar", "complementary"}
_FURNITURE_NAMES = re.compile(
    r"(^|[\s_-])(nav|navbar|navigation|menu|breadcrumbs?|sidebar|cookies?|cookie-banner|consent|share|social|"
    r"skip-link|skip|site-header|site-footer|footer|masthead)($|[\s_-])",
    re.IGNORECASE,
)


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


def extract_html(text: str) -> Extraction:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(text)
    root = tree.css_first("main") or tree.css_first("[role=main]")
    if root is None:
        articles = tree.css("article")
        root = articles[0] if len(articles) == 1 else (tree.body or tree.root)
    blocks: list[Block] = []
    if root is not None:
        _walk(root, "paragraph", blocks)
    return Extraction(kind="html", blocks=blocks)


def _clean(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


def _walk(node, kind: str, blocks: list[Block]) -> None:
    buf: list[str] = []

    def flush():
        text = _clean(buf)
        if text:
            blocks.append(Block(kind, text=text))
        buf.clear()

    for child in node.iter(include_text=True):
        tag = child.tag
        if tag == "-text":
            buf.append(child.text(deep=False))
            continue
        if tag in ("-comment", "!doctype") or tag in SKIP or _is_furniture(child):
            continue
        if tag == "header" and not _inside(child, {"article", "main"}):
            continue
        if tag in INLINE:
            buf.append(" " if tag == "br" else (child.attributes.get("alt") or "" if tag == "img" else _inline_text(child)))
            continue
        flush()
        if tag in HEADINGS:
            title = " ".join(child.text(deep=True).split())
            if title:
                blocks.append(Block("heading", text=title, level=HEADINGS[tag]))
        elif tag == "li":
            _walk(child, "item", blocks)
        elif tag == "table":
            _table(child, blocks)
        elif tag == "pre":
            body = child.text(deep=True).strip()
            if body:
                blocks.append(Block("paragraph", text=body))
        else:
            _walk(child, "paragraph" if kind != "item" or tag not in ("ul", "ol") else kind, blocks)
    flush()


def _inline_text(node) -> str:
    parts = []
    for child in node.iter(include_text=True):
        if child.tag == "-text":
            parts.append(child.text(deep=False))
        elif child.tag == "br":
            parts.append(" ")
        elif child.tag not in SKIP:
            parts.append(_inline_text(child))
    return "".join(parts)


def _table(table, blocks: list[Block]) -> None:
    rows = [r for r in table.css("tr") if _nearest_table(r).mem_id == table.mem_id]
    header: list[str] = []
    for n, row in enumerate(rows):
        cells = [c for c in row.iter() if c.tag in ("th", "td")]
        texts = [" ".join(c.text(deep=True, separator=" ").split()) for c in cells]
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
