"""Shared fixtures: small behaving fakes for unit tests, session-loaded real models for the slow ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.settings import IndexSettings, Settings

from .support.fakes import KeywordEmbedder

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_FILE = next(SEEDS.glob("*.txt"))


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

    return SentenceTransformerEmbedder(IndexSettings())


@pytest.fixture(scope="session")
def real_generator():
    from rag.generation import LlamaGenerator

    return LlamaGenerator(Settings().generation)


@pytest.fixture(scope="session")
def real_reader():
    """The fitted span reader as the pipeline loads it (packaged adapters merged into the bundled encoder)."""
    from rag.embedding import bundled_embedder_path
    from rag.prompts import Templates
    from rag.reader import ReaderModel

    return ReaderModel.load(Templates(), bundled_embedder_path())


@pytest.fixture(scope="session")
def real_index_dir(tmp_path_factory, real_embedder):
    """The real seed corpus indexed once per session with the real embedder."""
    from rag.pipeline import run_ingest

    index_dir = tmp_path_factory.mktemp("real-index")
    run_ingest(Settings(seeds_dir=SEEDS, index_dir=index_dir), real_embedder)
    return index_dir
