"""Answer-sentence selection: which sentence of the retrieved passages most likely holds the answer.

A 135M model picks the wrong passage often but copies a span well once it is pointed at the right
sentence, so the pipeline picks the sentence (classic answer-sentence selection: semantic
similarity, question-word overlap, expected answer type, names) and the model picks the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.answer_types import has_type
from rag.citations import Numbered
from rag.embedding import Embedder
from rag.lexicon import INSTRUCTION
from rag.question import Question
from rag.text import context_terms, norm

# Weights of the selection score: cosine + overlap + typed + names + rank (set on the seed questions).
WEIGHTS = {"cosine": 1.0, "overlap": 1.0, "typed": 0.25, "anchors": 0.5, "rank": 0.1}


@dataclass
class Candidate:
    item: Numbered
    start: int  # sentence offsets inside the passage text
    end: int
    score: float
    cosine: float
    overlap: float
    typed: bool
    anchor_share: float

    @property
    def text(self) -> str:
        return self.item.text[self.start : self.end]


def is_instruction(sentence: str) -> bool:
    return bool(INSTRUCTION.search(sentence))


def candidates(numbered: list[Numbered]) -> list[tuple[Numbered, int, int]]:
    """Every sentence that can serve as evidence: not empty, not an injected instruction."""
    out = []
    for item in numbered:
        for start, end in item.sentences() or [(0, len(item.text))]:
            sentence = item.text[start:end]
            if re.search(r"\w", sentence) and not is_instruction(sentence):
                out.append((item, start, end))
    return out


def select_sentences(question: Question, numbered: list[Numbered], embedder: Embedder) -> list[Candidate]:
    """Every candidate sentence of the passages, best first."""
    w = WEIGHTS
    cands = candidates(numbered)
    if not cands:
        return []
    vectors = embedder.embed([question.text] + [item.text[s:e] for item, s, e in cands])
    cosines = vectors[1:] @ vectors[0]
    names = [norm(a) for a in question.names]
    scored = []
    for (item, s, e), cos in zip(cands, np.asarray(cosines, dtype=float)):
        sentence = item.text[s:e]
        ctx = context_terms(sentence)
        overlap = sum(t in ctx for t in question.terms) / len(question.terms) if question.terms else 0.0
        typed = bool(question.kind) and has_type(sentence, question.kind, question)
        anchor_share = sum(a in ctx for a in names) / len(names) if names else 0.0
        score = (
            w["cosine"] * cos
            + w["overlap"] * overlap
            + w["typed"] * typed
            + w["anchors"] * anchor_share
            + w["rank"] / item.n
        )
        scored.append(Candidate(item, s, e, float(score), float(cos), overlap, typed, anchor_share))
    scored.sort(key=lambda c: -c.score)
    return scored
