"""Answer-sentence selection: which sentence of the retrieved passages most likely holds the answer.

A 135M model picks the wrong passage often but copies a span well once it is pointed at the right
sentence, so the pipeline picks the sentence (classic answer-sentence selection: semantic
similarity, question-word overlap, expected answer type, names) and the model picks the words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.answer_types import has_type
from rag.citations import Numbered
from rag.embedding import Embedder
from rag.lexicon import INSTRUCTION
from rag.question import Question
from rag.text import context_terms, norm, words

# Hand-set weights of the selection score (cosine + overlap + typed + names + rank), set on the seed
# questions before anything was fitted; only the hand-set decider (RAG_DECISIONS=rules, rag/decider.py) uses them.
HAND_WEIGHTS = {"cosine": 1.0, "overlap": 1.0, "typed": 0.25, "anchors": 0.5, "rank_inv": 0.1}


@dataclass
class Candidate:
    item: Numbered
    start: int  # sentence offsets inside the passage text
    end: int
    score: float
    features: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.item.text[self.start : self.end]

    @property
    def cosine(self) -> float:
        return self.features.get("cosine", 0.0)


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


def _bigrams(tokens: list[str]) -> set[tuple[str, str]]:
    return set(zip(tokens, tokens[1:]))


def sentence_features(
    question: Question, sentence: str, cosine: float, item: Numbered, position: int, best_bm25: float
) -> dict[str, float]:
    """The signals a selector weighs for one candidate sentence (all cheap: no model call)."""
    ctx = context_terms(sentence)
    names = [norm(a) for a in question.names]
    q_tokens = [norm(w) for w in words(question.text)]
    s_tokens = [norm(w) for w in words(sentence)]
    q_bigrams = _bigrams(q_tokens)
    typed = bool(question.kind) and has_type(sentence, question.kind, question)
    p = item.passage
    return {
        "cosine": cosine,
        "overlap": sum(t in ctx for t in question.terms) / len(question.terms) if question.terms else 0.0,
        "typed": float(typed),
        "untyped_question": float(question.kind is None),
        "anchors": sum(a in ctx for a in names) / len(names) if names else 0.0,
        "has_names": float(bool(names)),
        "bigrams": len(q_bigrams & _bigrams(s_tokens)) / len(q_bigrams) if q_bigrams else 0.0,
        "rank_inv": 1.0 / item.n,
        "passage_cosine": p.dense,
        "passage_bm25": p.bm25 / best_bm25 if best_bm25 > 0 else 0.0,
        "position_inv": 1.0 / (position + 1),
        "log_words": math.log1p(len(s_tokens)),
    }


Rank = Callable[[Sequence[Mapping[str, float]]], list[float]]  # a decider's `rank`: a score per candidate


def hand_rank(candidates: Sequence[Mapping[str, float]]) -> list[float]:
    return [sum(w * float(c.get(k, 0.0)) for k, w in HAND_WEIGHTS.items()) for c in candidates]


def select_sentences(question: Question, numbered: list[Numbered], embedder: Embedder, rank: Rank) -> list[Candidate]:
    """Every candidate sentence of the passages, best first by the decider's `rank` of their features (the
    fitted selector's probability that it holds the answer, or the hand-set weights)."""
    cands = candidates(numbered)
    if not cands:
        return []
    sentences = [item.text[s:e] for item, s, e in cands]
    if question.vector is None:  # not embedded by retrieval (a caller without it): one batch with the sentences
        vectors = embedder.embed([question.text] + sentences)
        q_vector, vectors = vectors[0], vectors[1:]
    else:
        q_vector, vectors = question.vector, embedder.embed(sentences)
    cosines = vectors @ q_vector
    best_bm25 = max((item.passage.bm25 for item in numbered), default=0.0)
    feats = []
    positions: dict[int, int] = {}
    for (item, s, e), cos in zip(cands, np.asarray(cosines, dtype=float)):
        position = positions.get(item.n, 0)
        positions[item.n] = position + 1
        feats.append(sentence_features(question, item.text[s:e], float(cos), item, position, best_bm25))
    scored = [Candidate(item, s, e, float(score), f) for (item, s, e), f, score in zip(cands, feats, rank(feats))]
    scored.sort(key=lambda c: -c.score)
    return scored
