"""Follow-up questions ("and when was that?", "who translated it?") made searchable with the previous turn.

A follow-up leans on the previous turn for its subject, so on its own it retrieves poorly: "who
translated it?" has one content word. When a question looks like a follow-up, a few content words
of the previous turn (its answer unless it was refused, then its searched question) are appended in
lower case. Lower case on purpose: the embedder (uncased MiniLM) and BM25 (lower-cased terms) see
the same words either way, but the refusal checks treat capitalised words in a question as names
the cited sentence must contain, and borrowed context must not become such a requirement.

A question that stands on its own (enough content words, no pronoun pointing back, no leading
"and") is never touched: rewriting it only adds noise. Nor is a follow-up with a word of its own
that occurs in a single passage of the collection ("who translated it?" when one passage says
"translated"): that word already finds the passage, and borrowed words would only pull the search
back to the previous answer's passage. eval/followups.jsonl holds the pairs used to check that the
rewrite helps (tests/test_ui_followups.py measures retrieval with the real index).

Pure functions, no model: the UI and the API can both call `rewrite`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rag.contract import strip_markers
from rag.lexicon import FOLLOWUP_CONNECTOR as _CONNECTOR
from rag.lexicon import FOLLOWUP_GENERIC_WORDS as _GENERIC
from rag.lexicon import QUESTION_WORDS, STOPWORDS
from rag.lexicon import REFERENCE_WORDS as REFERENCES
from rag.text import counted, stem, terms, words

PassageFrequency = Callable[[str], int]  # word -> number of passages holding it (stemmed)

MAX_OWN_TERMS = 3  # a question with more content words of its own than this is taken as standalone
MAX_WORDS = 2  # "when?", "how much?", "and Tesla?": too short to stand alone
MAX_ADDED = 3  # borrowed context words, at most: more drown the follow-up's own words
SPECIFIC_MAX_PASSAGES = 1  # an own word in at most this many passages pins the answer: no rewrite


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: what was searched (the rewritten question, if it was rewritten) and the answer."""

    query: str
    answer: str | None = None
    refused: bool = False


@dataclass(frozen=True)
class Rewrite:
    question: str  # as asked
    query: str  # what to search with (== question when not rewritten)
    applied: bool
    added: list[str] = field(default_factory=list)
    reason: str = ""


def content_words(text: str) -> list[str]:
    """Lower-cased content words in order, without duplicates (no stemming: the search does its own)."""
    out: list[str] = []
    for w in words(strip_markers(text)):
        if w in STOPWORDS or w in QUESTION_WORDS or w in REFERENCES or w in _GENERIC or len(w) < 2:
            continue
        if w not in out:
            out.append(w)
    return out


def followup_cue(question: str) -> str | None:
    """Why `question` looks like it depends on the previous turn, or None if it stands on its own."""
    q = question.strip()
    if not q:
        return None
    own = content_words(q)
    if _CONNECTOR.match(q):
        return "starts with a connector"
    if len(words(q)) <= MAX_WORDS:
        return "too short to stand alone"
    pointers = [w for w in words(q) if w in REFERENCES]
    if pointers and len(own) <= MAX_OWN_TERMS:
        return f"refers back ({pointers[0]!r}) with {counted(len(own), 'content word')} of its own"
    if not own:
        return "no content words of its own"
    return None


def is_followup(question: str) -> bool:
    return followup_cue(question) is not None


def passage_frequency(texts: Iterable[str]) -> PassageFrequency:
    """How many of `texts` hold a word (compared stemmed, as BM25 does)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(terms(text)))
    return lambda word: counts.get(stem(word), 0)


def rewrite(
    question: str,
    history: Sequence[Turn] | Iterable[Turn],
    frequency: PassageFrequency | None = None,
) -> Rewrite:
    """The query to search with: `question` plus a few words of the previous turn when it is a follow-up.

    `frequency` (see `passage_frequency`) lets a follow-up whose own words already pin a passage
    stay as it is; without it only the wording of the question decides.
    """
    history = list(history)
    cue = followup_cue(question)
    if cue is None or not history:
        return Rewrite(question, question, False, reason=cue and "no previous turn" or "stands on its own")
    own_words = content_words(question)
    if frequency is not None:
        specific = [w for w in own_words if 1 <= frequency(w) <= SPECIFIC_MAX_PASSAGES]
        if specific:
            return Rewrite(question, question, False, reason=f"{specific[0]!r} already pins a passage")
    previous = history[-1]
    own = set(own_words)
    # The previous answer first: it names what "it"/"he"/"those" most likely points at.
    context = content_words(previous.answer) if previous.answer and not previous.refused else []
    context += content_words(previous.query)
    added = []
    for w in context:
        if w not in own and w not in added:
            added.append(w)
    added = added[:MAX_ADDED]
    if not added:
        return Rewrite(question, question, False, reason="previous turn adds no content words")
    base = _CONNECTOR.sub("", question.strip()).strip() or question.strip()
    base = base[0].upper() + base[1:]
    query = f"{base} ({' '.join(added)})"
    return Rewrite(question, query, True, added, cue)
