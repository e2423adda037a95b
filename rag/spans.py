"""Tidy a copied answer span: an answer adds what the question lacks, in one clause.

The 135M model finds the right place but copies too much: on held-out SQuAD articles its spans had a
median of 12 words against 1–3 for the gold answers, typically the question's own words first
("the Parliament was temporarily relocated to the former …") and a following clause last
("1960, but France retained …"). Two cuts, both checkable by a reader and applied to exact offsets:
1. stop at the first clause break (lexicon.CLAUSE_BREAK) after the span's first word;
2. drop leading words that only repeat the question (its words or stopwords), when the dropped run
   holds at least one of the question's own words (so "up to" in "up to four minutes" stays).
Trailing question words stay: on the fitting articles cutting them lost more gold answers
("… the Council of the European Union") than it trimmed.
Measured on SQuAD articles used for fitting (see rag_eval/fit.py and eval/README.md).
"""

from __future__ import annotations

import re

from rag.lexicon import CLAUSE_BREAK, STOPWORDS
from rag.question import Question
from rag.text import norm, words

ARTICLES = frozenset({"a", "an", "the"})


def _kind(token: str, question: Question) -> str:
    """'s' stopwords only, 'q' question words (and stopwords), 'n' new words."""
    ws = words(token)
    if all(w in STOPWORDS for w in ws):
        return "s"
    if all(w in STOPWORDS or norm(w) in question.asked for w in ws):
        return "q"
    return "n"


def tidy(text: str, start: int, end: int, question: Question) -> tuple[int, int]:
    """Offsets of the tidied span inside `text` (never empty; unchanged when nothing applies)."""
    first = re.search(r"\S+", text[start:end])
    if not first:
        return start, end
    m = CLAUSE_BREAK.search(text, start + first.start() + 1, end)
    if m:
        end = m.start()
    tokens = [(t.start() + start, t.end() + start) for t in re.finditer(r"\S+", text[start:end])]
    kinds = [_kind(text[s:e], question) for s, e in tokens]
    i = 0
    while i < len(tokens) - 1 and kinds[i] != "n":
        i += 1
    if "q" not in kinds[:i]:
        i = 0
    while i > 0 and text[tokens[i - 1][0] : tokens[i - 1][1]].lower() in ARTICLES:
        i -= 1  # "the former chamber", not "former chamber"
    j = len(tokens)  # trailing question words stay: answers often end in them ("… of the European Union")
    if not tokens:
        return start, end
    s, e = tokens[i][0], tokens[j - 1][1]
    while e > s and text[e - 1] in ",.;:!?\"')\u201d" and not re.search(r"(?:\b[A-Za-z]\.){2,}$", text[s:e]):
        if text[e - 1] == ")" and text[s:e].count("(") >= text[s:e].count(")"):
            break  # a closing parenthesis that closes one of the span's own
        e -= 1
    while s < e and text[s] in "\"'(\u201c":
        s += 1
    return (s, e) if e > s else (tokens[i][0], tokens[j - 1][1])
