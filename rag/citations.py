"""Numbered passages, the grammars that keep the model inside them, and exact citation spans."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag import contract
from rag.chunking import split_sentences
from rag.contract import MARKER
from rag.prompts import Templates, gbnf_literal
from rag.retrieval import Passage
from rag.text import norm


@dataclass(frozen=True)
class Word:
    text: str
    start: int  # offsets inside the passage text
    end: int
    sentence_end: bool


@dataclass
class Numbered:
    """A retrieved passage as the model sees it: [n] text."""

    n: int
    passage: Passage
    words: list[Word] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # sentence offsets inside the passage

    @property
    def text(self) -> str:
        return self.passage.chunk.text

    def sentences(self) -> list[tuple[int, int]]:
        return self.spans


def number_passages(passages: list[Passage]) -> list[Numbered]:
    """Passages as the model sees them, each split into sentences and words once."""
    numbered = []
    for n, p in enumerate(passages, 1):
        text = p.chunk.text
        spans = split_sentences(text)
        ends = {e for _, e in spans}
        words = [Word(m.group(), m.start(), m.end(), m.end() in ends) for m in re.finditer(r"\S+", text)]
        numbered.append(Numbered(n, p, words, spans))
    return numbered


@dataclass
class Citation:
    """A cited span while answering; `to_contract()` is what leaves the pipeline."""

    n: int
    passage: Passage
    start: int  # exact cited span, offsets into the original document
    end: int
    quote: str

    def to_contract(self) -> contract.Citation:
        c = self.passage.chunk
        return contract.Citation(
            n=self.n,
            source=c.doc_id,
            chunk_id=c.chunk_id,
            start=self.start,
            end=self.end,
            text=c.text,
            score=round(self.passage.score, 6),
            quote=self.quote,
            passage_start=c.start,
            passage_end=c.end,
            page=getattr(c, "page", None),
        )


def span_citation(item: Numbered, start: int, end: int) -> Citation:
    """Citation for passage-relative offsets [start, end)."""
    base = item.passage.chunk.start
    return Citation(item.n, item.passage, base + start, base + end, item.text[start:end])


# --- extractive mode ----------------------------------------------------------------------------


def extractive_grammar(
    templates: Templates,
    template: str,
    numbered: list[Numbered],
    window: tuple[int, int] | None = None,
    avoid_start: set[str] | None = None,
    near: set[str] | None = None,
    before: int = 3,
    after: int = 8,
    windows: dict[int, tuple[int, int]] | None = None,
    parts: int = 1,
) -> str:
    """GBNF: "[n] " + consecutive words of passage n, ending at or before a sentence end.

    `window` limits the words to passage-relative offsets [start, end) (one sentence); `windows` does
    the same per passage number (several candidate sentences, one per passage);
    `avoid_start` lists lower-cased words the span may not start with (words of the question),
    so the model cannot answer by echoing the question; `near` (normalised question terms) keeps
    the start within a few words of where the sentence matches the question, since answers sit next
    to the words that match the question and small models otherwise copy from the sentence start.
    """
    choices, rules = [], []
    for item in numbered:
        win = windows.get(item.n) if windows else window
        idx = [i for i, w in enumerate(item.words) if win is None or (w.start >= win[0] and w.end <= win[1])]
        if not idx:
            continue
        prefix = f"p{item.n}w"
        starts = [i for i in idx if _bare(item.words[i].text) not in (avoid_start or set())] or idx
        if near is not None:
            hits = [i for i in idx if norm(item.words[i].text) in near]
            close = [i for i in starts if any(h - before <= i <= h + after for h in hits)]
            starts = close or starts
        choices.append(f'"{item.n}] " ( {" | ".join(f"{prefix}{i}" for i in starts)} )')
        for i in idx:
            w = item.words[i]
            literal = gbnf_literal(w.text)
            if w.sentence_end or i == idx[-1]:
                rules.append(f"{prefix}{i} ::= {literal}")
            else:
                rules.append(f'{prefix}{i} ::= {literal} (" " {prefix}{i + 1})?')
    if not choices:
        raise ValueError("no passage has any words to cite")
    return templates.render(template, choices=" | ".join(choices), span_rules="\n".join(rules), parts=parts)


_TRAILING = ".,;:!?\"')\u201d"


def _trim_punctuation(text: str, start: int, end: int) -> int:
    """Trailing punctuation is not part of an answer, but the dot of an initialism ("U.S.") is."""
    while end > start and text[end - 1] in _TRAILING:
        if text[end - 1] == "." and re.search(r"(?:\b[A-Za-z]\.){2,}$", text[start:end]):
            break
        end -= 1
    return end


def _bare(word: str) -> str:
    return re.sub(r"['\u2019]s$", "", word.strip(".,;:!?\"'()[]").lower())


def parse_extractive(
    output: str,
    numbered: list[Numbered],
    window: tuple[int, int] | None = None,
    windows: dict[int, tuple[int, int]] | None = None,
) -> Citation | None:
    """Map "[n] words…" back to exact offsets; None if it does not copy passage n."""
    m = re.match(rf"\s*{MARKER.pattern}\s*(.*)", output, re.DOTALL)
    if not m:
        return None
    n, tokens = int(m.group(1)), m.group(2).split()
    item = next((x for x in numbered if x.n == n), None)
    if item is None or not tokens:
        return None
    if windows is not None:
        window = windows.get(n)
        if window is None:
            return None
    texts = [w.text for w in item.words]
    for i in range(len(texts) - len(tokens) + 1):
        if window is not None and item.words[i].start < window[0]:
            continue
        seq = texts[i : i + len(tokens)]
        # the last word may be cut short when generation hit its token limit
        if seq[:-1] == tokens[:-1] and seq[-1].startswith(tokens[-1]):
            last = item.words[i + len(tokens) - 1]
            whole = seq[-1] == tokens[-1] or seq[-1].rstrip(_TRAILING) == tokens[-1]
            if whole:
                end = last.start + len(tokens[-1])
            elif len(tokens) > 1:  # generation stopped mid-word: drop the cut-off word rather than cite half of it
                end = item.words[i + len(tokens) - 2].end
            else:
                end = last.start + len(tokens[-1])
            start = item.words[i].start
            end = _trim_punctuation(item.text, start, end)
            return span_citation(item, start, end)
    return None


# --- generative mode ------------------------------------------------------------------------------


def generative_grammar(templates: Templates, template: str, numbers: list[int], refusal: str) -> str:
    choices = " | ".join(f'"{n}"' for n in numbers)
    return templates.render(template, numbers=choices, refusal=gbnf_literal(refusal))


def split_claims(output: str) -> list[tuple[str, list[int]]]:
    """Sentences of a generative answer with the passage numbers each one cites."""
    claims = []
    for m in re.finditer(r"[^\[\]]*?(?:\s*\[\d+\])+\.?", output):
        sentence = m.group().strip()
        numbers = contract.find_markers(sentence)
        text = MARKER.sub("", sentence).strip().rstrip(".").strip()
        if text:
            claims.append((text, numbers))
    return claims
