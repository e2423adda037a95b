"""The index under abuse: concurrent writers, damage that still parses, odd manifests, file modes, crash leftovers."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import threading

import numpy as np
import pytest

from rag.errors import RagError
from rag.index import LOCK, IndexBusy, IndexCorrupt, VectorIndex
from rag.pipeline import index_expectations, run_ingest

from .conftest import KeywordEmbedder


def manifest_of(settings) -> dict:
    return json.loads((settings.index_dir / "manifest.json").read_text())


def write_manifest(settings, manifest: dict) -> None:
    (settings.index_dir / "manifest.json").write_text(json.dumps(manifest))


def reseal(settings, manifest: dict) -> None:
    """Update the stored checksums to the files as they now are: damage a careless tool would leave."""
    files = manifest["files"]
    manifest["checksums"] = {
        k: hashlib.sha256((settings.index_dir / files[k]).read_bytes()).hexdigest() for k in ("chunks", "vectors")
    }
    write_manifest(settings, manifest)


def assert_rebuilt_and_whole(settings, embedder, original_texts: list[str]):
    _, report = run_ingest(settings, embedder)
    assert report.rebuilt_because or report.changed, report.summary()
    loaded = VectorIndex.load(settings.index_dir, index_expectations(settings, embedder))
    assert [c.text for c in loaded.chunks] == original_texts


# --- one writer at a time ----------------------------------------------------------------------------


class BlockingEmbedder(KeywordEmbedder):
    """Holds the first embed call until released, so a second ingest runs while the first is mid-way."""

    def __init__(self):
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed(self, texts):
        self.entered.set()
        self.release.wait(10)
        return super().embed(texts)


def test_a_second_ingest_while_one_runs_is_refused_and_the_index_stays_whole(settings):
    slow = BlockingEmbedder()
    result: dict = {}
    first = threading.Thread(target=lambda: result.update(first=run_ingest(settings, slow)))
    first.start()
    assert slow.entered.wait(10)
    (settings.seeds_dir / "more.txt").write_text("Another document about trade talks in Beijing.")
    try:
        with pytest.raises(IndexBusy, match="another `rag ingest` is writing") as caught:
            run_ingest(settings, KeywordEmbedder())
    finally:
        slow.release.set()
        first.join(10)
    assert isinstance(caught.value, RagError) and caught.value.hint
    index, _ = result["first"]
    loaded = VectorIndex.load(settings.index_dir)
    assert len(loaded) == len(index) > 0
    assert all((settings.index_dir / name).is_file() for name in manifest_of(settings)["files"].values())
    _, report = run_ingest(settings, KeywordEmbedder())  # the lock is free again
    assert report.added == ["more.txt"]


def test_a_lock_held_by_another_process_is_respected(settings, keyword_embedder):
    settings.index_dir.mkdir()
    fd = os.open(settings.index_dir / LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description behaves as another process
    try:
        with pytest.raises(IndexBusy):
            run_ingest(settings, keyword_embedder)
    finally:
        os.close(fd)
    run_ingest(settings, keyword_embedder)


def test_a_writer_deletes_only_files_it_wrote(settings, keyword_embedder):
    run_ingest(settings, keyword_embedder)
    foreign = ["notes.jsonl", "backup.faiss", "draft.tmp", "README.md"]
    for name in foreign:
        (settings.index_dir / name).write_text("mine")
    previous = set(manifest_of(settings)["files"].values())
    (settings.seeds_dir / "new.txt").write_text("Fresh document about trade talks.")
    run_ingest(settings, keyword_embedder)
    names = {p.name for p in settings.index_dir.iterdir()}
    assert set(foreign) <= names
    assert not previous & names  # the replaced generation is gone
    assert set(manifest_of(settings)["files"].values()) <= names


def test_crash_leftovers_are_removed_under_the_lock(settings, keyword_embedder):
    run_ingest(settings, keyword_embedder)
    leftovers = [".chunks-0123456789abcdef.jsonl.fedcba9876543210.tmp", "vectors-0123456789abcdef.faiss"]
    for name in leftovers:
        (settings.index_dir / name).write_bytes(b"half written")
    _, report = run_ingest(settings, keyword_embedder)
    assert report.unchanged and not report.rebuilt_because
    assert not any((settings.index_dir / name).exists() for name in leftovers)
    VectorIndex.load(settings.index_dir)


def test_index_files_follow_the_umask(settings, keyword_embedder):
    old = os.umask(0o022)
    try:
        run_ingest(settings, keyword_embedder)
    finally:
        os.umask(old)
    for name in ["manifest.json", *manifest_of(settings)["files"].values()]:
        assert stat.S_IMODE((settings.index_dir / name).stat().st_mode) == 0o644, name


# --- damage that still parses ----------------------------------------------------------------------


def _edit_chunk_text(settings, manifest):
    path = settings.index_dir / manifest["files"]["chunks"]
    path.write_text(path.read_text().replace("Brad Smith", "Brad Smoth", 1))


def _vectors(settings, manifest, change):
    import faiss

    path = settings.index_dir / manifest["files"]["vectors"]
    idx = faiss.read_index(str(path))
    vectors = idx.reconstruct_n(0, idx.ntotal)
    change(vectors)
    out = faiss.IndexFlatIP(vectors.shape[1])
    out.add(np.ascontiguousarray(vectors))
    faiss.write_index(out, str(path))


def _nan_vector(settings, manifest):
    _vectors(settings, manifest, lambda v: v.__setitem__((0, 3), np.nan))


def _flipped_vector(settings, manifest):
    _vectors(settings, manifest, lambda v: v.__setitem__(0, -v[0]))


@pytest.mark.parametrize("damage", [_edit_chunk_text, _nan_vector, _flipped_vector])
def test_damage_that_still_parses_is_detected_and_repaired(settings, keyword_embedder, damage):
    idx, _ = run_ingest(settings, keyword_embedder)
    texts = [c.text for c in idx.chunks]
    damage(settings, manifest_of(settings))
    with pytest.raises(IndexCorrupt, match="rag ingest"):
        VectorIndex.load(settings.index_dir)
    assert_rebuilt_and_whole(settings, keyword_embedder, texts)


def test_nan_vectors_are_caught_even_when_checksums_were_updated(settings, keyword_embedder):
    idx, _ = run_ingest(settings, keyword_embedder)
    manifest = manifest_of(settings)
    _nan_vector(settings, manifest)
    reseal(settings, manifest)
    with pytest.raises(IndexCorrupt, match="not finite"):
        VectorIndex.load(settings.index_dir)
    assert_rebuilt_and_whole(settings, keyword_embedder, [c.text for c in idx.chunks])


def test_a_stored_chunk_that_differs_from_its_document_is_reembedded(settings, keyword_embedder):
    idx, _ = run_ingest(settings, keyword_embedder)
    texts = [c.text for c in idx.chunks]
    manifest = manifest_of(settings)
    _edit_chunk_text(settings, manifest)
    reseal(settings, manifest)  # the files check out; only comparing with the document shows the edit
    counting = KeywordEmbedder()
    _, report = run_ingest(settings, counting)
    assert report.changed == [idx.chunks[0].doc_id] and counting.texts_embedded == len(texts)
    assert [c.text for c in VectorIndex.load(settings.index_dir).chunks] == texts


# --- odd manifests -------------------------------------------------------------------------------------


def _no_documents(settings):
    manifest = manifest_of(settings)
    del manifest["documents"]
    write_manifest(settings, manifest)


def _other_dimension(settings):
    import faiss

    manifest = manifest_of(settings)
    other = faiss.IndexFlatIP(32)
    other.add(np.eye(manifest["chunk_count"], 32, dtype=np.float32))
    faiss.write_index(other, str(settings.index_dir / manifest["files"]["vectors"]))
    reseal(settings, manifest)


def _manifest_is_a_folder(settings):
    path = settings.index_dir / "manifest.json"
    path.unlink()
    path.mkdir()
    (path / "inside.txt").write_text("not ours")


def _files_outside_the_index(settings):
    manifest = manifest_of(settings)
    manifest["files"]["chunks"] = "../../etc/passwd"
    write_manifest(settings, manifest)


@pytest.mark.parametrize("damage", [_no_documents, _other_dimension, _manifest_is_a_folder, _files_outside_the_index])
def test_odd_manifests_give_a_clear_error_and_a_rebuild_that_works(settings, keyword_embedder, damage):
    idx, _ = run_ingest(settings, keyword_embedder)
    damage(settings)
    with pytest.raises(IndexCorrupt, match="rag ingest"):
        VectorIndex.load(settings.index_dir)
    assert_rebuilt_and_whole(settings, keyword_embedder, [c.text for c in idx.chunks])
    moved = list(settings.index_dir.glob("manifest.json.broken-*"))
    if damage is _manifest_is_a_folder:  # moved aside, not deleted: it was not ours
        assert (moved[0] / "inside.txt").read_text() == "not ours"


def test_an_edited_stored_text_is_detected_and_rebuilt(settings, keyword_embedder):
    (settings.seeds_dir / "page.html").write_text(
        "<html><body><h1>Trade</h1><p>Brad Smith met Wang Wentao in Beijing.</p></body></html>"
    )
    idx, _ = run_ingest(settings, keyword_embedder)
    stored = manifest_of(settings)["documents"]["page.html"]["text"]
    assert stored and (settings.index_dir / stored).is_file()
    (settings.index_dir / "texts" / "mine.txt").write_text("not the index's")
    path = settings.index_dir / stored
    path.write_text(path.read_text().replace("Beijing", "Beijinx"))
    with pytest.raises(IndexCorrupt, match="stored text of 'page.html' was changed"):
        VectorIndex.load(settings.index_dir)
    assert_rebuilt_and_whole(settings, keyword_embedder, [c.text for c in idx.chunks])
    assert "Beijing" in path.read_text() and (settings.index_dir / "texts" / "mine.txt").exists()
