"""Does a phrase hold the kind of answer the question asks for (a date for "when", a number for "how many")?

The patterns are tables in rag/lexicon.py; this module only applies them.
"""

from __future__ import annotations

import re

from rag.lexicon import ANSWER_TYPES, COUNTED_BY_SYMBOL, COUNTED_THING, NUMBER_WORDS, STOPWORDS, TYPE_TAILS
from rag.question import Question
from rag.text import collapse_initialisms, norm, words


def has_type(text: str, kind: str, question: Question | None = None) -> bool:
    """Does text hold an answer of this kind? "how many <things>" needs a number of those things."""
    if not ANSWER_TYPES[kind].search(text):
        return False
    counted = COUNTED_THING.search(question.text.lower()) if question else None
    if kind in ("number", "numeral") and counted:
        thing = norm(counted.group(1))
        number = r"\d[\d,.]*" if kind == "numeral" else rf"(?:\d[\d,.]*|{NUMBER_WORDS})"
        symbols = "".join(re.escape(s) for t, s in COUNTED_BY_SYMBOL.items() if thing.startswith(t))
        lead = rf"(?:[{symbols}]\s*)?" if symbols else ""
        for m in re.finditer(rf"{lead}\b{number}\b((?:[\s-]+[\w-]+){{0,3}})", text, re.I):
            if symbols and m.group().lstrip()[:1] in symbols:
                return True
            if thing in {norm(w) for w in re.split(r"[\s-]+", m.group(1)) if w}:
                return True
        return False
    return True


def find_typed(text: str, kind: str, question: Question | None = None) -> re.Match | None:
    """The typed phrase in text that adds something to the question, nearest the words matching it."""
    asked = question.asked if question else frozenset()
    matches = [
        m
        for m in ANSWER_TYPES[kind].finditer(text)
        if {norm(w) for w in words(collapse_initialisms(m.group()))} - asked
    ]
    if not matches or not question:
        return matches[0] if matches else None
    hits = [m.start() for m in re.finditer(r"\S+", text) if norm(m.group().strip(".,;:")) in asked - STOPWORDS]
    if not hits:
        return matches[0]
    return min(matches, key=lambda m: min(abs(m.start() - h) for h in hits))


def extend_typed(text: str, start: int, end: int, kind: str) -> tuple[int, int]:
    """Grow a typed match over adjacent typed words: 'Wednesday' -> 'Wednesday, December 6, 2023'."""
    while True:
        m = find_typed(text[end:], kind)
        gap = text[end : end + m.start()] if m else ""
        if not m or len(gap) > 3 or not all(ch.isdigit() or ch in " ,.-/" for ch in gap):
            break
        end += m.end()
    tail = TYPE_TAILS.get(kind)
    m = tail.match(text, end) if tail else None
    if m:
        end = m.end()
    return start, end
