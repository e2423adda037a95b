"""A running server follows the index on disk: `rag ingest` in another process, or an upload, is served
without a restart.

Why a watch on the manifest: every index write ends by replacing `manifest.json` (os.replace, see
rag/index.py), so its identity (inode, mtime, size) changes exactly when a new index is complete. One
`stat` per request is cheap; when the identity differs from the one that was loaded, a new pipeline is
built in a background thread (same embedder and generator objects, new index and retriever) and handed
to `swap` in one assignment. Requests already running keep the pipeline they started with; the next
ones get the new one. A manifest that cannot be loaded (a half-copied folder, another embedder) is
logged and the old index stays served until the manifest changes again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.index import MANIFEST

log = logging.getLogger(__name__)

Identity = tuple[int, int, int] | None  # (inode, mtime_ns, size) of the manifest; None when it is missing


def manifest_identity(index_dir: Path) -> Identity:
    try:
        st = os.stat(Path(index_dir) / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def can_reload(pipeline: Any) -> bool:
    """Only a real pipeline (embedder + index) can be rebuilt on a new index; test fakes are left alone."""
    return all(hasattr(pipeline, a) for a in ("settings", "embedder", "index", "generator"))


def reload_pipeline(pipeline: Any):
    """A new pipeline on the index now on disk, sharing the old one's embedder and generator (no model reload)."""
    from rag.pipeline import Pipeline, load_index

    settings = pipeline.settings
    index = load_index(settings, pipeline.embedder, warn_stale=False)
    return Pipeline(settings, pipeline.embedder, index, pipeline.generator, pipeline.reader)


class IndexWatch:
    """Keeps `current()` in line with the manifest in `index_dir`; `swap(new_pipeline)` installs a new one.

    `check()` is for the request path: a stat, and at most a thread start. `reload()` does the work
    synchronously (the upload writer calls it after its own ingest, so its answer is the new index).
    """

    def __init__(self, index_dir: Path, current: Callable[[], Any], swap: Callable[[Any], None]):
        self.index_dir = Path(index_dir)
        self.current = current
        self.swap = swap
        self.loaded: Identity = None  # identity of the manifest the served pipeline was built from
        self.failed: Identity = None  # identity whose load failed: not retried until the manifest changes
        self.error: str | None = None
        self._lock = threading.Lock()  # guards _thread
        self._reloading = threading.Lock()  # one reload at a time
        self._thread: threading.Thread | None = None

    def mark_loaded(self, identity: Identity) -> None:
        self.loaded = identity

    def changed(self) -> bool:
        identity = manifest_identity(self.index_dir)
        return identity is not None and identity != self.loaded and identity != self.failed

    def check(self) -> None:
        """Start a background reload when the manifest changed since the served pipeline was built."""
        if not self.changed() or not can_reload(self.current()):
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self.reload, name="rag-reload", daemon=True)
            self._thread.start()

    def reload(self) -> bool:
        """Build and install a pipeline on the current index if it changed; True when one was installed."""
        pipeline = self.current()
        if not can_reload(pipeline):
            return False
        with self._reloading:
            identity = manifest_identity(self.index_dir)  # before loading: a write meanwhile is seen next time
            if identity is None or identity == self.loaded:
                return False
            try:
                fresh = reload_pipeline(self.current())
            except Exception as exc:  # noqa: BLE001 - keep serving the old index, say why in the log
                self.failed = identity
                self.error = str(exc)
                log.error("the index changed but could not be loaded; still serving the previous one: %s", exc)
                return False
            self.swap(fresh)
            self.loaded, self.failed, self.error = identity, None, None
            info = fresh.info()
            log.info("index reloaded: %s documents, %s chunks", info.get("documents"), info.get("chunks"))
            return True
