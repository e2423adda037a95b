"""A question analysed once: its expected answer type, the names it mentions and its content words.

Every later step (sentence selection, the grammar's start words, the refusal signals, the typed
repair) reads this one object; they used to recompute it four times, each slightly differently.
Its embedding joins it after retrieval (`with_vector`): the sentence engine compares sentences to the vector
the retriever searched with instead of embedding the question a second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from rag.lexicon import ANSWER_KIND_WORDS, DEMONYMS, QUESTION_TYPES, QUESTION_WORDS, STOPWORDS, TWO_PART_QUESTION
from rag.text import collapse_initialisms, norm, words

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Question:
    text: str
    kind: str | None  # expected answer type (a key of lexicon.ANSWER_TYPES), None when any answer fits
    names: tuple[str, ...]  # proper names the cited sentence must mention
    terms: tuple[str, ...]  # normalised content words (what the question is about)
    asked: frozenset[str]  # every normalised word of the question (an answer must add something to these)
    avoid_start: frozenset[str]  # lower-cased content words an answer span may not start with (echo)
    parts: int = 1  # things asked for: 2 for "which two…", "who met whom", "what … and when …"
    # the embedding of `text` (unit vector) once retrieval computed it; None: not embedded yet
    vector: np.ndarray | None = field(default=None, compare=False, repr=False)

    def with_vector(self, text: str, vector: np.ndarray) -> Question:
        """This question with the embedding of `text`, kept only when `text` is the question's own (the
        retriever embeds a query cut to its longest length: a cut question keeps no vector)."""
        return replace(self, vector=vector) if text == self.text else self

    @property
    def near(self) -> frozenset[str]:
        """Normalised words whose position in a sentence marks where the answer likely sits."""
        return frozenset(self.terms) | {norm(n) for n in self.names}


def question_type(text: str) -> str | None:
    q = text.lower()
    for pattern, kind in QUESTION_TYPES:
        if pattern.search(q):
            return kind
    return None


def names_in(text: str) -> list[str]:
    """Proper names in a question: capitalised words that do not start a sentence, and acronyms."""
    text = collapse_initialisms(text)
    found = []
    for m in re.finditer(r"[^\W\d_][\w'\u2019]*", text):
        token = m.group()
        before = text[: m.start()].rstrip()
        starts_sentence = not before or before[-1] in ".?!:\"'"
        if token[0].isupper() and not starts_sentence and token.lower() not in QUESTION_WORDS | {"i"}:
            name = re.sub(r"['\u2019]s$", "", token)
            if name.lower() not in STOPWORDS and name.lower() not in DEMONYMS:
                found.append(name)
    return found


def content_terms(text: str) -> list[str]:
    terms: list[str] = []
    for w in words(collapse_initialisms(text)):
        if w in STOPWORDS or w in QUESTION_WORDS:
            continue
        s = norm(w)
        if w not in ANSWER_KIND_WORDS and s not in ANSWER_KIND_WORDS and s not in terms:
            terms.append(s)
    return terms


def analyse(text: str) -> Question:
    text = text.strip()
    return Question(
        text=text,
        kind=question_type(text),
        names=tuple(names_in(text)),
        terms=tuple(content_terms(text)),
        asked=frozenset(norm(w) for w in words(collapse_initialisms(text))),
        avoid_start=frozenset(w for w in words(text) if w not in STOPWORDS),
        parts=2 if TWO_PART_QUESTION.search(text) else 1,
    )
