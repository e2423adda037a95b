"""Hand-built answers, questions and passages for the eval tests, and the fake pipeline set up for them (no model)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from rag.settings import Settings
from rag.sources import SourceTexts
from rag_eval.questions import Question

from .fakes import FakePipeline

DOC = (
    "Microsoft President Brad Smith met China's Minister of Commerce, Wang Wentao, on Wednesday, December 6, 2023. "
    "The announcement was translated by Youdao. Tesla operates one of its largest factories in China."
)
REFUSAL = "The documents don't say."


def citation(quote: str, n: int = 1, doc: str = DOC, source: str = "doc.txt") -> dict:
    start = doc.index(quote)
    return {
        "n": n, "source": source, "chunk_id": f"{source}#0", "start": start, "end": start + len(quote),
        "text": doc, "score": 0.5, "quote": quote, "passage_start": 0, "passage_end": len(doc),
    }  # fmt: skip


def answer(text: str, *cites: dict, refused: bool = False, reason: str | None = None) -> dict:
    return {
        "question": "q", "answer": text, "refused": refused, "citations": list(cites), "model": "fake.gguf",
        "timings": {}, "mode": "extractive", "reason": reason, "raw": text, "dropped": [], "signals": None,
    }  # fmt: skip


def refusal(reason: str = "off-topic") -> dict:
    return answer(REFUSAL, refused=True, reason=reason)


def question(
    qid="q1",
    category="factoid",
    answers=(("Wang Wentao",),),
    evidence=("Minister of Commerce, Wang Wentao",),
    forbidden=(),
    answerable=True,
) -> Question:
    return Question(
        id=qid,
        category=category,
        question=f"question {qid}?",
        answerable=answerable,
        answers=[list(p) for p in answers] if answerable else [],
        evidence=list(evidence) if answerable else [],
        forbidden=list(forbidden),
    )


def passage(text: str = DOC):
    """A passage as an answer lists it (the contract's fields) and as search returns it (`.chunk`)."""
    chunk = SimpleNamespace(doc_id="doc.txt", chunk_id="doc.txt#0", start=0, end=len(text), text=text)
    return SimpleNamespace(doc="doc.txt", chunk_id="doc.txt#0", start=0, end=len(text), text=text, chunk=chunk)


OTHER = passage("Apple CEO Tim Cook visited China earlier in the year.")


@pytest.fixture
def seeds(tmp_path):
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "doc.txt").write_text(DOC, "utf-8")
    return folder


@pytest.fixture
def read(seeds):
    return SourceTexts(seeds)


class FakeAnswer:
    """What the runner reads of rag.contract.Answer: model_dump() and the passages."""

    def __init__(self, data: dict, passages: list):
        self.data, self.passages = data, passages

    def model_dump(self) -> dict:
        return dict(self.data)


def eval_pipeline(seeds: Path, script: dict[str, tuple[dict, list]]) -> FakePipeline:
    """What the runner needs from rag.pipeline.Pipeline: `ask` answering from `script` (question -> answer dict
    and passages) plus the objects the run config is read from."""
    model = seeds.parent / "fake.gguf"
    model.write_bytes(b"GGUF fake weights")
    pipeline = FakePipeline(answer=lambda text: FakeAnswer(*script[text]))
    pipeline.settings = Settings(seeds_dir=seeds, index_dir=seeds.parent / "index")
    pipeline.embedder = SimpleNamespace(id="fake-embedder@1")
    pipeline.generator = SimpleNamespace(path=model)
    pipeline.answerer = SimpleNamespace(mode="extractive")
    return pipeline


def write_questions(path: Path, questions: list[Question]) -> Path:
    path.write_text("".join(q.model_dump_json() + "\n" for q in questions), "utf-8")
    return path
