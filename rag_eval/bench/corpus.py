"""The synthetic corpus the bench ingests and searches at scale: the seed's sentences, shuffled and perturbed.

Pure text generation (standard library) plus the helpers that scale a really embedded index up to a size
(numpy imported inside). Deterministic in the seed, so two runs measure the same documents.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

_CONSONANTS = "bdfgklmnprstvzhj"


_VOWELS = "aeiou"


_SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]


_NAME_WIDTH = 4  # syllables per name: 80**4 (about 41 million) distinct names


_NAME_SPACE = len(_SYLLABLES) ** _NAME_WIDTH


_NAME_STRIDE = 7_919_003  # odd and not a multiple of 5, so coprime to the space: i -> name is one-to-one


def synthetic_name(i: int) -> str:
    """A pronounceable made-up name unique to `i` (< 80**4): a scrambled fixed-width base-80 number.

    Fixed width and two-letter syllables make the spelling unambiguous, and the scramble keeps
    neighbouring ids from sharing a prefix, so names look varied.
    """
    if not 0 <= i < _NAME_SPACE:
        raise ValueError(f"name id {i} out of range")
    n = (i * _NAME_STRIDE + 12345) % _NAME_SPACE
    digits = []
    for _ in range(_NAME_WIDTH):
        n, r = divmod(n, len(_SYLLABLES))
        digits.append(_SYLLABLES[r])
    return "".join(digits).capitalize()


_NUMBER = re.compile(r"\d+")


_PROPER_MID = re.compile(r"(?<=\s)[A-Z][a-z]{2,}\b")  # capitalised mid-sentence: a name, not a sentence start


_CAPITALISED = re.compile(r"\b[A-Z][a-z]{2,}\b")


def _random_like(number: str, rng: random.Random) -> str:
    digits = len(number)
    return str(rng.randrange(10 ** (digits - 1) if digits > 1 else 0, 10**digits))


def perturb_sentence(sentence: str, names: dict[str, str], rng: random.Random, place: str) -> str:
    """Vary a seed sentence: other numbers, this document's names; a document-unique place when nothing varied.

    The place guarantees every synthetic sentence holds a token unique to its document, so chunks never repeat.
    """
    varied = _NUMBER.sub(lambda m: _random_like(m.group(), rng), sentence)
    varied = _CAPITALISED.sub(lambda m: names.get(m.group(), m.group()), varied)
    if not _NUMBER.search(sentence) and not any(w in names for w in _CAPITALISED.findall(sentence)):
        varied = f"In {place}, {varied[:1].lower()}{varied[1:]}"
    return varied


class SyntheticCorpus:
    """Documents made from the seed's sentences: shuffled, perturbed, regrouped into paragraphs.

    Document `d` maps every name in the seed to its own made-up names and redraws every number, so its
    chunks differ from every other document's while reading like the seed (same vocabulary and length).
    """

    def __init__(self, sentences: list[str], seed: int = 0):
        self.sentences = list(dict.fromkeys(s.strip() for s in sentences if s.strip()))
        if not self.sentences:
            raise ValueError("no seed sentences to build a synthetic corpus from")
        self.proper = sorted({w for s in self.sentences for w in _PROPER_MID.findall(s)})
        self.seed = seed

    def paragraphs(self, d: int) -> tuple[str, list[list[str]]]:
        """Document `d`'s title and paragraphs (each a list of sentences); deterministic in (seed, d)."""
        rng = random.Random(self.seed * 1_000_003 + d)
        base = d * (len(self.proper) + 1)
        names = {w: synthetic_name(base + j + 1) for j, w in enumerate(self.proper)}
        place = synthetic_name(base)
        picked = rng.sample(self.sentences, max(1, round(len(self.sentences) * rng.uniform(0.6, 1.0))))
        body = [perturb_sentence(s, names, rng, place) for s in picked]
        paragraphs, i = [], 0
        while i < len(body):
            n = rng.randint(1, 4)
            paragraphs.append(body[i : i + n])
            i += n
        return f"Report {place}", paragraphs

    def document(self, d: int) -> tuple[str, str]:
        """(document id, text): the title line, then one paragraph per blank-line separated block."""
        title, paragraphs = self.paragraphs(d)
        text = title + "\n\n" + "\n\n".join(" ".join(p) for p in paragraphs) + "\n"
        return f"synthetic/{d:06d}.txt", text

    def documents(self, n_docs: int) -> list[tuple[str, str]]:
        return [self.document(d) for d in range(n_docs)]

    def chunk_texts(self, n_chunks: int, chunk_size: int, first_doc: int = 0) -> list[tuple[str, str]]:
        """`n_chunks` (doc id, text) chunks of documents `first_doc`, `first_doc + 1`…, grouped as rag.chunking
        groups sentences (whole sentences up to chunk_size characters, never across paragraphs) but without
        writing or re-splitting documents, which would dominate the time at 100k chunks."""
        out: list[tuple[str, str]] = []
        d = first_doc
        while len(out) < n_chunks:
            doc_id = f"synthetic/{d:06d}.txt"
            for paragraph in self.paragraphs(d)[1]:
                out.extend((doc_id, text) for text in group_sentences(paragraph, chunk_size))
            d += 1
        return out[:n_chunks]


def group_sentences(sentences: list[str], chunk_size: int) -> list[str]:
    """Consecutive sentences joined while the chunk stays within chunk_size (a long sentence stands alone)."""
    chunks, current = [], ""
    for s in sentences:
        if current and len(current) + 1 + len(s) > chunk_size:
            chunks.append(current)
            current = s
        else:
            current = f"{current} {s}" if current else s
    if current:
        chunks.append(current)
    return chunks


def seed_sentences(settings) -> list[str]:
    """Content sentences of the seed corpus (web furniture and fragments under five words left out)."""
    from rag.chunking import split_sentences
    from rag.documents import is_boilerplate, load_corpus

    out = []
    for doc in load_corpus(settings.seeds_dir):
        for seg in doc.segments:
            for a, b in split_sentences(doc.text, seg.start, seg.end):
                s = doc.text[a:b]
                if len(s.split()) >= 5 and not is_boilerplate(s):
                    out.append(s)
    return out


def write_synthetic_corpus(corpus: SyntheticCorpus, folder: Path, n_chunks: int, settings) -> int:
    """Write documents until they chunk to at least `n_chunks`; returns the number of documents."""
    from rag.chunking import chunk_document
    from rag.documents import load_document

    total, d = 0, 0
    while total < n_chunks:
        doc_id, text = corpus.document(d)
        path = folder / doc_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        total += len(chunk_document(load_document(path, folder), settings.chunk_size, settings.chunk_overlap))
        d += 1
    return d


def tile_count(have: int, want: int) -> int:
    """Rows to synthesise when scaling `have` real rows up to `want` (never negative)."""
    return max(0, want - have)


def scaled_vectors(real, n: int, seed: int = 0):
    """`n` unit vectors: the real ones first, then noisy copies of them (cosine ~0.9 to their source), so the
    scaled index has the real embedding distribution. Flat inner-product search costs the same for any vectors."""
    import numpy as np

    from rag.embedding import normalise

    extra = tile_count(len(real), n)
    rng = np.random.default_rng(seed)
    src = real[np.arange(extra) % len(real)]
    noise = rng.standard_normal(src.shape).astype(np.float32) * (0.5 / math.sqrt(real.shape[1]))
    return np.concatenate([real[:n], normalise(src + noise)]) if extra else real[:n]


def scaled_rows(real_index, corpus: SyntheticCorpus, n: int, chunk_size: int) -> tuple[list, object]:
    """Chunks and vectors for an `n`-chunk index: the real ingested chunks and vectors first, then synthetic
    chunk texts from documents the ingest did not use (so BM25 has distinct, real-looking text at that size)
    paired with perturbed copies of the real vectors."""
    from rag.chunking import Chunk

    chunks = list(real_index.chunks[:n])
    extra = corpus.chunk_texts(tile_count(len(chunks), n), chunk_size, first_doc=len(real_index.documents))
    for i, (doc_id, text) in enumerate(extra):
        chunks.append(Chunk(f"scaled/{doc_id}", f"scaled/{doc_id}#{i}", 0, len(text), text))
    return chunks, scaled_vectors(real_index.vectors, n)
