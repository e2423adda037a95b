"""Word-level helpers shared by BM25, the question analysis, refusal signals and evaluation.

One tokeniser (`rag.lexicon.WORD`: Unicode letters and digits) for every side, so a name in a
question and the same name in a passage always become the same word.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rag.lexicon import STOPWORDS, WORD


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def words(text: str) -> list[str]:
    return [w.lower().replace("\u2019", "'") for w in WORD.findall(text)]


def stem(word: str) -> str:
    word = word.lower()
    if word.endswith("'s"):
        word = word[:-2]
    return _stemmer().stemWord(word)


def terms(text: str) -> list[str]:
    """Stemmed content words: what BM25 indexes and what support checks compare."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def collapse_initialisms(text: str) -> str:
    """'U.S.' -> 'US', so initialisms match however they are written."""
    return re.sub(r"\b(?:[A-Za-z]\.){2,}", lambda m: m.group().replace(".", ""), text)


def norm(token: str) -> str:
    """A word as the checks compare it: dots dropped, lower case, stemmed."""
    return stem(token.replace(".", "").lower())


def context_terms(text: str) -> set[str]:
    """Normalised words of a context, plus the acronyms its phrases spell ("artificial intelligence" -> "ai")."""
    tokens = words(collapse_initialisms(text))
    found = {norm(w) for w in tokens}
    content = [w for w in tokens if w not in STOPWORDS]
    for size in (2, 3, 4):
        for i in range(len(content) - size + 1):
            found.add("".join(w[0] for w in content[i : i + size]))
    return found


NUMBER = re.compile(r"\d+(?:[,.:]\d+)*")


def numbers_in(text: str) -> list[str]:
    """The numbers of two or more digits in a text, as the numbers check compares them: thousands separators
    dropped ("3,000" -> "3000"), a time's colon read as a dot ("10:30" -> "10.30"), a decade by its year
    ("the 1970s", "1950's" -> "1970", "1950"). Single digits are left out: they are as often written as words
    ("5 times" for "fivefold", "2 parties" for "two")."""
    found: list[str] = []
    for m in NUMBER.finditer(text):
        n = m.group().replace(",", "").replace(":", ".").strip(".")
        if sum(c.isdigit() for c in n) >= 2 and n not in found:
            found.append(n)
    return found


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 document", "3 documents", "0 passages": every count a person reads goes through this, so no
    message says "1 documents"."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
