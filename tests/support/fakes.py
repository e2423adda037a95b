"""One behaving fake per interface, shared by every test that needs one.

- `KeywordEmbedder` (Embedder): bag of stemmed words hashed into 64 dims — similar wording, similar vector.
- `ScriptedGenerator` (Generator): replies through a function of (question, shown passages, messages); records
  the prompts `warm` was given.
- `ListRetriever` (Retriever): returns the passages it was given (and embeds the query, as retrieval does).
- `PhraseReader` (Reader): proposes the phrases `answers(question)` names wherever a passage holds them.
- `FakePipeline` (what the API, the chat and the eval runners call: `ask`, `ask_stream`, `info`): streams
  sources, tokens and an answer built by a function of the question, with hooks to hold, slow down, fail or
  watch a generation. The only fake pipeline: test modules build it with their canned data
  (`test_api.api_pipeline`, `test_ui.chat_pipeline`, `eval_fakes.eval_pipeline`).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable

import numpy as np

from rag import contract
from rag.chunking import Chunk
from rag.errors import QueryError
from rag.retrieval import Passage, Query
from rag.text import terms


class KeywordEmbedder:
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


class ScriptedGenerator:
    """Replies by calling `reply(question_text, shown, messages)`; records every call."""

    model_name = "scripted-fake.gguf"
    is_small = True

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[dict] = []
        self.warmed: list[list[dict]] = []  # the prompts `warm` evaluated

    def warm(self, messages):
        """As LlamaGenerator.warm: evaluate a prompt into the cache (here: only recorded)."""
        self.warmed.append(messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, messages, grammar, max_tokens):
        user = messages[-1]["content"]
        question = re.search(r"Question: (.*)", user).group(1)
        shown = re.findall(r"^\[(\d+)\] (.*)$", user, re.M)
        self.calls.append({"messages": messages, "grammar": grammar, "question": question, "shown": shown})
        out = self.reply(question, shown, messages)
        for i in range(0, len(out), 4):  # stream in pieces, like llama.cpp
            yield out[i : i + 4]


def copy_phrase(phrase: str):
    """A reply that copies `phrase` from the shown passage if present, else its first three words."""

    def reply(question, shown, messages):
        n, text = shown[0]
        if phrase in text:
            return f"[{n}] {phrase}"
        return f"[{n}] " + " ".join(text.split()[:3])

    return reply


class ListRetriever:
    def __init__(self, passages: list[Passage], embedder=None):
        self.passages = passages
        self.embedder = embedder or KeywordEmbedder()

    def embed_query(self, query: str) -> Query:
        if not query.strip():
            raise QueryError("the query is empty")
        return Query(query.strip(), self.embedder.embed([query.strip()])[0])

    def search(self, query: str | Query, k: int) -> list[Passage]:
        if not (query if isinstance(query, str) else query.text).strip():
            raise QueryError("the query is empty")
        return self.passages[:k]


class PhraseReader:
    """Proposes each phrase of `answers(question)` where a passage holds it; the first phrase gets the best
    margin (5, then 4, …). Records each call."""

    def __init__(self, answers: Callable[[str], list[str]]):
        self.answers = answers
        self.calls: list[tuple[str, list[str]]] = []

    def read(self, question, passages):
        from rag.reader import Reading, Span

        self.calls.append((question, list(passages)))
        spans = []
        for rank, phrase in enumerate(self.answers(question)):
            for i, text in enumerate(passages):
                j = text.find(phrase)
                if j >= 0:
                    spans.append(Span(i, j, j + len(phrase), 10.0 - rank, 5.0 - rank))
        spans.sort(key=lambda s: -s.margin)
        return Reading(spans, [5.0] * len(passages))


def passage(doc: str, text: str, start: int = 0, chunk_id: str | None = None, score: float = 0.03) -> Passage:
    return Passage(Chunk(doc, chunk_id or f"{doc}#0", start, start + len(text), text), score, 0.8, 4.2, 1, 1)


def cited_answer(question: str, p: Passage, quote: str, **extra) -> contract.Answer:
    """An answer citing `quote` inside passage `p`, with exact offsets."""
    rel = p.chunk.text.index(quote)
    c = p.chunk
    citation = contract.Citation(
        n=1,
        source=c.doc_id,
        chunk_id=c.chunk_id,
        start=c.start + rel,
        end=c.start + rel + len(quote),
        text=c.text,
        score=round(p.score, 6),
        quote=quote,
        passage_start=c.start,
        passage_end=c.end,
    )
    fields = {"model": "fake.gguf", "mode": "extractive", "raw": f"[1] {quote}", **extra}
    return contract.Answer(question=question, answer=f"{quote} [1]", refused=False, citations=[citation], **fields)


def refusal(question: str, reason: str = "no date in the cited passage") -> contract.Answer:
    return contract.Answer(
        question=question,
        answer="The documents don't say.",
        refused=True,
        model="fake.gguf",
        mode="extractive",
        reason=reason,
    )


class FakePipeline:
    """Behaves like `rag.pipeline.Pipeline` for the API, the chat and the eval runners.

    `ask_stream` yields a SourcesEvent, TokenEvents and an AnswerEvent (`answer(question)`); `ask` returns
    `answer(question)` itself, whatever it is (the eval runners also read dicts and older answer objects), or
    raises what it raises (a runner records a QueryError for one question and goes on).

    Hooks: `gate` (set by default) lets a test hold a generation open; `running` tells it one started; `fail`
    is raised after the sources; `delay` seconds are spread over the tokens; `on_ask(question)` runs as each
    answer starts (to check the question as a tokenizer would, or to look at what the caller holds then).
    Records: `calls` (question, k); `emitted` the kinds of the events handed out; `closed` counts generators
    closed or finished. Attributes a test needs (`settings`, `generator`, …) are set on the instance.
    """

    def __init__(
        self,
        passages: list[Passage] = (),
        answer: Callable[[str], object] | None = None,
        tokens: list[str] = (),
        info: dict | None = None,
        delay: float = 0.0,
        fail: Exception | None = None,
        on_ask: Callable[[str], object] | None = None,
    ):
        self.passages = list(passages)
        self.answer = answer or refusal
        self.tokens = list(tokens)
        self._info = dict(info or {})
        self.delay = delay
        self.fail = fail
        self.on_ask = on_ask
        self.gate = threading.Event()
        self.gate.set()
        self.running = threading.Event()
        self.closed = 0
        self.calls: list[tuple[str, int | None]] = []
        self.emitted: list[str] = []

    @property
    def questions(self) -> list[str]:
        return [q for q, _ in self.calls]

    def info(self) -> dict:
        return dict(self._info)

    def _start(self, question: str, k: int | None) -> None:
        self.calls.append((question, k))
        if self.on_ask is not None:
            self.on_ask(question)
        if not question.strip():
            raise QueryError("the query is empty; ask about something in the documents")

    def _emit(self, event):
        self.emitted.append(event.kind)
        return event

    def ask_stream(self, question: str, k: int | None = None):
        try:
            self._start(question, k)
            yield self._emit(contract.SourcesEvent(passages=[p.to_out() for p in self.passages]))
            self.running.set()
            if self.fail:
                raise self.fail
            for token in self.tokens:
                self.gate.wait(10)
                time.sleep(self.delay / max(1, len(self.tokens)))
                yield self._emit(contract.TokenEvent(text=token))
            yield self._emit(contract.AnswerEvent(answer=self.answer(question)))
        finally:
            self.closed += 1

    def ask(self, question: str, k: int | None = None):
        self._start(question, k)
        self.running.set()
        if self.fail:
            raise self.fail
        return self.answer(question)
