"""Answer-sentence selection: which sentence of the retrieved passages most likely holds the answer.

A 135M model picks the wrong passage often but copies a span well once it is pointed at the right
sentence, so the pipeline picks the sentence (classic answer-sentence selection: semantic
similarity, question-word overlap, expected answer type, names) and the model picks the words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.citations import Numbered
from rag.embedding import Embedder
from rag.refusal import anchors, content_terms, context_terms, has_type, norm, question_type


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


@dataclass
class SelectionWeights:
    cosine: float = 1.0
    overlap: float = 1.0
    typed: float = 0.25
    anchors: float = 0.5
    rank: float = 0.1


# Sentences that address the assistant ("ignore previous instructions…") are injected instructions,
# not statements about the world, so they are never offered as evidence.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|rules?|prompts?|guidelines)\b|"
    r"\byou are (?:now|no longer)\b|\bsystem prompt\b|\bnew instructions?\b",
    re.I,
)


def is_instruction(sentence: str) -> bool:
    return bool(_INSTRUCTION.search(sentence))


def candidates(numbered: list[Numbered]) -> list[tuple[Numbered, int, int]]:
    out = []
    for item in numbered:
        for start, end in item.sentences() or [(0, len(item.text))]:
            sentence = item.text[start:end]
            if re.search(r"\w", sentence) and not is_instruction(sentence):
                out.append((item, start, end))
    return out


def select_sentences(
    question: str, numbered: list[Numbered], embedder: Embedder, weights: SelectionWeights | None = None
) -> list[Candidate]:
    """Every sentence of the passages, best first."""
    w = weights or SelectionWeights()
    cands = candidates(numbered)
    if not cands:
        return []
    vectors = embedder.embed([question] + [item.text[s:e] for item, s, e in cands])
    cosines = vectors[1:] @ vectors[0]
    kind = question_type(question)
    terms = content_terms(question)
    names = [norm(a) for a in anchors(question)]
    scored = []
    for (item, s, e), cos in zip(cands, np.asarray(cosines, dtype=float)):
        sentence = item.text[s:e]
        ctx = context_terms(sentence)
        overlap = sum(t in ctx for t in terms) / len(terms) if terms else 0.0
        typed = bool(kind) and has_type(sentence, kind, question)
        anchor_share = sum(a in ctx for a in names) / len(names) if names else 0.0
        score = (
            w.cosine * cos
            + w.overlap * overlap
            + w.typed * typed
            + w.anchors * anchor_share
            + w.rank / item.n
        )
        scored.append(Candidate(item, s, e, float(score), float(cos), overlap, typed, anchor_share))
    scored.sort(key=lambda c: -c.score)
    return scored
