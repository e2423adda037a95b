"""The one object the CLI, API, UI and eval talk to: retrieval plus (optionally) answering."""

from __future__ import annotations

import logging
import time
from typing import Callable

from rag.answering import Answer, Answerer, AnswerPolicy
from rag.documents import load_corpus
from rag.generation import Generator
from rag.embedding import Embedder, SentenceTransformerEmbedder
from rag.index import IngestReport, VectorIndex, chunk_settings, ingest, stale_documents
from rag.prompts import Templates
from rag.retrieval import HybridRetriever, Passage
from rag.settings import Settings

log = logging.getLogger(__name__)


def load_embedder(settings: Settings, show_progress: bool = False) -> Embedder:
    return SentenceTransformerEmbedder(
        settings.embedder_path, settings.embed_batch_size, show_progress, threads=settings.embed_threads
    )


def load_generator(settings: Settings) -> Generator:
    from rag.generation import LlamaGenerator

    return LlamaGenerator(settings)


def build_answerer(settings: Settings, retriever, generator: Generator) -> Answerer:
    return Answerer(
        retriever,
        generator,
        Templates(settings.resolved_prompts_dir()),
        retriever.embedder,
        k=settings.k,
        mode=settings.mode,
        max_tokens=settings.max_answer_tokens,
        max_generative_tokens=settings.max_generative_tokens,
        prompt_token_budget=settings.prompt_token_budget,
        policy=AnswerPolicy(
            min_support=settings.min_support,
            min_relevance=settings.min_relevance,
            refusal_text=settings.refusal_text,
        ),
    )


def index_expectations(settings: Settings, embedder: Embedder) -> dict:
    return {
        "embedder": embedder.id,
        "dim": embedder.dim,
        "chunking": chunk_settings(settings.chunk_size, settings.chunk_overlap),
    }


def run_ingest(
    settings: Settings, embedder: Embedder, progress: Callable[[int], object] | None = None
) -> tuple[VectorIndex, IngestReport]:
    docs = load_corpus(settings.seeds_dir)
    return ingest(docs, settings.index_dir, embedder, settings.chunk_size, settings.chunk_overlap, progress)


def load_index(settings: Settings, embedder: Embedder, warn_stale: bool = True) -> VectorIndex:
    index = VectorIndex.load(settings.index_dir, index_expectations(settings, embedder))
    if warn_stale:
        try:
            stale = stale_documents(index, load_corpus(settings.seeds_dir))
        except Exception:  # noqa: BLE001 - a missing seeds folder should not stop answering from the index
            stale = []
        if stale:
            log.warning("index is out of date for %s; run `rag ingest` to update it", ", ".join(stale[:5]))
    return index


class Pipeline:
    """Retrieval always; answering when a generator is given (search needs no LLM)."""

    def __init__(self, settings: Settings, embedder: Embedder, index: VectorIndex, generator: Generator | None = None):
        self.settings = settings
        self.embedder = embedder
        self.index = index
        self.retriever = HybridRetriever.from_settings(index, embedder, settings)
        self.generator = generator
        self.answerer = build_answerer(settings, self.retriever, generator) if generator else None

    @classmethod
    def load(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        with_generator: bool = False,
    ) -> "Pipeline":
        embedder = embedder or load_embedder(settings)
        index = load_index(settings, embedder)
        if generator is None and with_generator:
            generator = load_generator(settings)
        return cls(settings, embedder, index, generator)

    def _answerer(self) -> Answerer:
        if self.answerer is None:
            raise RuntimeError("this pipeline was loaded without a generator")
        return self.answerer

    def ask(self, question: str, k: int | None = None) -> Answer:
        return self._answerer().ask(question, k)

    def ask_stream(self, question: str, k: int | None = None):
        return self._answerer().stream(question, k)

    def search(self, query: str, k: int | None = None) -> list[Passage]:
        return self.retriever.search(query, k or self.settings.k)

    def info(self) -> dict:
        return {
            "documents": len(self.index.documents),
            "chunks": len(self.index),
            "embedder": self.embedder.id,
            "model": self.generator.model_name if self.generator else None,
            "mode": self.answerer.mode if self.answerer else None,
        }

    def timed_search(self, query: str, k: int | None = None) -> tuple[list[Passage], float]:
        t0 = time.perf_counter()
        passages = self.search(query, k)
        return passages, (time.perf_counter() - t0) * 1000
