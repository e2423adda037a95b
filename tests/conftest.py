"""Shared fixtures: small behaving fakes for unit tests, session-loaded real models for the slow ones."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.settings import Settings
from rag.text import terms

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = next(SEEDS.glob("*.txt"))


class KeywordEmbedder:
    """Bag of stemmed words hashed into 64 dims: similar wording, similar vector."""

    id = "keyword-fake@1"
    dim = 64

    def __init__(self):
        self.calls = 0
        self.texts_embedded = 0

    def embed(self, texts):
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for t in terms(text):
                out[i, int(hashlib.md5(t.encode()).hexdigest(), 16) % self.dim] += 1.0
            out[i, 0] += 1e-3  # no zero vectors
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def keyword_embedder():
    return KeywordEmbedder()


@pytest.fixture
def corpus(tmp_path):
    """A writable copy of the seed corpus with its own index folder."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEED_FILE, seeds / SEED_FILE.name)
    return seeds


@pytest.fixture
def settings(tmp_path, corpus):
    return Settings(seeds_dir=corpus, index_dir=tmp_path / "index")


@pytest.fixture(scope="session")
def real_embedder():
    from rag.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def real_generator():
    from rag.generation import LlamaGenerator

    return LlamaGenerator(Settings())


@pytest.fixture(scope="session")
def real_index_dir(tmp_path_factory, real_embedder):
    """The real seed corpus indexed once per session with the real embedder."""
    from rag.pipeline import run_ingest

    index_dir = tmp_path_factory.mktemp("real-index")
    run_ingest(Settings(seeds_dir=SEEDS, index_dir=index_dir), real_embedder)
    return index_dir
