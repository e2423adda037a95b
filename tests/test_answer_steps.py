"""Issue 24 part 3: the question embedded once per answer, and every per-answer step besides generation timed in
the answer's `timings.steps_ms` and summarised by `rag bench` (fakes only: no model runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag import contract
from rag.answering import RETRIEVE_STEPS, STEPS
from rag.citations import number_passages
from rag.evidence import hand_rank, select_sentences
from rag.index import VectorIndex
from rag.pipeline import Pipeline, run_ingest
from rag.question import analyse
from rag_eval.bench import report
from rag_eval.bench.server import answer_steps

from .support.fakes import KeywordEmbedder, PhraseReader, ScriptedGenerator, copy_phrase

QUESTION = "When did Brad Smith meet Wang Wentao?"


class CountingEmbedder(KeywordEmbedder):
    """The keyword fake, recording every text it embeds."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return super().embed(texts)


@pytest.fixture
def embedder(settings):
    embedder = CountingEmbedder()
    run_ingest(settings, embedder)
    embedder.texts.clear()
    return embedder


def sentence_engine(settings, embedder) -> Pipeline:
    s = settings.model_copy(update={"mode": "extractive", "reader": "off"})
    return Pipeline.load(s, embedder=embedder, generator=ScriptedGenerator(copy_phrase("December 6, 2023")))


def reader_led(settings, embedder) -> Pipeline:
    s = settings.model_copy(update={"mode": "extractive", "reader": "answer"})
    reader = PhraseReader(lambda q: ["December 6, 2023"])
    return Pipeline(s, embedder, VectorIndex.load(s.index_dir), ScriptedGenerator(copy_phrase("x")), reader)


@pytest.mark.parametrize("build", [sentence_engine, reader_led])
def test_the_question_is_embedded_once_per_answer(settings, embedder, build):
    pipeline = build(settings, embedder)
    for _ in range(2):  # per answer, not only the first
        embedder.texts.clear()
        answer = pipeline.ask(QUESTION)
        assert embedder.texts.count(QUESTION) == 1, embedder.texts
        assert "plan" in answer.timings.steps_ms  # the strategy ran (not refused before it)
    if build is sentence_engine:  # the sentences were embedded, without the question
        assert len(embedder.texts) > 1 and not answer.refused and answer.answer == "December 6, 2023 [1]"


def test_the_sentence_engine_scores_sentences_exactly_as_when_it_embedded_the_question(settings, embedder):
    pipeline = sentence_engine(settings, embedder)
    passages = pipeline.search(QUESTION, 3)
    numbered = number_passages(passages)
    alone = select_sentences(analyse(QUESTION), numbered, embedder, hand_rank)
    query = pipeline.retriever.embed_query(QUESTION)
    shared = select_sentences(analyse(QUESTION).with_vector(query.text, query.vector), numbered, embedder, hand_rank)
    assert [(c.item.n, c.start, c.end) for c in alone] == [(c.item.n, c.start, c.end) for c in shared]
    assert [c.features for c in alone] == [c.features for c in shared]  # the same cosines, bit for bit
    assert [c.score for c in alone] == [c.score for c in shared]


def test_a_vector_of_other_text_is_not_kept():
    """The retriever embeds a query cut to its longest length; a cut question keeps no vector (it would not be
    the question's), so the sentence engine embeds the whole question as before."""
    q = analyse("  Who met whom?  ")
    vector = np.ones(4, dtype=np.float32)
    assert q.with_vector("Who met", vector).vector is None
    assert q.with_vector("Who met whom?", vector).vector is vector
    assert q.with_vector("Who met whom?", vector) == q  # the vector is not part of a question's identity


def test_searching_with_an_embedded_query_equals_searching_with_its_text(settings, embedder):
    pipeline = sentence_engine(settings, embedder)
    by_text = pipeline.retriever.search(QUESTION, 4)
    embedder.texts.clear()
    by_query = pipeline.retriever.search(pipeline.retriever.embed_query(QUESTION), 4)
    assert by_query == by_text and embedder.texts == [QUESTION]


@pytest.mark.parametrize("build", [sentence_engine, reader_led])
def test_every_step_besides_generation_is_in_the_answers_timings(settings, embedder, build):
    answer = build(settings, embedder).ask(QUESTION)
    t = answer.timings
    assert list(t.steps_ms) == list(STEPS)  # every step, in order
    assert all(ms >= 0 for ms in t.steps_ms.values())
    assert t.retrieve_ms == pytest.approx(sum(t.steps_ms[s] for s in RETRIEVE_STEPS), abs=0.11)
    assert sum(t.steps_ms.values()) + t.generate_ms <= t.total_ms + 0.5  # back to back, nothing counted twice
    if build is reader_led:
        assert t.generate_ms == 0.0  # one candidate: the reader's span is the reply, the model is not called
    dumped = answer.model_dump()["timings"]
    assert set(dumped) == {"retrieve_ms", "generate_ms", "total_ms", "steps_ms"}


def test_a_refusal_before_the_model_lists_only_the_steps_that_ran(settings, embedder):
    pipeline = sentence_engine(settings, embedder)
    pipeline.answerer.decider.before = lambda q, relevance: pipeline.answerer.decider.refuse("no_candidate")
    answer = pipeline.ask(QUESTION)
    assert answer.refused and list(answer.timings.steps_ms) == ["check", "embed", "search", "fit_budget", "finish"]


def test_timings_without_steps_still_parse():
    """Answers recorded before `steps_ms` existed (eval records, older servers) are still valid answers."""
    old = {"retrieve_ms": 1.0, "generate_ms": 2.0, "total_ms": 3.0}
    assert contract.Timings.model_validate(old).steps_ms == {}
    assert "steps_ms" in contract.Answer.model_json_schema()["$defs"]["Timings"]["properties"]


# --- rag bench ----------------------------------------------------------------------------------------------
def timings(steps: dict, generate: float, total: float) -> dict:
    return {"retrieve_ms": 0.0, "generate_ms": generate, "total_ms": total, "steps_ms": steps}


def test_bench_summarises_each_step_over_the_answers_that_ran_it():
    answers = [
        timings({"check": 1.0, "embed": 10.0, "search": 5.0, "read": 100.0, "plan": 3.0, "finish": 1.0}, 0.0, 121.0),
        timings({"check": 3.0, "embed": 12.0, "search": 7.0, "finish": 2.0}, 0.0, 25.0),  # refused before the model
        timings({"check": 2.0, "embed": 14.0, "search": 6.0, "read": 200.0, "plan": 5.0, "finish": 3.0}, 0.0, 231.0),
    ]
    rows = {r["step"]: r for r in answer_steps(answers)}
    assert list(rows) == ["check", "embed", "search", "read", "plan", "finish", "generate", "total"]
    assert rows["embed"]["p50_ms"] == 12.0 and rows["embed"]["answers"] == 3
    assert rows["read"]["p50_ms"] == 150.0 and rows["read"]["answers"] == 2
    assert rows["total"]["p50_ms"] == 121.0 and rows["embed"]["what"] == STEPS["embed"]
    assert answer_steps([]) == []


def test_bench_report_prints_the_steps_table_and_keeps_it_in_the_json():
    rows = answer_steps([timings({"check": 1.0, "embed": 9.5, "search": 4.0, "finish": 1.0}, 800.0, 815.0)])
    results = {"ask_n": 1, "answer_steps": rows}
    text = report.render_markdown(results)
    assert "## Per-answer steps" in text and report.STEPS_HEAD in text
    assert "| embed | 9.5 | 9.5 | 1 | the question embedded" in text
    assert "| generate | 800.0 | 800.0 | 1 |" in text
    out = json.loads(json.dumps(report.json_report(results), allow_nan=False))
    assert [r["step"] for r in out["answer_steps"]] == ["check", "embed", "search", "finish", "generate", "total"]
    assert "## Per-answer steps" not in report.render_markdown({})  # not measured: no table


def test_findings_name_the_answers_own_steps_when_measured():
    rows = answer_steps([timings({"embed": 9.5, "read": 90.0}, 1400.0, 1500.0)])
    results = {"ask_p50_ms": 1500.0, "pipeline_steps_ms": {"search": 1.0}, "answer_steps": rows}
    notes = " ".join(report.findings(results))
    assert "embed 9.5, read 90" in notes and "generate" not in notes
