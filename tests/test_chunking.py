import pytest

from rag.chunking import chunk_document, split_sentences
from rag.documents import load_document

from .conftest import SEED_FILE, SEEDS


@pytest.mark.parametrize("size,overlap", [(80, 0), (200, 0), (320, 0), (320, 150), (600, 200), (2000, 0)])
def test_chunk_offsets_round_trip_to_the_original_file(size, overlap):
    doc = load_document(SEED_FILE, SEEDS)
    original = SEED_FILE.read_text("utf-8")
    chunks = chunk_document(doc, size, overlap)
    assert chunks
    for c in chunks:
        assert original[c.start : c.end] == c.text
        assert c.text == c.text.strip()
        assert "Subscri" not in c.text
    assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_every_kept_sentence_is_in_some_chunk():
    doc = load_document(SEED_FILE, SEEDS)
    chunks = chunk_document(doc, 200, 0)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    for seg in doc.segments:
        for s, e in split_sentences(doc.text, seg.start, seg.end):
            assert s in covered and e - 1 in covered


def test_sentences_do_not_split_on_initialisms_or_titles():
    text = "A meeting between U.S. President Joe Biden and Mr. Xi took place. It went well! Did it? Yes."
    spans = [text[s:e] for s, e in split_sentences(text)]
    assert spans == [
        "A meeting between U.S. President Joe Biden and Mr. Xi took place.",
        "It went well!",
        "Did it?",
        "Yes.",
    ]


def test_chunks_respect_size_unless_a_single_sentence_is_longer():
    doc = load_document(SEED_FILE, SEEDS)
    for c in chunk_document(doc, 200, 0):
        sentences = split_sentences(doc.text, c.start, c.end)
        assert c.end - c.start <= 200 or len(sentences) == 1


def test_overlap_repeats_trailing_sentences(tmp_path):
    text = " ".join(f"Sentence number {i} is here." for i in range(12))  # 26-27 chars each
    (tmp_path / "s.txt").write_text(text)
    doc = load_document(tmp_path / "s.txt", tmp_path)
    plain = chunk_document(doc, 90, 0)
    overlapped = chunk_document(doc, 90, 30)
    assert all(a.end < b.start for a, b in zip(plain, plain[1:]))
    assert len(overlapped) > len(plain)
    for a, b in zip(overlapped, overlapped[1:]):
        assert b.start < a.end  # the last sentence of a is repeated at the start of b
        assert text[b.start : a.end].startswith("Sentence number")
