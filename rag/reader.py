"""The extractive reader: which words of which retrieved passage answer the question, or none.

Why: the 135M generator, held by a grammar to one pre-picked sentence, copied the wrong words of the
right sentence, and refusal from cheap signals stayed near chance on SQuAD 2.0's unanswerable
questions (written to look answerable from the same paragraph): on four held-out articles answerable
F1 0.39 and refusal recall 0.35 at 16% false refusals. Those questions need the question and the
passage read together. The reader is the bundled all-MiniLM-L6-v2 encoder (already shipped for
retrieval, so no new weights to download) with its upper layers and a start/end head trained by
`python -m rag_eval.fit_reader` on SQuAD 2.0 articles (the file's metadata names them, the
calibration articles and the held-out figures). It reads each retrieved passage with the question
(SQuAD 2.0 style: the [CLS] token scores "no answer here") and proposes spans with a margin over
"no answer"; the reader-led strategy (rag/read_strategy.py) answers with the best proposals and the
margin decides to answer or refuse.

The trained layers (float16, 17.8 MB) are copied over a private copy of the encoder's weights, so inference
is one plain BERT forward pass per passage batch. By default (RAG_ENCODER_RUNTIME=onnx) that net is exported
once to ONNX and run by ONNX Runtime (rag/encoder.py): no torch when serving, the reader loaded in ~0.3 s and
reading 6 passages in 89 ms p50 instead of 124 under torch; the windows come from the `tokenizers` library
directly, the same as transformers' tokenizer gives training (tests/test_encoder_runtime.py). (An
earlier format of low-rank adapters, 1 MB, could not move the encoder far enough: held-out F1 0.39.) A file may
also hold several readers whose logits are averaged (`fit_reader --ensemble`); the one measured, the shipped
reader with one trained afresh, answered better on the held-out articles (answerable F1 54.2 -> 55.6) but worse
on the bundled document sets, at twice the reading time, so a single reader ships (eval/README.md). The reader is
data-bound: trained on two more SQuAD articles (17), on the two still held out its answerable F1 through the
pipeline rose 55.3 -> 57.9 at fewer false refusals (18.0% -> 15.3%), more than any training recipe had given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from rag.encoder import load_encoder as _load_encoder
from rag.encoder import pad, tokenizer
from rag.errors import TemplateError

log = logging.getLogger(__name__)

READER_FILE = "reader.safetensors"
FORMAT = 2  # the encoder's trained layers and the head (format 1, low-rank adapters, was retired)
MAX_ANSWER_TOKENS = 30  # longest span proposed, in word pieces (SQuAD answers: median 2 words)


@dataclass(frozen=True)
class Span:
    passage: int  # index into the passages read
    start: int  # character offsets inside that passage's text
    end: int
    score: float  # start + end logit
    margin: float  # score minus the passage's "no answer" score: > 0 means the reader prefers answering


@dataclass
class Reading:
    """What the reader found in the passages of one question."""

    spans: list[Span] = field(default_factory=list)  # best first (by margin), a few per passage
    null: list[float] = field(default_factory=list)  # each passage's "no answer" score

    @property
    def best(self) -> Span | None:
        return self.spans[0] if self.spans else None

    def passage_order(self) -> list[int]:
        """Passages by their best span's margin, best first (passages without a span last, in order)."""
        best: dict[int, float] = {}
        for s in self.spans:
            best.setdefault(s.passage, s.margin)
        rest = [i for i in range(len(self.null)) if i not in best]
        return sorted(best, key=lambda i: -best[i]) + rest


class Reader(Protocol):
    """Reads; deciding what to do with the spans is the decider's (rag/decider.py)."""

    def read(self, question: str, passages: Sequence[str]) -> Reading: ...


def tokenizer_for(base: Path):
    """transformers' tokenizer of the encoder (training, rag_eval/fit_reader.py); answering uses `tokenizers`
    directly (rag.encoder.tokenizer: the same tokenizer.json, without importing transformers)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base), local_files_only=True, use_fast=True)


def encode_pairs(tokenizer, questions: Sequence[str], texts: Sequence[str], max_length: int, stride: int = 64):
    """Question and passage as one sequence; a passage too long for one window becomes several windows
    overlapping by `stride` tokens (`overflow_to_sample_mapping` names each window's passage)."""
    return tokenizer(
        list(questions),
        list(texts),
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


def _net_classes():
    from torch import nn

    class ReaderNet(nn.Module):
        """Encoder + start/end head: `for_training` marks what is trained; answering copies it in."""

        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            self.head = nn.Linear(encoder.config.hidden_size, 2)

        @classmethod
        def for_training(cls, base: Path, freeze_layers: int = 1) -> ReaderNet:
            """The whole encoder fine-tuned but its embeddings and lowest `freeze_layers` layers (format 2)."""
            net = cls(_load_encoder(base))
            for name, p in net.encoder.named_parameters():
                layer = name.split(".")[2] if name.startswith("encoder.layer.") else None
                p.requires_grad = layer is not None and int(layer) >= freeze_layers
            return net

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            logits = self.head(hidden)
            return logits[..., 0], logits[..., 1]

    return ReaderNet


def __getattr__(name):  # ReaderNet without importing torch at module import
    if name == "ReaderNet":
        return _net_classes()
    raise AttributeError(name)


def members_of(state: dict) -> list[dict]:
    """A file's trained tensors per reader: one reader's, or each member's of an ensemble, whose tensors are
    stored as "members.<i>.<key>" (`fit_reader --ensemble`)."""
    if not any(k.startswith("members.") for k in state):
        return [state]
    parts: dict[int, dict] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        index, _, name = rest.partition(".")
        if head != "members" or not index.isdigit() or not name:
            raise TemplateError(f"{READER_FILE}: tensor {key} is neither a reader's nor an ensemble member's")
        parts.setdefault(int(index), {})[name] = value
    return [parts[i] for i in sorted(parts)]


def _ensemble_class():
    import torch
    from torch import nn

    class ReaderEnsemble(nn.Module):
        """Readers trained apart read the same windows; their start and end logits are averaged, so spans,
        "no answer" and margins are read as from one reader (and exported as one ONNX graph)."""

        def __init__(self, nets):
            super().__init__()
            self.members = nn.ModuleList(nets)

        def forward(self, input_ids, attention_mask, token_type_ids):
            outs = [m(input_ids, attention_mask, token_type_ids) for m in self.members]
            return torch.stack([o[0] for o in outs]).mean(0), torch.stack([o[1] for o in outs]).mean(0)

    return ReaderEnsemble


def build_net(base: Path, state: dict):
    """A `ReaderNet` on the encoder in `base` with the file's trained tensors copied in, in eval mode; for an
    ensemble file, a `ReaderEnsemble` of them, the untrained parts (embeddings, frozen layers) held once."""
    import torch

    nets = []
    parts = members_of(state)
    for part in parts:
        net = _net_classes()(_load_encoder(base))
        params = dict(net.named_parameters())
        with torch.no_grad():
            for key, value in part.items():
                target = params.get(key)
                if target is None or target.shape != value.shape:
                    raise TemplateError(f"{READER_FILE}: tensor {key} does not fit the encoder")
                target.copy_(value)
        if nets:  # parts that neither this member nor the first trained are the bundled encoder's: share them
            first, trained = nets[0].encoder, [*part, *parts[0]]
            if not any(".embeddings." in k for k in trained):
                net.encoder.embeddings = first.embeddings
            for j in range(len(net.encoder.encoder.layer)):
                if not any(k.startswith(f"encoder.encoder.layer.{j}.") for k in trained):
                    net.encoder.encoder.layer[j] = first.encoder.layer[j]
        nets.append(net)
    return (nets[0] if len(nets) == 1 else _ensemble_class()(nets)).eval()


def trainable_state(net) -> dict:
    """What a format-2 file ships: every tensor that was trained (the upper layers and the head)."""
    return {k: p.detach().clone() for k, p in net.named_parameters() if p.requires_grad}


def save_reader(path: Path | str, state: dict, meta: dict) -> None:
    import torch
    from safetensors.torch import save_file

    tensors = {k: v.to(torch.float16).contiguous() for k, v in state.items()}
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"meta": json.dumps(meta, sort_keys=True)})
    tmp.replace(path)


def load_reader_file(data: bytes) -> tuple[dict, dict]:
    """Tensors and metadata of a reader file; malformed files are a TemplateError naming the file."""
    import torch
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types
        raise TemplateError(f"{READER_FILE}: not a readable safetensors file ({exc})") from exc
    meta = _metadata(data)
    if meta.get("format") != FORMAT:
        raise TemplateError(f"{READER_FILE}: expected format {FORMAT}, found {meta.get('format')!r}")
    return {k: v.to(torch.float32) for k, v in tensors.items()}, meta


def _metadata(data: bytes) -> dict:
    """The JSON header of a safetensors file holds our metadata under "meta"."""
    try:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + n])
        return json.loads(header.get("__metadata__", {}).get("meta", "{}"))
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"{READER_FILE}: unreadable metadata ({exc})") from exc


class TorchNet:
    """A `ReaderNet` behind the numpy interface `ReaderModel` calls: int64 (ids, mask, types) -> (start, end)."""

    def __init__(self, net):
        self.net = net

    def __call__(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            start, end = self.net(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
        return start.numpy(), end.numpy()


class OnnxNet:
    """The same net exported to ONNX (rag/encoder.py): no torch at answering time."""

    def __init__(self, session):
        self.session = session

    def __call__(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start, end = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return start, end


class ReaderModel:
    """The fitted reader, loaded once (app factory); `read` is thread-safe for concurrent callers.

    `net`: (ids, mask, types) int64 arrays -> (start, end) logit arrays (`TorchNet` or `OnnxNet`); `tokenizer`: the
    encoder's `tokenizers.Tokenizer` (rag.encoder.tokenizer)."""

    def __init__(self, net, tokenizer, meta: dict, max_length: int | None = None):
        self.net = net
        self.tokenizer = tokenizer
        self.meta = meta
        self.max_length = int(max_length or meta.get("max_length", 192))
        self.stride = int(meta.get("stride", 64))
        self.pairs = None  # question + passage, cut into overlapping windows (as `encode_pairs` does for training)
        if tokenizer is not None:
            from tokenizers import Tokenizer

            self.pairs = Tokenizer.from_str(tokenizer.to_str())  # its own truncation settings, set once
            self.pairs.enable_truncation(self.max_length, stride=self.stride, strategy="only_second")

    @classmethod
    def from_state(cls, base: Path, state: dict, meta: dict, threads: int | None = 1, **kw) -> ReaderModel:
        """The reader under torch: the encoder with the trained tensors copied in."""
        import torch

        if threads:
            torch.set_num_threads(threads)
        return cls(TorchNet(build_net(base, state)), tokenizer(base), meta, **kw)

    @classmethod
    def load(
        cls, templates, base: Path, threads: int | None = 1, runtime: str = "torch", cache_dir: Path | None = None, **kw
    ) -> ReaderModel:
        """`runtime` "onnx": ONNX Runtime on an export cached in `cache_dir` (made with torch on the first load;
        rag/encoder.py), falling back to torch if that fails; "torch": PyTorch."""
        data = templates.bytes(READER_FILE)
        if runtime == "onnx":
            try:
                return cls.from_onnx(base, data, threads, Path(cache_dir or "."), **kw)
            except TemplateError:
                raise
            except Exception:  # noqa: BLE001 - no onnx package to export with, a broken cache…: torch still works
                log.warning("the ONNX reader could not be loaded; using torch", exc_info=True)
        state, meta = load_reader_file(data)
        return cls.from_state(base, state, meta, threads=threads, **kw)

    @classmethod
    def from_onnx(cls, base: Path, data: bytes, threads: int | None, cache_dir: Path, **kw) -> ReaderModel:
        """The reader under ONNX Runtime, exported once per (encoder weights, reader file) into `cache_dir`."""
        from rag import encoder

        model = cls.onnx_export(base, data, cache_dir)
        return cls(OnnxNet(encoder.session(model, threads)), encoder.tokenizer(base), _metadata(data), **kw)

    @staticmethod
    def onnx_export(base: Path, data: bytes, cache_dir: Path) -> Path:
        """The reader file's ONNX export in `cache_dir`, made with torch if it is not there yet (~8 s once)."""
        import hashlib

        from rag import encoder

        meta = _metadata(data)
        if meta.get("format") != FORMAT:
            raise TemplateError(f"{READER_FILE}: expected format {FORMAT}, found {meta.get('format')!r}")
        key = encoder.weights_key(
            [base / "config.json", base / "model.safetensors"], cache_dir, extra=hashlib.sha256(data).digest()
        )

        def export(path: Path) -> None:
            state, _ = load_reader_file(data)
            encoder._export(build_net(base, state), path, ["start", "end"])  # noqa: SLF001

        return encoder.cached_export(cache_dir, "reader", key, export)

    def _fit_question(self, question: str) -> str:
        """A question too long to leave room for the passage windows is read by its first words (the
        pipeline's own length check normally stops such questions first)."""
        room = self.max_length - self.stride - 8
        words = question.split()
        while len(words) > 1 and len(self.tokenizer.encode(" ".join(words)).ids) > room:
            words = words[: max(1, len(words) * 3 // 4)]
        return " ".join(words) if len(words) < len(question.split()) else question

    def read(self, question: str, passages: Sequence[str], per_passage: int = 3) -> Reading:
        if not passages:
            return Reading()
        question = self._fit_question(question)
        windows = []  # (passage index, encoding): a passage too long for one window is read in several
        for i, encoding in enumerate(self.pairs.encode_batch([(question, p) for p in passages])):
            windows += [(i, w) for w in (encoding, *encoding.overflowing)]
        ids, mask, types = pad([w.ids for _, w in windows], [w.type_ids for _, w in windows])
        s_all, e_all = self.net(ids, mask, types)
        spans: list[Span] = []
        nulls = [float("inf")] * len(passages)
        found: list[tuple[int, int, int, float]] = []
        for w, (i, window) in enumerate(windows):
            seq = window.sequence_ids
            offsets = window.offsets
            tokens = np.array([t for t, sid in enumerate(seq) if sid == 1])
            null = float(s_all[w, 0] + e_all[w, 0])
            nulls[i] = min(nulls[i], null)  # a passage's "no answer": its most confident window's
            if not len(tokens):
                continue
            s, e = s_all[w, tokens], e_all[w, tokens]
            grid = s[:, None] + e[None, :]
            n = len(tokens)
            band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), MAX_ANSWER_TOKENS)
            grid = np.where(band, grid, -np.inf)
            flat = np.argsort(-grid, axis=None)[:per_passage]
            for f in flat:
                a, b = divmod(int(f), n)
                if not np.isfinite(grid[a, b]):
                    break
                found.append((i, int(offsets[tokens[a]][0]), int(offsets[tokens[b]][1]), float(grid[a, b])))
        best: dict[tuple[int, int, int], float] = {}
        for i, start, end, score in found:  # the same span seen by two overlapping windows counts once
            best[(i, start, end)] = max(score, best.get((i, start, end), -np.inf))
        for (i, start, end), score in best.items():
            spans.append(Span(i, start, end, score, score - nulls[i]))
        spans.sort(key=lambda x: -x.margin)
        nulls = [0.0 if v == float("inf") else v for v in nulls]
        return Reading(spans, nulls)
