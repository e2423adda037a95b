"""Settings by concern — index, retrieval, generation, answering, server — combined into one object that
is built at the entry point and passed down (never read at import time).

Why groups: each component takes the group it reads (`HybridRetriever` its `RetrievalSettings`, the
strategies their `AnsweringSettings`, `LlamaGenerator` its `GenerationSettings`…) and holds no defaults of
its own, so a default is written once, here. A group built with no arguments holds the production
defaults and reads no environment: that is what a test that builds a component directly passes.

Why one combined `Settings` that inherits every group (the layout of llama-cpp-python's server settings):
every setting stays a flat `RAG_<NAME>` variable (`RAG_K`, not `RAG_RETRIEVAL__K`), `settings.k` and
`settings.model_copy(update={"k": 5})` keep working, and a `Settings` is accepted wherever a group is.
`settings.retrieval` (and the other properties) give one group's values.

Command-line flags are generated from the fields (`add_flags`): the name (`--n-ctx` for `n_ctx`), the type
or choices, and help from the description, the default, the bounds and the variable; the values are
checked here, so a bad flag gets the same one-line message as a bad variable.

List settings (`RAG_CORS_ORIGINS`, `RAG_ALLOWED_HOSTS`) take a JSON list or comma-separated values:
a plain `RAG_CORS_ORIGINS=http://x` used to fail JSON decoding with a traceback on every command.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path
from types import UnionType
from typing import Annotated, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rag.errors import SettingsError


class _Group(BaseModel):
    """One concern's settings; built with no arguments, the production defaults (no environment is read)."""

    model_config = ConfigDict(validate_assignment=True)
    _from_flags: frozenset[str] = PrivateAttr(default_factory=frozenset)  # fields given on the command line

    def name_of(self, field: str) -> str:
        """What the user typed to set `field`: its flag (`--model-path`) if it came from the command line,
        else its variable (`RAG_MODEL_PATH`), so a message about a value names where to change it."""
        return flag_name(field) if field in self._from_flags else "RAG_" + field.upper()


class IndexSettings(_Group):
    """The documents, how they are cut into passages and embedded, and where the index is kept."""

    seeds_dir: Path = Field(
        Path("seeds"), description="Folder of the documents to answer from (.txt, .md, .html, .pdf, .docx)."
    )
    index_dir: Path = Field(Path("index"), description="Folder holding the FAISS index and its manifest.")
    embedder_path: Path | None = Field(
        None, description="sentence-transformers model folder; defaults to the bundled all-MiniLM-L6-v2."
    )
    embed_batch_size: int = Field(32, ge=1, le=1024, description="Chunks per embedding batch.")
    embed_threads: int = Field(
        1,
        ge=1,
        le=256,
        description="Threads for the embedder and the reader; one is fastest for queries beside llama.cpp.",
    )
    ingest_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Threads for embedding in `rag ingest` (default: all cores; no model runs beside it). 2 threads on "
        "2 cores: 14.4 s per 1,000 chunks vs 26.2 with one.",
    )
    encoder_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="What runs the MiniLM encoder (embedder and reader): onnx: ONNX Runtime, no torch when serving "
        "(`rag serve` ready in a fraction of the time), on a copy exported once with torch into RAG_ONNX_CACHE_DIR "
        "(falls back to torch if that fails, or for an embedder that is not a mean-pooling BERT); torch: PyTorch.",
    )
    onnx_cache_dir: Path = Field(
        Path.home() / ".cache" / "rag-chat" / "onnx",
        description="Folder of the encoder's ONNX exports, each named by the sha256 of the weights it came from.",
    )

    chunk_size: int = Field(
        320, ge=50, le=8000, description="Target chunk length in characters; chunks end on sentence boundaries."
    )
    chunk_overlap: int = Field(
        0, ge=0, le=4000, description="Characters of trailing sentences repeated at the start of the next chunk."
    )

    # --- the FAISS structure (rag/ann.py): exact search, or HNSW above a size ---------------
    index_kind: Literal["auto", "exact", "hnsw"] = Field(
        "auto",
        description="exact: every vector is compared (perfect recall; 24 ms a query at 50k chunks here); hnsw: an "
        "approximate graph (recall@10 ~0.99, ~1 ms at 50k); auto: exact up to RAG_HNSW_THRESHOLD chunks, hnsw above. "
        "A change takes effect at the next `rag ingest` (no re-embedding); until then the server refuses the index.",
    )
    hnsw_threshold: int = Field(
        50_000, ge=0, le=10**9, description="With index_kind auto, indexes of more chunks than this use HNSW."
    )
    hnsw_m: int = Field(
        32, ge=4, le=128, description="HNSW neighbours per vector: more is better recall, more memory, slower build."
    )
    hnsw_ef_construction: int = Field(
        100, ge=8, le=4096, description="HNSW candidate list while building: more is a better graph, slower ingest."
    )
    hnsw_ef_search: int = Field(
        256,
        ge=8,
        le=4096,
        description="HNSW candidate list per query: more is better recall, slower search (takes effect at load).",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self):
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self


class RetrievalSettings(_Group):
    """Hybrid search: how many passages, and how the dense and BM25 rankings are fused."""

    k: int = Field(3, ge=1, le=50, description="Passages returned by search and shown to the model.")
    candidates: int = Field(20, ge=1, le=500, description="Candidates taken from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1, le=1000, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the dense ranking in fusion.")
    bm25_weight: float = Field(1.0, ge=0.0, le=10.0, description="Weight of the BM25 ranking in fusion.")
    max_query_chars: int = Field(
        2000, ge=10, le=100_000, description="Longer queries are truncated to this many characters (with a warning)."
    )


class GenerationSettings(_Group):
    """The model that writes the reply: llama.cpp in-process, or an OpenAI-compatible server (RAG_LLM_URL)."""

    model: Literal["smollm2", "gemma3"] = Field(
        "smollm2", description="Bundled model to use when model_path is not set."
    )
    model_path: Path | None = Field(None, description="Any GGUF file; overrides `model`.")
    n_ctx: int = Field(2048, ge=256, le=131072, description="llama.cpp context size in tokens.")
    n_threads: int | None = Field(None, ge=1, le=256, description="CPU threads for llama.cpp (default: all cores).")
    n_gpu_layers: int = Field(0, ge=-1, le=1000, description="Layers offloaded to a GPU (-1 = all).")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is deterministic.")
    seed: int = Field(1234, ge=0, description="Sampling seed.")

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


class AnsweringSettings(_Group):
    """How a reply is asked for, checked and decided: the answer mode, the prompt and token budgets, the
    fitted decisions, the span reader and the refusal thresholds."""

    mode: Literal["auto", "extractive", "generative"] = Field(
        "auto",
        description="extractive copies a span (small models); generative writes cited sentences; auto: extractive "
        "for models under 1B parameters, generative from 1B.",
    )
    prompts_dir: Path | None = Field(
        None, description="Folder of prompt and grammar templates; defaults to the packaged ones (prompts/)."
    )
    max_answer_tokens: int = Field(
        24, ge=4, le=4096, description="Upper bound on generated tokens in extractive mode (a short span)."
    )
    max_generative_tokens: int = Field(
        200, ge=16, le=8192, description="Upper bound on generated tokens in generative mode (cited sentences)."
    )
    prompt_token_budget: int = Field(
        1200, ge=128, le=120000, description="Passages are trimmed so the prompt stays within this many tokens."
    )

    # --- answering decisions -----------------------------------------------------
    decisions: Literal["fitted", "rules"] = Field(
        "fitted",
        description="The sentence engine's decider (RAG_READER=off, extractive): fitted: sentence choice and "
        "answer/refuse by the logistic models in prompts/answering_model.json (`python -m rag_eval.fit`); rules: "
        "hand-set weights and checks (also what generative mode uses without the reader).",
    )
    answer_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Refuse below this P(right answer); default: the fitted decider's threshold (prompts/decider.json "
        "with the reader, set for 10% false refusals on a calibration article; prompts/answering_model.json without).",
    )
    confidence_floor: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="An answer whose confidence (the decider's P(right answer)) is below this is shown as a refusal, "
        '"The documents don\'t say for sure", with the answer as the closest guess and its evidence under it; '
        "0 (the default) never withholds an answer.",
    )
    tidy_spans: bool = Field(
        True,
        description="Cut a copied answer at the first clause break and drop words that only repeat the question "
        "(rag/spans.py).",
    )
    reader: Literal["off", "answer"] = Field(
        "answer",
        description="The fitted span reader (prompts/reader.safetensors, trained on SQuAD 2.0 by `python -m "
        "rag_eval.fit_reader`): answer: its spans are judged by the fitted decider (prompts/decider.json, `python -m "
        "rag_eval.fit_decider`), which refuses or answers; extractively the best span is the answer (the generator "
        "chooses among the best `reader_candidates`; with 1 it is not called), generatively the spans are shown to "
        "the model as candidate facts; off: the sentence engine (extractive) or the model alone (generative).",
    )
    reader_k: int = Field(
        6,
        ge=1,
        le=50,
        description="Passages the reader reads per question (RAG_READER=answer); the best RAG_K of them, by its best "
        "span's margin over 'no answer', are shown.",
    )
    reader_candidates: int = Field(
        1,
        ge=1,
        le=5,
        description="Extractive: reader spans the generator may choose from (1: the reader's best span is the reply "
        "and the generator is not called); generative: reader spans shown to the model as candidate facts.",
    )
    reader_span_union: float = Field(
        1.0,
        ge=0.0,
        le=20.0,
        description="Widen the reader's best span to the union with an overlapping span of the same passage whose "
        "margin is within this much of it (logits); 0: never. 1 (chosen on the calibration articles) trades 2 "
        "points of answerable F1 for 4 of containment: 'three' becomes 'three hundred years'.",
    )
    reader_threshold: float | None = Field(
        None,
        ge=-50.0,
        le=50.0,
        description="A hard floor: reader spans whose margin over its 'no answer' score is below this are never "
        "proposed; default: none (the fitted decider weighs the margin with the other signals).",
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
    refusal_text: str = Field(
        "The documents don't say.", min_length=1, max_length=500, description="The answer given when refusing."
    )


class ServerSettings(_Group):
    """`rag serve`: where it listens, who may call it, and the limits on what it accepts."""

    host: str = Field("127.0.0.1", description="Address rag serve binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port rag serve listens on.")
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


Group = TypeVar("Group", bound=_Group)


class Settings(IndexSettings, RetrievalSettings, GenerationSettings, AnsweringSettings, ServerSettings, BaseSettings):
    """Every group in one object, each field read from `RAG_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", validate_assignment=True)

    @property
    def index(self) -> IndexSettings:
        return self._group(IndexSettings)

    @property
    def retrieval(self) -> RetrievalSettings:
        return self._group(RetrievalSettings)

    @property
    def generation(self) -> GenerationSettings:
        return self._group(GenerationSettings)

    @property
    def answering(self) -> AnsweringSettings:
        return self._group(AnsweringSettings)

    @property
    def server(self) -> ServerSettings:
        return self._group(ServerSettings)

    def _group(self, cls: type[Group]) -> Group:
        """This object's values of one group (already validated), remembering which came from flags."""
        group = cls.model_construct(**{name: getattr(self, name) for name in cls.model_fields})
        group._from_flags = frozenset(cls.model_fields) & self._from_flags  # noqa: SLF001 - Settings builds its groups
        return group


GROUPS: dict[str, type[_Group]] = {
    "index": IndexSettings,
    "retrieval": RetrievalSettings,
    "generation": GenerationSettings,
    "answering": AnsweringSettings,
    "server": ServerSettings,
}
ENV_ONLY = frozenset({"api_token", "llm_api_key"})  # secrets get no flag: a flag shows in `ps` and shell history
FLAGS_GIVEN = "settings_flags"  # the namespace attribute listing the fields `add_flags` made flags for


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, groups: Iterable[str]) -> None:
    """A flag for every field of the named groups (`GROUPS`), one help section per group.

    A flag the command already defines keeps the command's meaning (`rag eval --seed` samples questions);
    such a field stays settable by its variable. Values are not checked here but by `build_settings`, so a
    bad flag gets the same one-line message as a bad variable, naming the flag.
    """
    made = list(parser.get_default(FLAGS_GIVEN) or ())
    taken = {a.dest for a in parser._actions}  # noqa: SLF001 - argparse has no public list of its actions
    for name in groups:
        cls = GROUPS[name]
        section = parser.add_argument_group(f"{name} settings", " ".join((cls.__doc__ or "").split()))
        for field, info in cls.model_fields.items():
            flag = flag_name(field)
            if field in ENV_ONLY or field in taken or flag in parser._option_string_actions:  # noqa: SLF001
                continue
            section.add_argument(flag, dest=field, default=None, help=_flag_help(field, info), **_flag_kind(info))
            made.append(field)
            taken.add(field)
    parser.set_defaults(**{FLAGS_GIVEN: tuple(made)})


def flag_values(args: argparse.Namespace) -> dict:
    """The settings flags of a parsed command line, by field (None: not given)."""
    return {field: getattr(args, field) for field in getattr(args, FLAGS_GIVEN, ())}


def _flag_kind(info: FieldInfo) -> dict:
    """argparse's type, choices or action for a field; lists and paths stay text (the validators read them)."""
    kind = info.annotation
    if get_origin(kind) in (Union, UnionType):
        kind = next(a for a in get_args(kind) if a is not type(None))
    if get_origin(kind) is Literal:
        return {"choices": list(get_args(kind))}
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction}
    if kind is int:
        return {"type": int, "metavar": "N"}
    if kind is float:
        return {"type": float, "metavar": "X"}
    if kind is Path:
        return {"metavar": "PATH"}
    if get_origin(kind) is list:
        return {"metavar": "A,B"}
    return {"metavar": "TEXT"}


def _flag_help(field: str, info: FieldInfo) -> str:
    """The description, then the variable, the default and the bounds: `… [RAG_K; default 3; 1 to 50]`."""
    facts = ["RAG_" + field.upper()]
    default = info.get_default(call_default_factory=True)
    if isinstance(default, bool):
        facts.append(f"default {str(default).lower()}")
    elif isinstance(default, list):
        facts.append(f"default {','.join(default)}" if default else "default none")
    elif isinstance(default, str) and " " in default:
        facts.append(f'default "{default}"')
    elif default is not None:
        facts.append(f"default {default}")
    low = high = None
    for bound in info.metadata:
        low = getattr(bound, "ge", low)
        high = getattr(bound, "le", high)
    if low is not None and high is not None:
        facts.append(f"{low} to {high}")
    elif low is not None:
        facts.append(f"at least {low}")
    elif high is not None:
        facts.append(f"at most {high}")
    text = f"{info.description or ''} [{'; '.join(facts)}]".strip()
    return text.replace("%", "%%")  # argparse formats help with %


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
    settings._from_flags = frozenset(given)  # noqa: SLF001 - set by the module that defines Settings
    return settings
