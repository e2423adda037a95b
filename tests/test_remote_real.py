"""RAG_LLM_URL for real: llama-cpp-python's OpenAI-compatible server in its own process, the bundled GGUF,
the real index and embedder; the answer must be grounded and the same as in-process."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from rag.generation import LlamaGenerator, smollm2_path
from rag.generation_remote import RemoteGenerator
from rag.pipeline import Pipeline
from rag.settings import Settings

from .conftest import SEED_FILE, SEEDS
from .support.processes import stop
from .test_api_real import free_port

pytestmark = pytest.mark.slow
READY_TIMEOUT_S = 120
QUESTION = "When did Brad Smith meet Wang Wentao?"


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory):
    """`python -m llama_cpp.server` on a free loopback port, one thread (the machine is shared), stopped after."""
    pytest.importorskip("sse_starlette", reason="llama-cpp-python's server extra: pip install 'rag-chat[dev]'")
    port, log = free_port(), tmp_path_factory.mktemp("llm") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--host", "127.0.0.1",
        "--port", str(port), "--n_threads", "1", "--interrupt_requests", "false",
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"llama_cpp.server exited with {process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"llama_cpp.server not ready after {READY_TIMEOUT_S} s"
            time.sleep(0.5)
        yield url
    finally:
        stop(process)


def test_answer_through_the_server_is_grounded_and_equals_in_process(llm_server, real_embedder, real_index_dir):
    settings = Settings(seeds_dir=SEEDS, index_dir=real_index_dir, llm_url=llm_server, n_threads=1)
    remote = RemoteGenerator(settings)
    assert remote.model_name == smollm2_path().name and remote.reachable()
    assert remote.count_tokens("When did Brad Smith meet Wang Wentao?") > 5 and remote.tokenize_route is not None

    pipeline = Pipeline.load(settings, embedder=real_embedder, generator=remote)
    assert pipeline.info()["backend"] == f"remote {llm_server}" and pipeline.answerer.mode == "extractive"
    answer = pipeline.ask(QUESTION)
    assert not answer.refused and "December 6, 2023" in answer.answer, answer.model_dump()
    original = SEED_FILE.read_text("utf-8")
    assert all(original[c.start : c.end] == c.quote for c in answer.citations)
    assert any("December 6, 2023" in c.quote for c in answer.citations)
    assert remote.last_logprobs and all("logprob" in t for t in remote.last_logprobs)

    local = LlamaGenerator(Settings(n_threads=1))
    assert remote.count_tokens(original[:500]) == local.count_tokens(original[:500])
    in_process = Pipeline.load(settings.model_copy(update={"llm_url": None}), embedder=real_embedder, generator=local)
    expected = in_process.ask(QUESTION)
    assert (answer.answer, answer.raw, answer.citations) == (expected.answer, expected.raw, expected.citations)
    print(f"\ngenerate_ms remote {answer.timings.generate_ms} vs in-process {expected.timings.generate_ms}")


def test_refusal_and_stream_through_the_server(llm_server, real_embedder, real_index_dir):
    settings = Settings(seeds_dir=SEEDS, index_dir=real_index_dir, llm_url=llm_server)
    pipeline = Pipeline.load(settings, embedder=real_embedder, generator=RemoteGenerator(settings))
    assert pipeline.ask("How long did the meeting last?").refused
    kinds = [event.kind for event in pipeline.ask_stream(QUESTION)]
    assert kinds[0] == "sources" and kinds[-1] == "answer" and "token" in kinds


def test_generative_mode_through_the_server_with_the_readers_spans(
    llm_server, real_embedder, real_index_dir, real_reader
):
    """A bigger model's path (generative, RAG_LLM_URL) with the real reader: its spans are shown as candidate
    facts, the decider's verdict gates refusal before the server is asked, and a given answer is cited."""
    settings = Settings(seeds_dir=SEEDS, index_dir=real_index_dir, llm_url=llm_server, mode="generative")
    remote = RemoteGenerator(settings)
    pipeline = Pipeline.load(settings, embedder=real_embedder, generator=remote, reader=real_reader)
    assert type(pipeline.answerer.strategy).__name__ == "ReaderGenerative"
    answer = pipeline.ask(QUESTION)
    assert answer.mode == "generative" and answer.confidence is not None
    if not answer.refused:  # SmolLM2 writes freely here; what it keeps must be supported and cited
        original = SEED_FILE.read_text("utf-8")
        assert answer.citations and all(original[c.start : c.end] == c.quote for c in answer.citations)
    strict = Pipeline.load(
        settings.model_copy(update={"answer_threshold": 1.0}),
        embedder=real_embedder,
        generator=remote,
        reader=real_reader,
    )
    refused = strict.ask(QUESTION)  # no answer is sure enough: the decider refuses before the server is asked
    assert refused.refused and refused.raw == "" and refused.confidence is not None and refused.reason
