"""Warm before ready (issue 24, part 1): the server runs `Pipeline.warm` after loading and says `ready` only
then; the warm-up evaluates the fixed prompt prefix, runs the embedder (a search) and the reader once."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.api.service import WARMING
from rag.index import VectorIndex
from rag.pipeline import WARM_QUESTION, Pipeline, run_ingest

from .support.fakes import PhraseReader, ScriptedGenerator, copy_phrase

BASE = "http://localhost"
QUESTION = "When did Brad Smith meet Wang Wentao?"


class HeldGenerator(ScriptedGenerator):
    """Holds its warm-up until the test releases it."""

    def __init__(self, reply):
        super().__init__(reply)
        self.warming = threading.Event()
        self.release = threading.Event()

    def warm(self, messages):
        self.warming.set()
        assert self.release.wait(10)
        super().warm(messages)


@pytest.fixture
def build(settings, keyword_embedder):
    run_ingest(settings, keyword_embedder)

    def make(generator, **updates):
        s = settings.model_copy(update={"mode": "extractive", "reader": "answer", "reader_candidates": 2, **updates})
        reader = PhraseReader(lambda q: ["December 6, 2023", "Wang Wentao"])
        return Pipeline(s, keyword_embedder, VectorIndex.load(s.index_dir), generator, reader)

    return make


def test_health_is_not_ready_until_the_warm_up_ran(build, keyword_embedder):
    generator = HeldGenerator(copy_phrase("December 6, 2023"))
    pipeline = build(generator)
    app = create_app(pipeline.settings, loader=lambda settings: pipeline)
    with TestClient(app, base_url=BASE) as c:
        assert generator.warming.wait(10)
        r = c.get("/health")
        assert r.status_code == 503 and r.json() == {"status": "loading", "detail": WARMING}
        assert c.post("/ask", json={"question": QUESTION}).status_code == 503
        assert keyword_embedder.calls >= 1 and pipeline.reader.calls[0][0] == WARM_QUESTION  # before the model
        generator.release.set()
        deadline = time.monotonic() + 10
        while c.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.get("/health").json()["status"] == "ready"
        assert set(pipeline.warmed) == {"search", "read", "prefix"}
        assert c.post("/ask", json={"question": QUESTION}).status_code == 200
    (prefix,) = generator.warmed
    asked = generator.calls[0]["messages"]  # the first real prompt starts with what was warmed
    assert prefix[:-1] == asked[:-1] and prefix[0]["role"] == "system" and len(prefix) >= 3
    user, real = prefix[-1]["content"], asked[-1]["content"]
    assert real.startswith(user[: user.index("\n")])  # the user turn's fixed opening ("Passages:") too


def test_warm_runs_once_and_without_a_generator_only_searches(build, settings, keyword_embedder):
    generator = ScriptedGenerator(copy_phrase("December 6, 2023"))
    pipeline = build(generator)
    first = pipeline.warm()
    assert pipeline.warm() is first and len(generator.warmed) == 1 and generator.calls == []
    search_only = Pipeline(settings, keyword_embedder, VectorIndex.load(settings.index_dir))
    assert set(search_only.warm()) == {"search"}


def test_a_failed_warm_up_still_serves(build, caplog):
    class Broken(ScriptedGenerator):
        def warm(self, messages):
            raise RuntimeError("no cache today")

    pipeline = build(Broken(copy_phrase("December 6, 2023")))
    with TestClient(create_app(pipeline.settings, loader=lambda s: pipeline), base_url=BASE) as c:
        deadline = time.monotonic() + 10
        while c.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.get("/health").json()["status"] == "ready"
    assert "warm-up failed" in caplog.text


@pytest.mark.slow
def test_real_generator_warm_makes_the_first_prompt_reuse_the_prefix(real_generator):
    """After warm(), the fixed prefix is in llama.cpp's cache: the next prompt starting with it reuses it."""
    from rag.decider import RulesDecider
    from rag.prompts import Templates
    from rag.refusal import RefusalPolicy
    from rag.settings import AnsweringSettings
    from rag.strategies import Generative

    strategy = Generative(Templates(), RulesDecider(RefusalPolicy.of(AnsweringSettings())), AnsweringSettings())
    fixed = strategy.messages("", [])
    real_generator.llama.reset()
    real_generator.warm(fixed)
    cached = real_generator.llama.n_tokens
    assert cached > 50
    prefix_tokens = list(real_generator.llama._input_ids[:cached])  # noqa: SLF001 - the cache's tokens
    shown = [type("N", (), {"n": 1, "text": "Brad Smith met Wang Wentao on December 6, 2023."})()]
    list(real_generator.generate(strategy.messages(QUESTION, shown), None, 2))
    again = list(real_generator.llama._input_ids[:cached])  # noqa: SLF001
    common = next((i for i, (a, b) in enumerate(zip(again, prefix_tokens)) if a != b), cached)
    # the real prompt began with the warmed prefix: all of it but the empty user turn's own tail ("\n\nQuestion:
    # " and the assistant header, which the real turn's passages replace) was reused
    assert common >= cached - 24, (common, cached)


def test_with_one_reader_candidate_the_prefix_is_counted_not_evaluated(build):
    """The default reader setup (one candidate) never calls the generator, so its prompt is not cached: that
    evaluation was 8.3 s of a 19.8 s cold start on a loaded 2-core machine."""
    generator = ScriptedGenerator(copy_phrase("December 6, 2023"))
    pipeline = build(generator, reader_candidates=1)
    assert not pipeline.answerer.strategy.generates
    assert set(pipeline.warm()) == {"search", "read", "prefix"}
    assert generator.warmed == [] and pipeline.answerer._prefix_tokens  # noqa: SLF001 - counted for check_fits
    answer = pipeline.ask(QUESTION)
    assert generator.calls == [] and not answer.refused
