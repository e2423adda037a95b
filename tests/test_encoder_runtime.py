"""The encoder under ONNX Runtime (rag/encoder.py, RAG_ENCODER_RUNTIME=onnx, the default) answers as under
torch: embeddings at cosine >= 0.99 (they agree to ~1e-7), reader spans identical and margins to 1e-4; the
reader's `tokenizers` windows are exactly those of transformers' tokenizer (what training used)."""

from __future__ import annotations

import numpy as np
import pytest

from rag.embedding import bundled_embedder_path

QUESTION = "When did Brad Smith meet Wang Wentao?"
PASSAGES = [
    "Brad Smith, Microsoft's president, met Wang Wentao, China's commerce minister, on December 6, 2023 in Beijing.",
    "The meeting was about trade. " * 40 + "It ended on a Thursday, in the afternoon, after three hours.",
    "Unrelated: the weather in Paris was mild.",
]


def test_reader_windows_are_the_training_tokenizers():
    """`tokenizers` directly (no transformers at answering time) cuts question + passage into the same windows
    as `encode_pairs` over transformers' tokenizer: ids, segments, offsets and which passage each window reads."""
    from rag.encoder import tokenizer
    from rag.reader import ReaderModel, encode_pairs, tokenizer_for

    base = bundled_embedder_path()
    reader = ReaderModel(None, tokenizer(base), {"max_length": 96, "stride": 32})
    hf = encode_pairs(tokenizer_for(base), [QUESTION] * len(PASSAGES), PASSAGES, 96, 32)
    windows = []
    for i, encoding in enumerate(reader.pairs.encode_batch([(QUESTION, p) for p in PASSAGES])):
        windows += [(i, w) for w in (encoding, *encoding.overflowing)]
    assert len(windows) == len(hf["input_ids"]) > len(PASSAGES)  # the long passage is read in several windows
    for w, (i, window) in enumerate(windows):
        assert i == hf["overflow_to_sample_mapping"][w]
        assert window.ids == hf["input_ids"][w] and window.type_ids == hf["token_type_ids"][w]
        assert [tuple(o) for o in window.offsets] == [tuple(o) for o in hf["offset_mapping"][w]]
        assert window.sequence_ids == hf.sequence_ids(w)
    long_question = " ".join(["word"] * 200)
    assert len(reader.tokenizer.encode(long_question).ids) == len(tokenizer_for(base)(long_question)["input_ids"])


def test_an_export_is_named_by_the_weights_hash_and_the_hash_is_remembered(tmp_path):
    """Other weights, another export name; the same file (size and mtime unchanged) is not hashed again."""
    import json
    import os

    from rag.encoder import DIGESTS, _file_digest, weights_key

    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    first = weights_key([weights], tmp_path / "cache")
    assert first == weights_key([weights], tmp_path / "cache")
    assert weights_key([weights], tmp_path / "cache", extra=b"reader") != first
    book = json.loads((tmp_path / "cache" / DIGESTS).read_text())
    assert list(book) == [str(weights.resolve())]
    _file_digest.cache_clear()
    book[str(weights.resolve())]["sha256"] = "remembered"  # the book is trusted while size and mtime hold
    (tmp_path / "cache" / DIGESTS).write_text(json.dumps(book))
    assert weights_key([weights], tmp_path / "cache") != first
    weights.write_bytes(b"b" * 1000)
    os.utime(weights, ns=(1, 1))  # new content, same size: the mtime differs, so it is hashed again
    changed = weights_key([weights], tmp_path / "cache")
    assert changed != first and changed == weights_key([weights], tmp_path / "other")  # hashed, not remembered
    assert json.loads((tmp_path / "cache" / DIGESTS).read_text())[str(weights.resolve())]["sha256"] != "remembered"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.slow
def test_onnx_embedder_agrees_with_sentence_transformers(cache):
    from rag.embedding import SentenceTransformerEmbedder, open_embedder
    from rag.encoder import OnnxEmbedder
    from rag.settings import IndexSettings

    settings = IndexSettings(onnx_cache_dir=cache, embed_batch_size=2)
    onnx = open_embedder(settings)
    assert isinstance(onnx, OnnxEmbedder) and list(cache.glob("encoder-*.onnx"))
    torch = SentenceTransformerEmbedder(settings)
    texts = [QUESTION, *PASSAGES, "", "x", PASSAGES[1] * 3]  # the last is cut at max_seq_length (256), as there
    a, b = onnx.embed(texts), torch.embed(texts)
    assert onnx.id == torch.id and a.shape == b.shape == (len(texts), 384) and a.dtype == np.float32
    assert (a * b).sum(axis=1).min() >= 0.99 and np.abs(a - b).max() < 1e-5
    assert onnx.embed([]).shape == (0, 384)
    again = open_embedder(settings)  # the export is reused, not made again
    assert len(list(cache.glob("encoder-*.onnx"))) == 1 and np.array_equal(again.embed(texts), a)


@pytest.mark.slow
def test_onnx_reader_agrees_with_torch(cache):
    from rag.prompts import Templates
    from rag.reader import OnnxNet, ReaderModel, TorchNet

    onnx = ReaderModel.load(Templates(), bundled_embedder_path(), runtime="onnx", cache_dir=cache)
    torch = ReaderModel.load(Templates(), bundled_embedder_path(), runtime="torch")
    assert isinstance(onnx.net, OnnxNet) and isinstance(torch.net, TorchNet)
    for question in (QUESTION, "What ended on a Thursday?", "Who won the 1998 World Cup?"):
        a, b = onnx.read(question, PASSAGES), torch.read(question, PASSAGES)
        assert [(s.passage, s.start, s.end) for s in a.spans] == [(s.passage, s.start, s.end) for s in b.spans]
        assert np.allclose([s.margin for s in a.spans], [s.margin for s in b.spans], atol=1e-4)
        assert np.allclose([s.score for s in a.spans], [s.score for s in b.spans], atol=1e-4)
        assert np.allclose(a.null, b.null, atol=1e-4)
    best = onnx.read(QUESTION, PASSAGES).best
    assert "December 6, 2023" in PASSAGES[best.passage][best.start : best.end]


def test_prepare_reader_does_nothing_when_the_reader_is_off_or_under_torch(tmp_path):
    from rag.pipeline import prepare_reader
    from rag.settings import Settings

    assert prepare_reader(Settings(reader="off", onnx_cache_dir=tmp_path)) is None
    assert prepare_reader(Settings(encoder_runtime="torch", onnx_cache_dir=tmp_path)) is None
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_ingest_prepares_the_reader_export_so_the_first_serve_does_not_pay_for_it(tmp_path, monkeypatch, capsys):
    """`rag ingest` leaves the reader's export in the cache (once); loading the reader then reuses it."""
    from rag.cli import main
    from rag.prompts import Templates
    from rag.reader import OnnxNet, ReaderModel

    from .conftest import ROOT

    cache = tmp_path / "onnx"
    monkeypatch.setenv("RAG_ONNX_CACHE_DIR", str(cache))
    args = ["ingest", "--seeds-dir", str(ROOT / "seeds"), "--index-dir", str(tmp_path / "index")]
    assert main(args) == 0
    (export,) = cache.glob("reader-*.onnx")
    capsys.readouterr()
    stamp = export.stat().st_mtime_ns
    assert main(args) == 0  # nothing to prepare the second time
    assert "prepared the reader" not in capsys.readouterr().err and export.stat().st_mtime_ns == stamp
    reader = ReaderModel.load(Templates(), bundled_embedder_path(), runtime="onnx", cache_dir=cache)
    assert isinstance(reader.net, OnnxNet) and list(cache.glob("reader-*.onnx")) == [export]
