"""rag/settings.py: the groups by concern, the combined Settings that keeps every RAG_* name, the flags
generated from the fields, and components that take their group with no defaults of their own."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from rag.errors import SettingsError
from rag.settings import (
    ENV_ONLY,
    GROUPS,
    AnsweringSettings,
    GenerationSettings,
    IndexSettings,
    RetrievalSettings,
    ServerSettings,
    Settings,
    build_settings,
    flag_name,
    flag_values,
)

from .conftest import ROOT


def parse(*argv: str):
    from rag.cli import build_parser

    return build_parser().parse_args(list(argv))


# --- groups and the combined object ----------------------------------------------------------------------------
def test_every_field_is_in_exactly_one_group_and_keeps_its_default():
    grouped = [field for cls in GROUPS.values() for field in cls.model_fields]
    assert sorted(grouped) == sorted(Settings.model_fields) and len(grouped) == len(set(grouped))
    for cls in GROUPS.values():
        assert cls().model_dump() == Settings.model_construct().model_dump(include=set(cls.model_fields))


def test_variables_keep_their_flat_names(monkeypatch):
    monkeypatch.setenv("RAG_K", "7")
    monkeypatch.setenv("RAG_N_CTX", "4096")
    monkeypatch.setenv("RAG_TIDY_SPANS", "false")
    monkeypatch.setenv("RAG_ALLOWED_HOSTS", "rag.lan, .corp.example")
    settings = Settings()
    assert (settings.k, settings.n_ctx, settings.tidy_spans) == (7, 4096, False)
    assert (settings.retrieval.k, settings.generation.n_ctx, settings.answering.tidy_spans) == (7, 4096, False)
    assert settings.server.allowed_hosts == ["rag.lan", ".corp.example"]


def test_groups_are_projections_and_model_copy_takes_flat_names():
    settings = Settings().model_copy(update={"k": 5, "reader_k": 9, "port": 9001})
    assert isinstance(settings.retrieval, RetrievalSettings) and settings.retrieval.k == 5
    assert settings.answering.reader_k == 9 and settings.server.port == 9001
    assert not hasattr(settings.retrieval, "reader_k")  # a component given its group reads only that group
    assert isinstance(
        settings, (IndexSettings, RetrievalSettings, GenerationSettings, AnsweringSettings, ServerSettings)
    )


def test_a_group_validates_like_the_combined_settings():
    with pytest.raises(ValueError, match="chunk_overlap must be smaller"):
        IndexSettings(chunk_size=100, chunk_overlap=100)
    with pytest.raises(ValueError):
        RetrievalSettings(k=0)
    assert ServerSettings(cors_origins="http://a, http://b").cors_origins == ["http://a", "http://b"]


def test_a_group_names_the_flag_or_the_variable_it_came_from(monkeypatch):
    monkeypatch.setenv("RAG_MODEL_PATH", "/from/env.gguf")
    from_env = build_settings({})
    from_flag = build_settings({"model_path": "/from/flag.gguf"})
    assert from_env.generation.name_of("model_path") == "RAG_MODEL_PATH"
    assert from_flag.generation.name_of("model_path") == "--model-path"
    assert from_flag.name_of("model_path") == "--model-path" and from_flag.name_of("k") == "RAG_K"


# --- flags generated from the fields -----------------------------------------------------------------------------
COMMAND_GROUPS = [
    ("ingest", ["index"]),
    ("search", ["index", "retrieval"]),
    ("ask", ["index", "retrieval", "generation", "answering"]),
    ("serve", ["index", "retrieval", "generation", "answering", "server"]),
]


@pytest.mark.parametrize("command, groups", COMMAND_GROUPS)
def test_each_command_has_a_flag_for_every_setting_it_reads(command, groups):
    from rag.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices[command]  # noqa: SLF001 - the parser argparse built
    flags = {s for a in sub._actions for s in a.option_strings}  # noqa: SLF001
    expected = {flag_name(f) for g in groups for f in GROUPS[g].model_fields if f not in ENV_ONLY}
    assert expected <= flags
    assert not {flag_name(f) for f in ENV_ONLY} & flags  # secrets are variables only: a flag shows in `ps`


def test_flag_names_the_readme_and_tests_use_are_kept():
    args = parse("ask", "q", "--k", "4", "--n-ctx", "1024", "--model", "gemma3", "--model-path", "m.gguf",
                 "--index-dir", "ix", "--seeds-dir", "sd", "--chunk-size", "400", "--mode", "extractive",
                 "--no-tidy-spans", "--reader", "off")  # fmt: skip
    settings = build_settings(flag_values(args))
    assert (settings.k, settings.n_ctx, settings.model, str(settings.model_path)) == (4, 1024, "gemma3", "m.gguf")
    assert (str(settings.index_dir), str(settings.seeds_dir), settings.chunk_size) == ("ix", "sd", 400)
    assert (settings.mode, settings.tidy_spans, settings.reader) == ("extractive", False, "off")
    serve = build_settings(flag_values(parse("serve", "--host", "0.0.0.0", "--port", "9000", "--queue-size", "2")))
    assert (serve.host, serve.port, serve.queue_size) == ("0.0.0.0", 9000, 2)


def test_flags_not_given_leave_the_environment_alone(monkeypatch):
    monkeypatch.setenv("RAG_K", "6")
    monkeypatch.setenv("RAG_TIDY_SPANS", "false")
    assert build_settings(flag_values(parse("ask", "q"))).k == 6
    assert build_settings(flag_values(parse("ask", "q"))).tidy_spans is False
    assert build_settings(flag_values(parse("ask", "q", "--k", "2"))).k == 2  # a flag wins over the variable


def test_help_gives_the_description_variable_default_and_bounds():
    from rag.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices["ask"]  # noqa: SLF001 - the parser argparse built
    text = " ".join(sub.format_help().split())
    assert "Passages returned by search and shown to the model. [RAG_K; default 3; 1 to 50]" in text
    assert "--model {smollm2,gemma3}" in text and "--tidy-spans, --no-tidy-spans" in text
    assert "[RAG_TIDY_SPANS; default true]" in text
    assert "10% false refusals" in text  # a % in a description is not an argparse format
    assert "answering settings:" in text and "retrieval settings:" in text


def test_a_bad_flag_value_names_the_flag():
    with pytest.raises(SettingsError, match=r"^invalid settings: --min-support: .*less than or equal to 1"):
        build_settings(flag_values(parse("ask", "q", "--min-support", "2")))


def test_a_flag_the_command_defines_itself_keeps_its_meaning():
    """`rag eval --seed` samples SQuAD questions; it is not the generation seed (RAG_SEED)."""
    args = parse("eval", "--seed", "7")
    assert args.seed == 7 and "seed" not in flag_values(args)
    assert build_settings(flag_values(args)).seed == GenerationSettings().seed


def test_top_level_help_does_not_import_pydantic():
    """Generating the flags needs pydantic; `rag --help` builds none of them, so it stays instant."""
    code = (
        "import sys\nfrom rag.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().endswith("False")


# --- components: their group, no defaults of their own ------------------------------------------------------------
def _components():
    from rag.answering import Answerer
    from rag.embedding import SentenceTransformerEmbedder
    from rag.generation import LlamaGenerator
    from rag.generation_remote import RemoteGenerator
    from rag.read_strategy import ReaderExtractive
    from rag.refusal import RefusalPolicy
    from rag.retrieval import HybridRetriever
    from rag.strategies import Extractive, Generative

    return [Answerer, SentenceTransformerEmbedder, LlamaGenerator, RemoteGenerator, ReaderExtractive,
            RefusalPolicy, HybridRetriever, Extractive, Generative]  # fmt: skip


NOT_SETTINGS = {"show_progress", "transport", "sleep"}  # display and test hooks, not settings


@pytest.mark.parametrize("component", _components(), ids=lambda c: c.__name__)
def test_components_hold_no_setting_defaults(component):
    params = inspect.signature(component.__init__).parameters.values()
    defaulted = {p.name for p in params if p.default is not inspect.Parameter.empty} - NOT_SETTINGS
    assert not defaulted, f"{component.__name__} has defaults of its own: {sorted(defaulted)}"


def test_a_component_built_from_its_group_gets_the_production_defaults(keyword_embedder):
    from rag.decider import RulesDecider
    from rag.prompts import Templates
    from rag.refusal import RefusalPolicy
    from rag.strategies import Extractive

    answering = AnsweringSettings()
    policy = RefusalPolicy.of(answering)
    assert (policy.min_support, policy.min_relevance, policy.refusal_text) == (0.3, 0.15, "The documents don't say.")
    extractive = Extractive(Templates(), RulesDecider(policy), keyword_embedder, answering)
    assert extractive.tidy_spans is True and extractive.max_tokens == 24 and extractive.policy is policy


def test_rag_ingest_embeds_on_all_cores_unless_told_and_queries_stay_on_one(monkeypatch):
    import os

    from rag.pipeline import ingest_settings

    settings = Settings()
    assert settings.embed_threads == 1 and settings.ingest_threads is None
    assert ingest_settings(settings).embed_threads == (os.cpu_count() or 1)
    assert ingest_settings(settings.model_copy(update={"ingest_threads": 3})).embed_threads == 3
    assert settings.embed_threads == 1  # the serving settings are not changed
