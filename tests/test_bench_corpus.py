"""rag_eval.bench.corpus: the synthetic corpus and the scaled-up vectors (no models)."""

from __future__ import annotations

import random

import pytest

from rag.chunking import chunk_document
from rag.documents import load_document
from rag_eval.bench import corpus as bench

SENTENCES = [
    "Microsoft President Brad Smith met China's Minister of Commerce, Wang Wentao, on December 6, 2023.",
    "The talks covered artificial intelligence and trade between the United States and Beijing.",
    "Tesla CEO Elon Musk also visited China, where Tesla operates one of its largest factories.",
    "Both sides said they would keep talking.",
    "Apple CEO Tim Cook visited China in 2023 as well.",
]


def test_synthetic_names_are_unique_and_pronounceable():
    names = [bench.synthetic_name(i) for i in range(20_000)]
    assert len(set(names)) == len(names)
    assert all(n.isalpha() and n[0].isupper() and len(n) == 8 for n in names)


def test_perturbed_sentence_varies_names_and_numbers_or_gains_a_place():
    rng = random.Random(1)
    names = {"Brad": "Kovi", "Smith": "Talu", "Wang": "Rema", "Wentao": "Sofi", "China": "Dune",
             "Commerce": "Pala", "December": "Bosa", "Minister": "Lira", "Microsoft": "Vexa"}  # fmt: skip
    varied = bench.perturb_sentence(SENTENCES[0], names, rng, "Zanu")
    assert "Brad" not in varied and "Kovi" in varied and "Vexa" in varied
    assert "2023" not in varied or "6" not in varied.split("Bosa")[1][:3]
    plain = bench.perturb_sentence(SENTENCES[3], names, rng, "Zanu")
    assert plain == "In Zanu, both sides said they would keep talking."


def test_synthetic_documents_are_distinct_and_deterministic():
    corpus = bench.SyntheticCorpus(SENTENCES, seed=3)
    docs = corpus.documents(40)
    assert len({doc_id for doc_id, _ in docs}) == 40
    assert len({text for _, text in docs}) == 40
    assert bench.SyntheticCorpus(SENTENCES, seed=3).documents(40) == docs
    assert bench.SyntheticCorpus(SENTENCES, seed=4).documents(40) != docs


def test_synthetic_documents_chunk_into_distinct_chunks(tmp_path):
    corpus = bench.SyntheticCorpus(SENTENCES)
    chunks = []
    for doc_id, text in corpus.documents(30):
        path = tmp_path / doc_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
        chunks += chunk_document(load_document(path, tmp_path), 160, 0)
    texts = [c.text for c in chunks]
    assert len(texts) > 60
    assert len(set(texts)) == len(texts)


def test_synthetic_chunk_texts_hit_the_count_and_respect_the_size():
    corpus = bench.SyntheticCorpus(SENTENCES)
    chunks = corpus.chunk_texts(500, 200)
    assert len(chunks) == 500
    assert len({text for _, text in chunks}) == 500
    longest_sentence = max(len(s) for s in SENTENCES) + 40  # names and numbers change lengths a little
    assert all(len(text) <= max(200, longest_sentence) for _, text in chunks)


def test_group_sentences_never_exceeds_the_size_unless_one_sentence_does():
    assert bench.group_sentences(["aaaa.", "bbbb.", "cccc."], 11) == ["aaaa. bbbb.", "cccc."]
    assert bench.group_sentences(["x" * 30 + "."], 10) == ["x" * 30 + "."]
    assert bench.group_sentences([], 10) == []


def test_synthetic_corpus_needs_sentences():
    with pytest.raises(ValueError):
        bench.SyntheticCorpus(["  ", ""])


def test_tile_count():
    assert bench.tile_count(150, 10_000) == 9_850
    assert bench.tile_count(20_000, 10_000) == 0


def test_chunk_texts_can_start_after_the_documents_already_ingested():
    corpus = bench.SyntheticCorpus(SENTENCES)
    early = {text for _, text in corpus.chunk_texts(100, 200)}
    late = corpus.chunk_texts(100, 200, first_doc=1000)
    assert all(doc_id >= "synthetic/001000.txt" for doc_id, _ in late)
    assert not early & {text for _, text in late}


def test_scaled_vectors_keep_the_real_rows_and_stay_unit_length():
    import numpy as np

    rng = np.random.default_rng(0)
    real = rng.standard_normal((7, 16)).astype(np.float32)
    real /= np.linalg.norm(real, axis=1, keepdims=True)
    scaled = bench.scaled_vectors(real, 50)
    assert scaled.shape == (50, 16) and scaled.dtype == np.float32
    assert np.allclose(scaled[:7], real)
    assert np.allclose(np.linalg.norm(scaled, axis=1), 1, atol=1e-5)
    assert len({row.tobytes() for row in scaled}) == 50
    assert bench.scaled_vectors(real, 5).shape == (5, 16)
