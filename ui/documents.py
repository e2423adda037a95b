"""What the chat shows about the loaded documents: the status line's names, example questions built from
the documents' own headings, the document list, and uploads/removals. No Gradio here (tested directly).

Why examples from headings: a reader's documents are not the bundled article, and questions invented
from sentences read badly. A heading is the author's own name for a section, so "What does the section
“Meals” say?" is a question the documents answer, and retrieval finds it (chunks are searched with their
heading path). The hand-written examples are shown only while the bundled seed article is loaded, and
for a pipeline without an index (the tests' fakes), which gets the examples it was given.

Uploads and removals call the same `rag.library.Library` the HTTP API uses (not HTTP), so the checks,
the names and the statuses are the same in both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.formats import HEADING_SEPARATOR
from rag.text import counted
from ui import render

SEED_SHA256 = "45f26feca34a4bff5bad4c2ac41e6af9bcb5b11db1d8efd369b2529788b5004c"  # seeds/000_d74c9cd70636ffa8.txt
MAX_EXAMPLES = 4
MAX_NAMES = 5  # names in the status line; more are counted
_GENERIC = {"contents", "table of contents", "index", "references", "bibliography", "notes", "footnotes", "appendix",
            "untitled", "document", "page", "sources", "links", "see also"}  # fmt: skip
_HAS_WORD = re.compile(r"[^\W\d_]{3,}")


def indexed_documents(pipeline: Any) -> dict[str, dict] | None:
    """The served index's documents (name → manifest entry), or None for a pipeline without an index."""
    index = getattr(pipeline, "index", None)
    documents = getattr(index, "documents", None)
    return dict(documents) if isinstance(documents, dict) else None


def documents_phrase(count: int, names: Sequence[str] | None) -> str:
    """ "3 documents: a.pdf, b.md, c.html" (names when known, the first few of many)."""
    head = counted(count, "document")
    if not names:
        return head
    shown = ", ".join(names[:MAX_NAMES])
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    return f"{head}: {shown}{more}"


def _usable(heading: str) -> bool:
    h = heading.strip()
    return 3 <= len(h) <= 80 and bool(_HAS_WORD.search(h)) and h.lower().strip(" :") not in _GENERIC


def heading_questions(chunks: Iterable[Any], limit: int = MAX_EXAMPLES) -> list[str]:
    """Questions from the documents' headings: each document's title first, then its sections, taking
    documents in turn so one long document does not fill the list."""
    per_doc: dict[str, list[str]] = {}
    seen: set[str] = set()
    for chunk in chunks:
        path = getattr(chunk, "heading", None)
        if not path:
            continue
        parts = [p.strip() for p in path.split(HEADING_SEPARATOR) if p.strip()]
        questions = per_doc.setdefault(chunk.doc_id, [])
        for depth, part in enumerate(parts):
            key = part.lower()
            if key in seen or not _usable(part):
                continue
            seen.add(key)
            if depth == 0 and not questions:
                questions.append(f"What does “{part}” cover?")
            else:
                questions.append(f"What does the section “{part}” say?")
    out: list[str] = []
    queues = [q for q in per_doc.values() if q]
    while queues and len(out) < limit:
        for q in list(queues):
            out.append(q.pop(0))
            if not q:
                queues.remove(q)
            if len(out) >= limit:
                break
    return out


def suggested_questions(
    pipeline: Any, fallback: Sequence[str], seed_examples: Sequence[str] = (), limit: int = MAX_EXAMPLES
) -> list[str]:
    """Example questions for what is loaded (see the module docstring); may be empty.

    `fallback`: for a pipeline without an index; `seed_examples`: while the bundled article is loaded."""
    if pipeline is None:
        return []
    documents = indexed_documents(pipeline)
    if documents is None:
        return list(fallback)[:limit]
    out: list[str] = []
    if any(meta.get("sha256") == SEED_SHA256 for meta in documents.values()):
        out.extend(seed_examples)
    out.extend(heading_questions(getattr(pipeline.index, "chunks", []), limit))
    return out[:limit]


# --- the document list --------------------------------------------------------------------------------

STATUS_LABELS = {
    "pending": "waiting",
    "indexing": "indexing…",
    "ready": "ready",
    "failed": "failed",
    "deleting": "removing…",
}


def documents_html(entries: Sequence[dict]) -> str:
    """The list of documents with their type, size in passages and status (and the problem of a failure)."""
    if not entries:
        return '<div class="rag-muted">No documents yet: add some above.</div>'
    rows = []
    for e in entries:
        bits = [e.get("type") or "?"]
        if e.get("pages"):
            bits.append(counted(e["pages"], "page"))
        if e.get("chunks") is not None:
            bits.append(counted(e["chunks"], "passage"))
        status = e.get("status", "")
        note = e.get("problem")
        if not note and e.get("split_badly"):  # rag.chunking.passage_stats: sentences probably cut into pieces
            note = f"median passage {e.get('median_chars')} characters: the file may have been split badly"
        problem = f'<div class="rag-doc-problem">{render.text_html(note)}</div>' if note else ""
        rows.append(
            f'<li class="rag-doc-item rag-doc-{render.text_html(status)}" data-id="{render.text_html(e["id"])}">'
            f'<span class="rag-doc">{render.text_html(e["name"])}</span> '
            f'<span class="rag-where">{render.text_html(" · ".join(bits))}</span> '
            f'<span class="rag-doc-status">{render.text_html(STATUS_LABELS.get(status, status))}</span>{problem}</li>'
        )
    return f'<ul class="rag-doc-list">{"".join(rows)}</ul>'


def removable(entries: Sequence[dict]) -> list[tuple[str, str]]:
    """(label, id) choices for the remove control: everything not already being removed."""
    return [(e["name"], e["id"]) for e in entries if e.get("status") not in ("deleting", "indexing")]


def upload_files(library, paths: Sequence[str | Path]) -> str:
    """Hand each file to the library (as the API does); one line per file saying what happened."""
    lines = []
    for path in paths or []:
        path = Path(path)
        try:
            entry = library.add(path.name, path.read_bytes())
        except RagError as exc:
            lines.append(f"{path.name}: not added: {exc.describe()}")
        except OSError as exc:
            lines.append(f"{path.name}: could not be read ({exc.strerror or exc})")
        else:
            renamed = f" as {entry['name']}" if entry["name"] != path.name else ""
            lines.append(f"{path.name}: added{renamed}, indexing…")
    return "\n".join(lines)


def remove_document(library, doc_id: str | None) -> str:
    if not doc_id:
        return "Choose a document to remove."
    try:
        entry = library.remove(doc_id)
    except RagError as exc:
        return f"Not removed: {exc.describe()}"
    return f"{entry['name']}: removed" if entry["status"] == "deleted" else f"{entry['name']}: removing…"


CSS = """
.rag-doc-list { list-style: none; padding: 0; margin: 0; display: flex; flex-direction: column; gap: .3em; }
.rag-doc-item { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4em; }
.rag-doc-status { font-size: .75em; padding: 0 .4em; border-radius: .6em; background: rgba(127, 127, 127, .18); }
.rag-doc-ready .rag-doc-status { background: rgba(22, 163, 74, .18); }
.rag-doc-failed .rag-doc-status { background: rgba(220, 38, 38, .18); }
.rag-doc-problem { flex-basis: 100%; color: #b91c1c; font-size: .8em; }
"""
