"""Word-level helpers shared by BM25, refusal signals and evaluation."""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019][A-Za-z]+)?")

STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from about as into onto over under between
    among through during before after above below up down out off than so such too very can could should would
    will shall may might must do does did done doing have has had having be is am are was were been being it its
    this that these those there here what which who whom whose when where why how i me my we our you your he him
    his she her they them their not no nor only own same s t just also any all both each few more most other some
    again further once per via according said says say tell told let please ever yet still""".split()
)  # fmt: skip

QUESTION_WORDS = frozenset("what which who whom whose when where why how".split())


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    return [w.lower().replace("\u2019", "'") for w in _WORD.findall(text)]


def stem(word: str) -> str:
    word = word.lower()
    if word.endswith("'s"):
        word = word[:-2]
    return _stemmer().stemWord(word)


def terms(text: str) -> list[str]:
    """Stemmed content words: what BM25 indexes and what support checks compare."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]
