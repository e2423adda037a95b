"""The MiniLM encoder under ONNX Runtime: the embedder and the reader without torch on the serving path.

Why: `rag serve` spent most of its cold start importing libraries, not loading weights. On this 2-core machine
(shared with an evaluation run, so every figure is inflated) `import sentence_transformers` took 9-13 s (it
pulls in torch, transformers, scikit-learn and scipy) and `import torch` alone ~2.9 s, while `import
onnxruntime, tokenizers` takes 0.2-0.3 s and an ONNX session of the encoder loads in ~0.3 s. `rag serve` to /health
"ready" went from 19.9 s to 2.0-2.5 s (medians of 3, `python -m rag_eval.bench.startup`; with ui/deferred.py and the
skipped prompt warm-up). Vectors agree with sentence-transformers' to 1e-7 (cosine 1.0000), reader spans are the
same and margins agree to 1e-4 (tests/test_encoder_runtime.py). Answering got faster too, one thread each: a query
embedded in 6.6 ms p50 (torch 15.1), the reader over 6 passages in 89 ms p50 (torch 124), 128 chunks embedded
for ingest in 1.5 s (torch 1.75); a serving process peaks at 523 MB RSS instead of 845.

Making the encoder's arithmetic cheaper did not pay for ingest (2026-12-07, 500-800 SQuAD
chunks of 80-150 words, 2 threads, `/tmp`-style scripts recorded in the commit): ONNX Runtime's BERT fusions
(onnxruntime.transformers.optimizer) 39.3 s per 1,000 chunks vs 35.4 as exported (the runtime already fuses
what matters); two sessions of one thread each 22.8 vs one session of two threads 22.2 (two threads already
scale 1.87x over one, 41.6); int8 dynamic quantization 1.3x faster but vectors at cosine 0.89 min / 0.95 mean,
per-channel int8 1.22x faster at cosine 0.976 min / 0.993 mean: below the 0.99 every vector must keep, so the
index stays float32. What did pay was padding: `rag ingest` embedded its chunks in groups of 64 in document
order, each batch padded to its longest chunk; embedded longest first across the whole ingest
(rag.index.embed_all), 1,010 synthetic chunks take 10.4 s per 1,000 (9.7-11.7, three runs) against 15.1 in
document order and 29.0 for torch on one thread (same machine, runs interleaved): 2.8x faster per chunk.

No model is downloaded: the first load exports the weights already here (the bundled all-MiniLM-L6-v2, plus
the reader's trained layers) with torch, once, into `RAG_ONNX_CACHE_DIR` under a name holding the sha256 of the
files it came from, so changed weights get a new export and a stale one is never used. That first load pays
torch and the export (a first `rag serve` was ready after 11 s instead of 2 s), so `rag ingest` makes both: the
embedder's by loading it, the reader's afterwards (rag.pipeline.prepare_reader; first `rag ask` 10.1 -> 1.6 s).
Needs the `onnx` package to export; without it (or on any export failure, e.g. an unwritable cache folder) the
caller logs a warning and falls back to torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.errors import ModelError

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when what is exported changes (inputs, outputs, opset): old files are then not used
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


DIGESTS = "digests.json"  # in the cache folder: each weights file's sha256 by (path, size, mtime)


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int, cache_dir: str) -> str:
    """The file's sha256, remembered in `cache_dir/digests.json` while its size and mtime stay the same: hashing
    the encoder's 90 MB took ~0.1 s of every start (of ~2 s)."""
    stamp = [size, mtime_ns]
    book = Path(cache_dir) / DIGESTS
    try:
        known = json.loads(book.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(path) if isinstance(known, dict) else None
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    known = known if isinstance(known, dict) else {}
    known[path] = {"stamp": stamp, "sha256": digest}
    try:
        book.parent.mkdir(parents=True, exist_ok=True)
        tmp = book.with_name(f".{DIGESTS}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(book)
    except OSError:  # a read-only cache: hash again next time
        pass
    return digest


def weights_key(files: Sequence[Path], cache_dir: Path, extra: bytes = b"") -> str:
    """sha256 over the files' own sha256s and `extra`: what names an export, so other weights get their own."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION}".encode() + extra)
    for f in files:
        st = f.stat()
        digest.update(_file_digest(str(Path(f).resolve()), st.st_size, st.st_mtime_ns, str(cache_dir)).encode())
    return digest.hexdigest()[:16]


def supports(base: Path) -> bool:
    """A BERT folder with mean pooling (what the embedder's export computes): the bundled model is one."""
    try:
        config = json.loads((base / "config.json").read_text())
        pooling = json.loads((base / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    return (
        config.get("model_type") == "bert"
        and modes == {"pooling_mode_mean_tokens"}
        and (base / "tokenizer.json").is_file()
        and (base / "model.safetensors").is_file()
    )


def session(path: Path, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def cached_export(cache_dir: Path, name: str, key: str, export: Callable[[Path], None]) -> Path:
    """`cache_dir/name-key.onnx`, exported by `export(tmp_path)` if it is not there yet (written under a
    temporary name, then renamed, so a crash never leaves a half-written model under the real name)."""
    target = Path(cache_dir) / f"{name}-{key}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    log.info("exporting %s to ONNX (once): %s", name, target)
    try:
        export(tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _export(module, path: Path, outputs: list[str]) -> None:
    import warnings

    import torch

    # two rows, one padded, so no branch on "is there padding?" can be traced as "never"
    ids = torch.tensor([[101, 2054, 2003, 102, 2023, 102], [101, 2054, 102, 2023, 102, 0]])
    mask = (ids != 0).long()
    types = torch.tensor([[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0]])
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, *outputs)}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on the shape arithmetic in transformers' masks
        torch.onnx.export(
            module.eval(), (ids, mask, types), str(path), input_names=list(INPUTS), output_names=outputs,
            dynamic_axes=axes, opset_version=OPSET, dynamo=False,
        )  # fmt: skip


def export_encoder(base: Path, path: Path) -> None:
    """The encoder's last hidden state (pooling stays in numpy: it needs the mask anyway)."""
    import torch

    class Hidden(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    _export(Hidden(load_encoder(base)), path, ["hidden"])


def load_encoder(base: Path):
    """The encoder under torch (transformers' AutoModel): to export it, train the reader, or answer with torch."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        return AutoModel.from_pretrained(str(base), local_files_only=True)
    except OSError as exc:
        raise ModelError(
            f"cannot load the reader's encoder from {base}: {exc}", hint="check RAG_EMBEDDER_PATH"
        ) from exc


def tokenizer(base: Path, max_length: int | None = None):
    """The folder's fast tokenizer (tokenizer.json) through the `tokenizers` library: no transformers import."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    if max_length:
        tok.enable_truncation(max_length)
    return tok


class OnnxEmbedder:
    """The sentence-transformers pipeline of a mean-pooling BERT (the bundled all-MiniLM-L6-v2): tokenize
    (truncated at the model's max_seq_length), encode, mean over real tokens, L2-normalise. Same `id` as
    `SentenceTransformerEmbedder`: the vectors agree to 1e-7, so an index built by either serves both."""

    def __init__(self, base: Path, id: str, batch_size: int, threads: int | None, cache_dir: Path):
        self.path = base
        self.id = id
        self.batch_size = batch_size
        st_config = json.loads((base / "sentence_bert_config.json").read_text())
        self.max_length = int(st_config.get("max_seq_length") or 512)
        self.tokenizer = tokenizer(base, self.max_length)
        key = weights_key([base / "config.json", base / "model.safetensors"], cache_dir)
        model = cached_export(cache_dir, "encoder", key, functools.partial(export_encoder, base))
        self.session = session(model, threads)
        self.dim = int(json.loads((base / "config.json").read_text())["hidden_size"])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # as sentence-transformers: less padding
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for at in range(0, len(texts), self.batch_size):
            chunk = order[at : at + self.batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in chunk])
            ids, mask, types = pad([e.ids for e in encodings], [e.type_ids for e in encodings])
            (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[chunk] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def pad(rows: Sequence[Sequence[int]], types: Sequence[Sequence[int]]) -> tuple[np.ndarray, ...]:
    """(input_ids, attention_mask, token_type_ids) as int64 arrays, right-padded with 0."""
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    tt = np.zeros_like(ids)
    for i, (r, t) in enumerate(zip(rows, types)):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
        tt[i, : len(t)] = t
    return ids, mask, tt
