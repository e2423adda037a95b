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


def _doc(tmp_path, text: str, name: str = "big.txt"):
    (tmp_path / name).write_text(text, "utf-8")
    return load_document(tmp_path / name, tmp_path)


def test_chunking_is_linear_in_document_length(tmp_path):
    """1 MB of short sentences with abbreviations took 133 s when every period re-scanned text[:dot]."""
    import time

    sentence = "Mr. Smith met Dr. Wang in the U.S. capital on Monday. They talked about trade. "
    text = "\n\n".join(sentence * 12 for _ in range(1_000_000 // (len(sentence) * 12)))
    doc = _doc(tmp_path, text)
    t0 = time.perf_counter()
    chunks = chunk_document(doc, 320, 0)
    seconds = time.perf_counter() - t0
    assert len(text) > 950_000 and seconds < 10, f"{seconds:.1f} s for 1 MB"
    assert all(text[c.start : c.end] == c.text and len(c.text) <= 320 for c in chunks)


@pytest.mark.parametrize("size", [50, 320, 1000])
def test_every_chunk_respects_chunk_size_even_without_sentence_ends(tmp_path, size):
    """A 1 MB line with no full stop used to become one chunk; now it is cut at word boundaries."""
    words = [f"word{i % 997}" for i in range(120_000)]
    text = " ".join(words) + " " + "x" * (size * 3)  # and one word longer than a chunk
    doc = _doc(tmp_path, text)
    chunks = chunk_document(doc, size, 0)
    assert all(len(c.text) <= size and text[c.start : c.end] == c.text for c in chunks)
    assert all(not c.text[0].isspace() and not c.text[-1].isspace() for c in chunks)
    body = [c for c in chunks if not c.text.startswith("x")]
    assert all(text[c.end] == " " for c in body)  # cut at a word boundary, never inside a word
    assert chunks[0].start == 0 and chunks[-1].end == len(text)  # nothing lost: only spaces between chunks
    assert all(a.end <= b.start and not text[a.end : b.start].strip() for a, b in zip(chunks, chunks[1:]))


def test_hard_wrapped_paragraph_is_one_paragraph(tmp_path):
    text = (
        "The committee met on Tuesday and agreed that the new\n"
        "warehouse in Porto will open in September, after the\n"
        "permits arrive.\n\nA second paragraph follows here."
    )
    doc = _doc(tmp_path, text)
    chunks = chunk_document(doc, 320, 0)
    assert [c.text for c in chunks] == [text.split("\n\n")[0], "A second paragraph follows here."]
    assert split_sentences(text, chunks[0].start, chunks[0].end) == [(chunks[0].start, chunks[0].end)]
