import json

import pytest

from rag import index as index_mod
from rag.index import IndexCorrupt, IndexMismatch, IndexMissing, VectorIndex
from rag.pipeline import index_expectations, run_ingest
from rag.settings import Settings

from .support.fakes import KeywordEmbedder


def test_manifest_describes_the_index(settings, keyword_embedder):
    idx, report = run_ingest(settings, keyword_embedder)
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest["format_version"] == index_mod.FORMAT_VERSION
    assert manifest["embedder"] == "keyword-fake@1" and manifest["dim"] == 64
    assert manifest["chunking"] == {"chunk_size": settings.chunk_size, "chunk_overlap": 0, "splitter": "blocks-v2"}
    ((doc_id, meta),) = manifest["documents"].items()
    assert len(meta["sha256"]) == 64 and meta["chunks"] == len(idx) == report.chunks_added
    assert report.added == [doc_id]


def test_missing_index_says_how_to_build_it(settings, keyword_embedder):
    with pytest.raises(IndexMissing, match="rag ingest"):
        VectorIndex.load(settings.index_dir)


def test_mismatched_embedder_or_chunking_is_refused_then_rebuilt(settings, keyword_embedder):
    run_ingest(settings, keyword_embedder)
    other = KeywordEmbedder()
    other.id = "another-model@2"
    with pytest.raises(IndexMismatch, match="embedder='keyword-fake@1'.*rag ingest"):
        VectorIndex.load(settings.index_dir, index_expectations(settings, other))
    resized = settings.model_copy(update={"chunk_size": 150})
    with pytest.raises(IndexMismatch, match="chunking"):
        VectorIndex.load(settings.index_dir, index_expectations(resized, keyword_embedder))
    idx, report = run_ingest(resized, keyword_embedder)
    assert report.rebuilt_because and "chunking" in report.rebuilt_because
    assert (
        VectorIndex.load(settings.index_dir, index_expectations(resized, keyword_embedder)).manifest["chunking"][
            "chunk_size"
        ]
        == 150
    )


def test_format_version_mismatch(settings, keyword_embedder):
    run_ingest(settings, keyword_embedder)
    path = settings.index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["format_version"] = 999
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="format version 999"):
        VectorIndex.load(settings.index_dir)


@pytest.mark.parametrize("damage", ["manifest", "chunks", "vectors"])
def test_corrupted_index_gives_clear_message_and_ingest_repairs_it(settings, keyword_embedder, damage):
    run_ingest(settings, keyword_embedder)
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    target = settings.index_dir / ("manifest.json" if damage == "manifest" else manifest["files"][damage])
    target.write_bytes(b"\x00garbage{")
    with pytest.raises(IndexCorrupt, match="rag ingest"):
        VectorIndex.load(settings.index_dir)
    idx, report = run_ingest(settings, keyword_embedder)
    assert report.rebuilt_because
    assert len(VectorIndex.load(settings.index_dir)) == len(idx) > 0


def test_incremental_add_change_delete(settings, keyword_embedder):
    seeds = settings.seeds_dir
    idx, _ = run_ingest(settings, keyword_embedder)
    base_chunks = len(idx)

    counting = KeywordEmbedder()
    idx, report = run_ingest(settings, counting)
    assert counting.texts_embedded == 0 and report.unchanged and not (report.added or report.changed)

    (seeds / "notes.md").write_text("# Notes\n\nThe Youdao engine rendered the statement. It was quick.")
    idx, report = run_ingest(settings, counting)
    # a heading is never a passage on its own: it is the heading path of the chunk below it
    assert report.added == ["notes.md"] and counting.texts_embedded == report.chunks_added == 1
    assert len(idx) == base_chunks + 1
    (note,) = [c for c in idx.chunks if c.doc_id == "notes.md"]
    assert note.heading == "Notes" and note.search_text.startswith("Notes\n")

    counting.texts_embedded = 0
    (seeds / "notes.md").write_text("# Notes\n\nA single replaced line.")
    idx, report = run_ingest(settings, counting)
    assert report.changed == ["notes.md"] and report.chunks_removed == 1 and counting.texts_embedded == 1
    assert [c.text for c in idx.chunks if c.doc_id == "notes.md"] == ["A single replaced line."]

    (seeds / "notes.md").unlink()
    idx, report = run_ingest(settings, counting)
    assert report.removed == ["notes.md"] and len(idx) == base_chunks
    reloaded = VectorIndex.load(settings.index_dir)
    assert "notes.md" not in reloaded.documents and all(c.doc_id != "notes.md" for c in reloaded.chunks)
    assert len(list(settings.index_dir.glob("*.faiss"))) == 1  # old generations are cleaned up


def test_crash_while_writing_leaves_previous_index_usable(settings, keyword_embedder, monkeypatch):
    idx, _ = run_ingest(settings, keyword_embedder)
    before = [c.text for c in idx.chunks]
    (settings.seeds_dir / "new.txt").write_text("Fresh document about trade talks.")
    real_write = index_mod._atomic_write_bytes  # noqa: SLF001 - wrapped to crash mid-write

    def crash_on_manifest(path, data):
        if path.name == "manifest.json":
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(index_mod, "_atomic_write_bytes", crash_on_manifest)
    with pytest.raises(OSError):
        run_ingest(settings, keyword_embedder)
    assert [c.text for c in VectorIndex.load(settings.index_dir).chunks] == before


def test_settings_reject_overlap_not_smaller_than_size(tmp_path):
    with pytest.raises(ValueError, match="chunk_overlap"):
        Settings(chunk_size=100, chunk_overlap=100)


def test_ingest_embeds_longest_first_and_keeps_each_vector_on_its_text(keyword_embedder, monkeypatch):
    """embed_all: groups of similar lengths (less padding), every row the vector of its own text."""
    texts = [("word " * n).strip() + f" t{n}" for n in (3, 40, 7, 90, 1, 55, 12, 70, 2)]
    batches: list[list[str]] = []

    class Recording(KeywordEmbedder):
        def embed(self, part):
            batches.append(list(part))
            return super().embed(part)

    reported: list[int] = []
    monkeypatch.setattr(index_mod, "EMBED_GROUP", 4)
    vectors = index_mod.embed_all(texts, Recording(), reported.append)
    assert [len(b) for b in batches] == [4, 4, 1] and reported == [4, 4, 1]
    lengths = [len(t) for b in batches for t in b]
    assert lengths == sorted(lengths, reverse=True)
    assert vectors.shape == (len(texts), keyword_embedder.dim)
    assert (vectors == keyword_embedder.embed(texts)).all()
    assert index_mod.embed_all([], keyword_embedder).shape == (0, keyword_embedder.dim)
