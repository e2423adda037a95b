"""The one object the CLI, API, UI and eval talk to: retrieval plus (optionally) answering."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from rag.ann import Layout
from rag.answering import Answerer, Prepared
from rag.contract import Answer, StreamEvent
from rag.decider import Decider, FittedDecider, RulesDecider
from rag.documents import Corpus, raise_empty, scan_corpus
from rag.embedding import Embedder, open_embedder
from rag.fitted import AnsweringModel
from rag.generation import Generator
from rag.index import IngestReport, VectorIndex, changed_documents, chunk_settings, ingest
from rag.prompts import Templates
from rag.refusal import RefusalPolicy, opposites_said
from rag.retrieval import HybridRetriever, Passage
from rag.settings import Settings
from rag.strategies import Extractive, Generative, Strategy

log = logging.getLogger(__name__)

WARM_QUESTION = "What do the documents say about this?"
WARM_PASSAGE = "The documents say what they say about this, in a sentence the reader can read."


def ingest_settings(settings: Settings) -> Settings:
    """The settings `rag ingest` embeds with: `ingest_threads` (default all cores) instead of `embed_threads`, which
    stays at one for queries beside llama.cpp. Measured on 2 cores: 26.2 -> 14.4 s per 1,000 chunks
    (10.4 once chunks are embedded longest first: rag.index.embed_all)."""
    return settings.model_copy(update={"embed_threads": settings.ingest_threads or os.cpu_count() or 1})


def load_embedder(settings: Settings, show_progress: bool = False) -> Embedder:
    return open_embedder(settings.index, show_progress)


def load_generator(settings: Settings) -> Generator:
    """An OpenAI-compatible server when RAG_LLM_URL is set (rag/generation_remote.py), else llama.cpp in-process."""
    if settings.llm_url:
        from rag.generation_remote import RemoteGenerator

        return RemoteGenerator(settings.generation)
    from rag.generation import LlamaGenerator

    return LlamaGenerator(settings.generation)


def answer_mode(settings: Settings, generator: Generator) -> str:
    """`auto` answers extractively with small models (they ramble when free) and generatively with big ones."""
    if settings.mode != "auto":
        return settings.mode
    return "extractive" if generator.is_small else "generative"


def load_reader(settings: Settings, generator: Generator | None):
    """The fitted span reader (RAG_READER=answer), for either answer mode; None when it is off or there is no
    generator (a search-only pipeline)."""
    if settings.reader == "off" or generator is None:
        return None
    from rag.embedding import bundled_embedder_path
    from rag.reader import ReaderModel

    # the trained layers fit the bundled encoder only, whatever RAG_EMBEDDER_PATH says
    return ReaderModel.load(
        Templates(settings.prompts_dir),
        bundled_embedder_path(),
        threads=settings.embed_threads,
        runtime=settings.encoder_runtime,
        cache_dir=settings.onnx_cache_dir,
    )


def prepare_reader(settings: Settings) -> Path | None:
    """Make the reader's ONNX export now if it is missing (what `rag ingest` does after indexing); its path, or
    None when the reader is off or runs under torch.

    Why: the first load exports it with torch, and that fell on the first `rag serve` after install: ready after
    10.1 s instead of 1.4 (measured 2026-12-07, fresh RAG_ONNX_CACHE_DIR, `rag ask` once then again). When the
    export exists this costs hashing the 18 MB reader file and finding the export (tens of milliseconds)."""
    if settings.reader == "off" or settings.encoder_runtime != "onnx":
        return None
    from rag.embedding import bundled_embedder_path
    from rag.reader import READER_FILE, ReaderModel

    data = Templates(settings.prompts_dir).bytes(READER_FILE)
    return ReaderModel.onnx_export(bundled_embedder_path(), data, Path(settings.onnx_cache_dir))


def build_decider(settings: Settings, generator: Generator, reader=None) -> Decider:
    """The one decider every answer goes through (rag/decider.py): the reader-led engine's fitted decider
    (prompts/decider.json) when the reader reads; else, extractively, the sentence engine's fitted selector and
    answerer (prompts/answering_model.json) unless RAG_DECISIONS=rules; else the hand-set checks."""
    answering = settings.answering
    templates = Templates(answering.prompts_dir)
    policy = RefusalPolicy.of(answering)
    if reader is not None and answering.reader == "answer":
        return FittedDecider.load(templates, policy, answering.answer_threshold)
    if answer_mode(settings, generator) == "extractive" and answering.decisions == "fitted":
        model = AnsweringModel.load(templates)
        answerer = model.answerer
        if answering.answer_threshold is not None:
            answerer = replace(answerer, threshold=answering.answer_threshold)
        return FittedDecider(policy, answerer, ranker=model.selector, meta=model.meta, name="sentences")
    return RulesDecider(policy)


def build_strategy(
    settings: Settings, generator: Generator, embedder: Embedder, decider: Decider, reader=None
) -> Strategy:
    answering = settings.answering
    templates = Templates(answering.prompts_dir)
    extractive = answer_mode(settings, generator) == "extractive"
    if reader is not None and answering.reader == "answer":
        from rag.read_strategy import ReaderExtractive, ReaderGenerative

        return (ReaderExtractive if extractive else ReaderGenerative)(templates, decider, reader, answering)
    if extractive:
        # RAG_READER=off, or no reader given (a caller that injects its generator without a reader, as the
        # tests' fakes do; `Pipeline.load(with_generator=True)` loads the real one): the sentence engine
        return Extractive(templates, decider, embedder, answering)
    return Generative(templates, decider, answering)


def build_answerer(settings: Settings, retriever, generator: Generator, reader=None) -> Answerer:
    decider = build_decider(settings, generator, reader)
    strategy = build_strategy(settings, generator, retriever.embedder, decider, reader)
    return Answerer(
        retriever,
        generator,
        strategy,
        decider,
        k=settings.k,
        prompt_token_budget=settings.prompt_token_budget,
        context_tokens=settings.n_ctx,
    )


def index_expectations(settings: Settings, embedder: Embedder) -> dict:
    return {
        "embedder": embedder.id,
        "dim": embedder.dim,
        "chunking": chunk_settings(settings.chunk_size, settings.chunk_overlap),
    }


def run_ingest(
    settings: Settings,
    embedder: Embedder,
    progress: Callable[[int], object] | None = None,
    corpus: Corpus | None = None,
    on_chunked: Callable[[int], object] | None = None,
) -> tuple[VectorIndex, IngestReport]:
    """Index the documents folder; unreadable files are listed in the report's `problems`, not fatal."""
    corpus = corpus or scan_corpus(settings.seeds_dir)
    if not corpus.documents:
        raise_empty(settings.seeds_dir, corpus.problems)
    return ingest(
        corpus.documents,
        settings.index_dir,
        embedder,
        settings.chunk_size,
        settings.chunk_overlap,
        progress,
        problems=corpus.problems,
        on_chunked=on_chunked,
        layout=Layout.of(settings.index),
    )


def load_index(settings: Settings, embedder: Embedder, warn_stale: bool = True) -> VectorIndex:
    index = VectorIndex.load(settings.index_dir, index_expectations(settings, embedder), Layout.of(settings.index))
    if warn_stale:
        try:  # hashes only: parsing every PDF again just to warn would slow every start
            stale = changed_documents(index, settings.seeds_dir)
        except Exception:  # noqa: BLE001 - a missing seeds folder should not stop answering from the index
            stale = []
        if stale:
            log.warning("index is out of date for %s; run `rag ingest` to update it", ", ".join(stale[:5]))
    return index


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


class Pipeline:
    """Retrieval always; answering when a generator is given (search needs no LLM)."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        index: VectorIndex,
        generator: Generator | None = None,
        reader=None,
    ):
        self.settings = settings
        self.embedder = embedder
        self.index = index
        self.retriever = HybridRetriever(index, embedder, settings.retrieval)
        self.generator = generator
        self.reader = reader
        self.answerer = build_answerer(settings, self.retriever, generator, reader) if generator else None
        self.warmed: dict[str, float] | None = None  # warm()'s step timings, once it ran

    @classmethod
    def load(
        cls,
        settings: Settings,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        with_generator: bool = False,
        reader=None,
    ) -> Pipeline:
        """What is not given is loaded: the generator and the reader (RAG_READER) with `with_generator`; a
        caller that injects its own generator injects its reader too (or answers without one)."""
        embedder = embedder or load_embedder(settings)
        index = load_index(settings, embedder)
        if generator is None and with_generator:
            generator = load_generator(settings)
            if reader is None:
                reader = load_reader(settings, generator)
        return cls(settings, embedder, index, generator, reader)

    def warm(self) -> dict[str, float]:
        """Run each model once, so the first answer costs what later ones do; the server calls this before
        /health says ready (rag/api/service.py). Returns ms per step; runs once (later calls return those).

        Why: issue 24 measured the first answer after `ready` at 2.78x the median. The fixed part of every prompt
        (system text and worked examples, before the passages) was not in llama.cpp's KV cache yet, and the
        embedder, BM25 and the reader ran for the first time. Steps: `search` (a query embedded and searched,
        or only embedded on an empty index), `read` (the span reader on one short passage, when loaded),
        `prefix` (the fixed prompt's tokens counted, then evaluated into the KV cache by a generator that can:
        llama-cpp-python keeps the last prompt's cache and reuses its longest common token prefix, so the first
        real prompt evaluates only what follows the examples; a remote server has no `warm` and is skipped; the
        refusal checks' WordNet lexicon is read in this step too).
        The prefix is not evaluated when the strategy never calls the generator (the reader with one candidate,
        the default): it took 8.3 s of a 19.8 s cold start (median of 3, 2 cores shared with an evaluation)
        for a cache no answer reads; its tokens are still counted."""
        if self.warmed is not None:
            return self.warmed
        steps: dict[str, float] = {}
        t0 = time.perf_counter()
        if len(self.index):
            self.retriever.search(WARM_QUESTION, self.settings.k)
        else:
            self.embedder.embed([WARM_QUESTION])
        steps["search"] = _ms(t0)
        if self.reader is not None:
            t0 = time.perf_counter()
            self.reader.read(WARM_QUESTION, [WARM_PASSAGE])
            steps["read"] = _ms(t0)
        if self.answerer is not None:
            t0 = time.perf_counter()
            self.answerer.check_fits(WARM_QUESTION)  # counts the fixed prompt's tokens once
            opposites_said(WARM_QUESTION, WARM_PASSAGE)  # reads WordNet's opposites (0.14 s, once)
            evaluate = getattr(self.generator, "warm", None)
            if evaluate is not None and self.answerer.strategy.generates:
                evaluate(self.fixed_prompt())
            steps["prefix"] = _ms(t0)
        self.warmed = steps
        log.info("warmed up (ms): %s", ", ".join(f"{k} {v}" for k, v in steps.items()))
        return steps

    def fixed_prompt(self) -> list[dict]:
        """The messages every answer starts with (system, worked examples), closed by a user turn with no
        passages: its tokens up to where the passages go are the common prefix of every real prompt."""
        return self._answerer().strategy.messages("", [])

    def _answerer(self) -> Answerer:
        if self.answerer is None:
            raise RuntimeError("this pipeline was loaded without a generator")
        return self.answerer

    def prepare(self, question: str, k: int | None = None) -> Prepared:
        """Everything the pipeline does before the model runs (the benchmark's hook)."""
        return self._answerer().prepare(question, k)

    def ask(self, question: str, k: int | None = None) -> Answer:
        return self._answerer().ask(question, k)

    def ask_stream(self, question: str, k: int | None = None) -> Iterator[StreamEvent]:
        return self._answerer().stream(question, k)

    def search(self, query: str, k: int | None = None) -> list[Passage]:
        return self.retriever.search(query, k or self.settings.k)

    def info(self) -> dict:
        return {
            "documents": len(self.index.documents),
            "chunks": len(self.index),
            "embedder": self.embedder.id,
            "model": self.generator.model_name if self.generator else None,
            "backend": getattr(self.generator, "backend", None),
            "mode": self.answerer.mode if self.answerer else None,
        }
