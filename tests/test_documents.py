import logging

import pytest

from rag.documents import CorpusError, is_boilerplate, load_corpus, load_document, scan_corpus

from .conftest import SEED_FILE, SEEDS


def test_seed_paywall_prompt_is_dropped_and_content_kept():
    doc = load_document(SEED_FILE, SEEDS)
    kept = [doc.text[s.start : s.end] for s in doc.segments]
    dropped = [doc.text[s.start : s.end] for s in doc.dropped]
    assert dropped == [
        "Become a Subscriber",
        "Please purchase a subscription to continue reading this article.",
        "Subscribe Now",
    ]
    assert kept[0].startswith("Microsoft President Brad Smith Advances Collaboration in China")
    assert any("translated by Youdao" in k for k in kept)
    assert not any("subscri" in k.lower() for k in kept)


@pytest.mark.parametrize(
    "line",
    [
        "Sign up for our newsletter",
        "Log in to keep reading",
        "We use cookies to improve your experience. Accept all",
        "Click here to read more",
        "Advertisement",
        "© 2023 Example News. All rights reserved.",
    ],
)
def test_generic_calls_to_action_are_boilerplate(line):
    assert is_boilerplate(line)


@pytest.mark.parametrize(
    "line",
    [
        "Microsoft President Brad Smith Advances Collaboration in China, Focusing on AI & Trade Relations",
        "Netflix said the number of paying subscribers rose by 13 million in the quarter, beating analysts' "
        "forecasts and lifting its shares in after-hours trading.",
    ],
)
def test_content_lines_are_kept(line):
    assert not is_boilerplate(line)


def test_offsets_point_into_original(tmp_path):
    text = "  Title line  \n\nFirst para. Second sentence.\r\nSubscribe now!\n"
    (tmp_path / "a.txt").write_text(text)
    doc = load_document(tmp_path / "a.txt", tmp_path)
    assert [text[s.start : s.end] for s in doc.segments] == ["Title line", "First para. Second sentence."]


def test_doc_id_is_relative_path_and_sha256_is_of_bytes(tmp_path):
    import hashlib

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# Heading\n\nBody text here.")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF")
    corpus = scan_corpus(tmp_path)
    docs = corpus.documents
    assert [d.doc_id for d in docs] == ["sub/b.md"]
    assert [p.name for p in corpus.problems] == ["broken.pdf"] and "damaged PDF" in corpus.problems[0].reason
    assert docs[0].sha256 == hashlib.sha256((tmp_path / "sub" / "b.md").read_bytes()).hexdigest()


def test_binary_and_non_utf8_files_are_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "good.txt").write_text("Real content lives here.")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    with caplog.at_level(logging.WARNING):
        docs = load_corpus(tmp_path)
    assert [d.doc_id for d in docs] == ["good.txt"]
    assert "latin1.txt" in caplog.text and "not valid UTF-8" in caplog.text
    assert "blob.txt" in caplog.text and "binary" in caplog.text


def test_empty_or_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="no documents in"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
