"""The text a citation's offsets index, for any document: `source_text(doc_id)[start:end] == quote`.

For plain text and Markdown without tables it is the original file, decoded by the one rule in
`rag.formats.text.decode_text` (BOM removed, line endings as they are); for PDF, HTML, DOCX and
Markdown with tables it is the extracted text stored in the index folder and named in the manifest
(`documents[doc_id]["text"]`). Evaluation, the API and any reader use this, never `open().read()`.
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.formats import UnreadableDocument
from rag.formats.text import read_source_text


class SourceTexts:
    """doc_id -> cited text (cached), or None when it cannot be read."""

    def __init__(self, seeds_dir: Path, index_dir: Path | None = None, documents: dict | None = None):
        self.seeds_dir = Path(seeds_dir)
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self._documents = documents
        self._cache: dict[str, str | None] = {}

    def documents(self) -> dict:
        if self._documents is None:
            self._documents = {}
            if self.index_dir is not None:
                try:
                    manifest = json.loads((self.index_dir / "manifest.json").read_text("utf-8"))
                    self._documents = manifest.get("documents", {})
                except (OSError, ValueError):
                    pass
        return self._documents

    def __call__(self, doc_id: str) -> str | None:
        if doc_id not in self._cache:
            self._cache[doc_id] = self._read(doc_id)
        return self._cache[doc_id]

    def _read(self, doc_id: str) -> str | None:
        stored = (self.documents().get(doc_id) or {}).get("text")
        try:
            if stored and self.index_dir is not None:
                return (self.index_dir / stored).read_bytes().decode("utf-8")
            return read_source_text(self.seeds_dir / doc_id)
        except (OSError, UnicodeDecodeError, UnreadableDocument):
            return None
