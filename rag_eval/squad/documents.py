"""SQuAD articles as documents the real ingest indexes, and the index built from them.

Each article becomes one plain-text document (paragraphs separated by a blank line) so every gold answer
is an exact span of a document the index holds, and a cited span can be checked against it. `layout`
computes the documents without writing anything (the fitting scripts need only the spans); `build_index`
writes them and runs the project's own ingest, so the harness measures what a user's documents get.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag_eval.squad.data import Article, ArticleDoc, check_span, doc_span

SEPARATOR = "\n\n"


# --- documents -------------------------------------------------------------------------------------------
def safe_name(title: str) -> str:
    """A file name stem for any title: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", title).strip("._") or "article"


def layout(articles: Sequence[Article]) -> dict[str, ArticleDoc]:
    """Each article as one document text, with every paragraph's span; nothing is written."""
    docs: dict[str, ArticleDoc] = {}
    used: set[str] = set()
    for article in articles:
        stem, n = safe_name(article.title), 1
        while (doc_id := f"{stem}.txt" if n == 1 else f"{stem}-{n}.txt").lower() in used:
            n += 1
        used.add(doc_id.lower())
        spans, offset = [], 0
        for p in article.paragraphs:
            spans.append((offset, offset + len(p.context)))
            offset += len(p.context) + len(SEPARATOR)
        text = SEPARATOR.join(p.context for p in article.paragraphs)
        doc = ArticleDoc(article.title, doc_id, text, tuple(spans))
        for i, p in enumerate(article.paragraphs):
            for qa in p.qas:
                for gold in qa.answers + qa.plausible:
                    check_span(doc, doc_span(doc, i, gold), gold.text, qa.id)
        docs[article.title] = doc
    return docs


def write_documents(articles: Sequence[Article], folder: Path | str) -> dict[str, ArticleDoc]:
    """Write each article as `<safe title>.txt` (UTF-8, paragraphs separated by one blank line)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    docs = layout(articles)
    for doc in docs.values():
        (folder / doc.doc_id).write_bytes(doc.text.encode("utf-8"))  # bytes: no newline translation
    return docs


# --- the index -----------------------------------------------------------------------------------------------
def build_index(
    articles: Sequence[Article],
    workdir: Path | str,
    settings_overrides: dict | None = None,
    embedder: Any = None,
):
    """Write the articles to workdir/docs, ingest them into workdir/index; return the settings to load from.

    Documents left in workdir/docs by an earlier run with other articles are removed so the index holds
    exactly these articles (ingest is incremental: unchanged documents are not embedded again).
    """
    from rag.pipeline import load_embedder, run_ingest
    from rag.settings import build_settings

    workdir = Path(workdir)
    docs_dir, index_dir = workdir / "docs", workdir / "index"
    docs = write_documents(articles, docs_dir)
    keep = {d.doc_id for d in docs.values()}
    for path in docs_dir.rglob("*"):
        if path.is_file() and path.suffix.lower() == ".txt" and path.relative_to(docs_dir).as_posix() not in keep:
            path.unlink()
    settings = build_settings({**(settings_overrides or {}), "seeds_dir": docs_dir, "index_dir": index_dir})
    run_ingest(settings, embedder or load_embedder(settings))
    return settings
