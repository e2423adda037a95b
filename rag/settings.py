"""One settings object, built at the entry point and passed down (never read at import time).

List settings (`RAG_CORS_ORIGINS`, `RAG_ALLOWED_HOSTS`) take a JSON list or comma-separated values:
a plain `RAG_CORS_ORIGINS=http://x` used to fail JSON decoding with a traceback on every command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rag.errors import SettingsError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", validate_assignment=True)
    _from_flags: frozenset[str] = PrivateAttr(default_factory=frozenset)  # fields given on the command line

    # --- corpus and index -------------------------------------------------
    seeds_dir: Path = Field(Path("seeds"), description="Folder of .txt/.md documents to answer from.")
    index_dir: Path = Field(Path("index"), description="Folder holding the FAISS index and its manifest.")
    prompts_dir: Path | None = Field(
        None, description="Folder of prompt and grammar templates; defaults to the packaged ones (prompts/)."
    )
    embedder_path: Path | None = Field(
        None, description="sentence-transformers model folder; defaults to the bundled all-MiniLM-L6-v2."
    )
    embed_batch_size: int = Field(32, ge=1, le=1024, description="Chunks per embedding batch.")
    embed_threads: int = Field(
        1, ge=1, le=256, description="torch threads for the embedder; one is fastest for queries beside llama.cpp."
    )

    chunk_size: int = Field(
        320, ge=50, le=8000, description="Target chunk length in characters; chunks end on sentence boundaries."
    )
    chunk_overlap: int = Field(
        0, ge=0, le=4000, description="Characters of trailing sentences repeated at the start of the next chunk."
    )

    # --- retrieval ----------------------------------------------------------
    k: int = Field(3, ge=1, le=50, description="Passages returned by search and shown to the model.")
    candidates: int = Field(20, ge=1, le=500, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1, le=1000, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the dense ranking in fusion.")
    bm25_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the BM25 ranking in fusion.")
    max_query_chars: int = Field(
        2000, ge=10, le=100_000, description="Longer queries are truncated to this many characters (with a warning)."
    )

    # --- generation -----------------------------------------------------------
    model: Literal["smollm2", "gemma3"] = Field(
        "smollm2", description="Bundled model to use when model_path is not set."
    )
    model_path: Path | None = Field(None, description="Any GGUF file; overrides `model`.")
    mode: Literal["auto", "extractive", "generative"] = Field(
        "auto", description="extractive copies a span (small models); generative writes cited sentences."
    )
    n_ctx: int = Field(2048, ge=256, le=131072, description="llama.cpp context size in tokens.")
    n_threads: int | None = Field(None, ge=1, le=256, description="CPU threads for llama.cpp (default: all cores).")
    n_gpu_layers: int = Field(0, ge=-1, le=1000, description="Layers offloaded to a GPU (-1 = all).")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is deterministic.")
    seed: int = Field(1234, ge=0, description="Sampling seed.")
    max_answer_tokens: int = Field(
        24, ge=4, le=4096, description="Upper bound on generated tokens in extractive mode (a short span)."
    )
    max_generative_tokens: int = Field(
        200, ge=16, le=8192, description="Upper bound on generated tokens in generative mode (cited sentences)."
    )
    prompt_token_budget: int = Field(
        1200, ge=128, le=120000, description="Passages are trimmed so the prompt stays within this many tokens."
    )

    # --- remote generation server (rag/generation_remote.py) -------------------------------
    llm_url: str | None = Field(
        None,
        max_length=2000,
        pattern=r"^https?://\S+$",
        description="Base URL of an OpenAI-compatible generation server (llama-server, llama-cpp-python's server, "
        "vLLM); when set it answers instead of llama.cpp in-process, and the model settings above are the server's.",
    )
    llm_api_key: str | None = Field(None, max_length=4000, description="Bearer token for RAG_LLM_URL, if it needs one.")
    llm_model: str | None = Field(
        None,
        max_length=500,
        description="Model name sent to RAG_LLM_URL (vLLM needs it); default: the first one its /v1/models lists.",
    )
    llm_timeout_s: float = Field(
        60.0, ge=1.0, le=3600.0, description="Longest wait for the server's next byte (connecting: at most 5 s)."
    )
    llm_retries: int = Field(
        2, ge=0, le=10, description="Retries (backoff 0.5 s, 1 s, 2 s…) on connection errors and 5xx; never on 4xx."
    )
    llm_params: int | None = Field(
        None,
        ge=1,
        le=10**13,
        description="Parameter count of the served model, for RAG_MODE=auto; unknown counts as small (extractive).",
    )
    llm_grammar_field: Literal["grammar", "structured_outputs", "guided_grammar", "off"] = Field(
        "grammar",
        description="How the GBNF grammar is sent: `grammar` (llama.cpp servers), `structured_outputs` (vLLM >= "
        "0.10.2), `guided_grammar` (older vLLM), `off` (not sent; the span check still refuses what does not parse).",
    )

    # --- answering decisions -----------------------------------------------------
    decisions: Literal["fitted", "selector", "rules"] = Field(
        "fitted",
        description="fitted: sentence choice and answer/refuse by the logistic models in prompts/answering_model.json "
        "(fitted on SQuAD 2.0 articles by `python -m rag_eval.fit`); selector: the fitted sentence choice with the "
        "hand-written refusal checks; rules: hand-set weights and checks.",
    )
    answer_threshold: float | None = Field(
        None, ge=0.0, le=1.0, description="Refuse below this P(right answer); default: the fitted model's threshold."
    )
    tidy_spans: bool = Field(
        True,
        description="Cut a copied answer at the first clause break and drop words that only repeat the question "
        "(rag/spans.py).",
    )
    candidate_sentences: int = Field(
        1, ge=1, le=5, description="Candidate sentences (one per passage) the model may copy its answer from."
    )
    reader: Literal["off", "rerank", "answer"] = Field(
        "rerank",
        description="Extractive mode, the fitted span reader (prompts/reader.safetensors, fitted on SQuAD 2.0 by "
        "`python -m rag_eval.fit_reader`): rerank: it orders the retrieved passages and the sentence engine answers "
        "from the best RAG_K; answer: its spans are the answers and its margin decides refusal; off: neither.",
    )
    reader_k: int = Field(
        6, ge=1, le=50, description="Passages the reader reads per question; the best RAG_K of them are shown."
    )
    reader_candidates: int = Field(
        1,
        ge=1,
        le=5,
        description="Reader spans the generator may choose from; 1: the reader's best span is the reply and the "
        "generator is not called.",
    )
    reader_threshold: float | None = Field(
        None,
        ge=-50.0,
        le=50.0,
        description="Answer when the reader's best span beats its 'no answer' score by at least this margin; "
        "default: the fitted threshold (set for 15% false refusals on held-out calibration articles).",
    )

    # --- refusal ----------------------------------------------------------------
    min_support: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="Share of the question's content words (or close synonyms) the cited sentence must hold.",
    )
    min_relevance: float = Field(
        0.15, ge=-1.0, le=1.0, description="Below this best passage cosine the question is off-topic and refused."
    )
    refusal_text: str = Field("The documents don't say.", min_length=1, max_length=500)

    # --- server -------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address rag serve binds to.")
    port: int = Field(8000, ge=1, le=65535)
    api_token: str | None = Field(
        None,
        max_length=4096,
        description="When set, API requests need `Authorization: Bearer <token>`; set but empty is refused.",
    )
    max_question_chars: int = Field(2000, ge=10, le=100_000, description="Longest question the API accepts.")
    queue_size: int = Field(
        4, ge=1, le=256, description="Requests (API and chat together) allowed to wait for the model before 503."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        max_length=64,
        description="Origins allowed to call the API and the chat from a browser (JSON list or comma-separated); "
        "empty disables CORS.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["localhost", "127.0.0.1", "::1"],
        min_length=1,
        max_length=64,
        description="Host header values the server answers (JSON list or comma-separated; `.example.org` also "
        "allows its subdomains, `*` allows any). IP addresses are always allowed. Other names get 400: a web "
        "page that rebinds its own name to this machine's address cannot use the API or the chat.",
    )
    max_upload_bytes: int = Field(
        50 * 1024 * 1024,
        ge=1024,
        le=200 * 1024 * 1024,  # rag.documents.MAX_FILE_BYTES: ingestion reads no larger file
        description="Largest document POST /documents and the chat accept (bytes); larger uploads get 413.",
    )

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _list_from_text(cls, value):
        """A JSON list, or comma-separated values (`http://a, http://b`)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    raise ValueError(f"not a JSON list ({exc})") from None
            else:
                value = [part for part in (p.strip() for p in text.split(",")) if part]
        if isinstance(value, list):
            value = [v.strip() if isinstance(v, str) else v for v in value]
        return value

    @field_validator("api_token")
    @classmethod
    def _token_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "is set but empty, which would leave the API open; unset RAG_API_TOKEN to serve without a token, "
                "or give it a value"
            )
        return value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "Settings":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self

    def name_of(self, field: str) -> str:
        """What the user typed to set `field`: its flag (`--model-path`) if it came from the command line,
        else its variable (`RAG_MODEL_PATH`), so a message about a value names where to change it."""
        return flag_name(field) if field in self._from_flags else "RAG_" + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def build_settings(overrides: dict | None = None, **defaults) -> Settings:
    """Settings from the environment (RAG_*) with `overrides` (command-line flags; None means "not given").

    A bad value is a `SettingsError` naming what the user typed: the flag (`--k`) when it came from the
    command line, the variable (`RAG_K`) when it came from the environment.
    """
    given = {k: v for k, v in (overrides or {}).items() if k in Settings.model_fields and v is not None}
    try:
        settings = Settings(**{**defaults, **given})
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            field = str(e["loc"][0]) if e.get("loc") else ""
            if field in given:
                where = flag_name(field)
            elif field:
                where = "RAG_" + field.upper()
            else:
                where = "settings"
            problems.append(f"{where}: {e['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    settings._from_flags = frozenset(given)
    return settings
