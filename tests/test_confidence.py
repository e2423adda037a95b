"""Confidence (issue 22, part 4): the decider's probability in the answer contract, in words in the chat and the
CLI, the confidence floor turning an unsure answer into a refusal with its best guess, and calibration in eval.

All with fakes: the fitted decider bundled in prompts/ (a small JSON file) is the only real part, and only
where an answer's confidence must come from the pipeline itself.
"""

from __future__ import annotations

import html
import json
import re

import pytest

from rag import contract
from rag.cli import format_answer, main
from rag.contract import confidence_words
from rag.errors import SettingsError
from rag.pipeline import Pipeline, run_ingest
from rag.refusal import NOT_SURE, RefusalPolicy
from rag.settings import Settings, build_settings
from rag_eval import evaluate as ev
from rag_eval import metrics as mt
from rag_eval import report as rp
from rag_eval import squad as sq
from rag_eval.stats import calibration
from ui import render

from .support import fakes
from .support.eval_fakes import (  # noqa: F401
    answer,
    citation,
    eval_pipeline,
    passage,
    question,
    refusal,
    seeds,
    write_questions,
)
from .support.fakes import ScriptedGenerator, copy_phrase
from .test_api import QUESTION, make_client, sse_events
from .test_squad import cite, loaded, reply, squad_file  # noqa: F401

DOC = "Brad Smith met China's Minister of Commerce, Wang Wentao, on Wednesday, December 6, 2023, in Beijing."
QUOTE = "Wednesday, December 6, 2023"


def sure_answer(question: str = QUESTION, confidence: float | None = 0.93) -> contract.Answer:
    p = fakes.passage("doc.txt", DOC, start=10)
    evidence = [contract.Evidence(n=1, source="doc.txt", start=10, end=10 + len(DOC), text=DOC)]
    return fakes.cited_answer(question, p, QUOTE, evidence=evidence, confidence=confidence)


def withheld(question: str = QUESTION, p: float = 0.4) -> contract.Answer:
    """What the pipeline makes of `sure_answer` when its confidence `p` is under the floor."""
    given = sure_answer(question, p)
    guess = contract.BestGuess(answer=given.answer, confidence=p, citations=given.citations, evidence=given.evidence)
    return given.model_copy(update={
        "answer": "The documents don't say.", "refused": True, "citations": [], "reason": NOT_SURE,
        "confidence": round(1 - p, 4), "best_guess": guess,
    })  # fmt: skip


# --- words -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "p, word", [(1.0, "sure"), (0.8, "sure"), (0.79, "likely"), (0.55, "likely"), (0.5, "unsure"), (0.0, "unsure")]
)
def test_confidence_is_said_in_one_set_of_words(p, word):
    assert confidence_words(p) == word


def test_no_confidence_is_no_word():
    assert confidence_words(None) is None


# --- the pipeline: one place sets it, the floor withholds -------------------------------------------------------
@pytest.fixture
def ask_with(settings, keyword_embedder):
    """Answers from the seed document through the real Answerer; the fitted decider bundled in prompts/."""
    run_ingest(settings, keyword_embedder)

    def make(mode: str = "extractive", **updates) -> Pipeline:
        s = settings.model_copy(update={"mode": mode, **updates})
        return Pipeline.load(s, embedder=keyword_embedder, generator=ScriptedGenerator(copy_phrase("December 6, 2023")))

    return make


ASKED = "When did Brad Smith meet Wang Wentao?"


def test_an_answer_carries_the_deciders_probability_and_a_refusal_its_complement(ask_with):
    pipeline = ask_with()
    given = pipeline.ask(ASKED)
    p = given.signals["extra"]["p_answer"]
    assert not given.refused and given.confidence == p and 0 < p < 1 and given.best_guess is None
    refused = pipeline.ask("Who is the president of France?")
    assert refused.refused and refused.confidence == pytest.approx(1 - refused.signals["extra"]["p_answer"], abs=1e-4)


def test_generative_mode_without_a_decider_states_no_confidence(ask_with):
    answer = ask_with("generative", confidence_floor=0.99).ask(ASKED)
    assert answer.confidence is None and answer.best_guess is None  # and the floor leaves it alone


def test_an_answer_under_the_floor_is_refused_as_not_sure_with_its_best_guess(ask_with):
    p = ask_with().ask(ASKED).confidence
    kept = ask_with(confidence_floor=max(0.0, p - 0.01)).ask(ASKED)
    assert not kept.refused and kept.confidence == p
    answer = ask_with(confidence_floor=min(1.0, p + 0.01)).ask(ASKED)
    assert answer.refused and answer.reason == NOT_SURE and answer.answer == "The documents don't say."
    assert answer.citations == [] and answer.confidence == pytest.approx(1 - p, abs=1e-4)
    guess = answer.best_guess
    assert guess.answer == "December 6, 2023 [1]" and guess.confidence == p
    (c,) = guess.citations
    assert c.quote == "December 6, 2023" and guess.evidence and "December 6, 2023" in guess.evidence[0].text


def policy(floor: float) -> RefusalPolicy:
    return RefusalPolicy(
        min_support=0.3, min_relevance=0.15, refusal_text="The documents don't say.", confidence_floor=floor
    )


def test_the_floor_is_a_bounded_setting_off_by_default(monkeypatch):
    assert Settings().confidence_floor == 0.0 and not policy(Settings().confidence_floor).below_floor(0.01)
    monkeypatch.setenv("RAG_CONFIDENCE_FLOOR", "0.6")
    assert build_settings().confidence_floor == 0.6
    monkeypatch.setenv("RAG_CONFIDENCE_FLOOR", "1.5")
    with pytest.raises(SettingsError, match="RAG_CONFIDENCE_FLOOR"):
        build_settings()
    assert policy(0.6).below_floor(0.59) and not policy(0.6).below_floor(0.6) and not policy(0.6).below_floor(None)


# --- the API and /v1 -------------------------------------------------------------------------------------------------
def pipeline_answering(answer_for) -> fakes.FakePipeline:
    return fakes.FakePipeline([fakes.passage("doc.txt", DOC, start=10)], answer_for, ["[1] Wednesday"])


def test_ask_returns_the_confidence():
    with make_client(pipeline_answering(sure_answer)) as c:
        body = c.post("/ask", json={"question": QUESTION}).json()
    assert body["confidence"] == 0.93 and body["best_guess"] is None


def test_v1_carries_confidence_and_best_guess_beside_the_completion():
    with make_client(pipeline_answering(withheld)) as c:
        body = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}).json()
        assert body["refused"] is True and body["confidence"] == 0.6
        assert body["best_guess"]["answer"] == f"{QUOTE} [1]" and body["best_guess"]["confidence"] == 0.4
        assert body["best_guess"]["citations"][0]["quote"] == QUOTE
        payload = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
        events = sse_events(c.post("/v1/chat/completions", json=payload).text)
    last = json.loads(events[-2][1])
    assert last["choices"][0]["finish_reason"] == "stop" and last["confidence"] == 0.6
    assert last["best_guess"]["confidence"] == 0.4


def test_v1_answer_without_a_confidence_says_null():
    with make_client(pipeline_answering(lambda q: sure_answer(q, None))) as c:
        body = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}).json()
    assert body["confidence"] is None and body["refused"] is False


# --- the CLI -----------------------------------------------------------------------------------------------------------
def test_cli_says_the_confidence_next_to_the_answer():
    lines = format_answer(sure_answer()).splitlines()
    assert lines[0] == f"{QUOTE} [1]  (sure)"
    assert format_answer(sure_answer(confidence=0.6)).splitlines()[0].endswith("(likely)")
    assert format_answer(sure_answer(confidence=None)).splitlines()[0] == f"{QUOTE} [1]"


def test_cli_shows_a_withheld_answer_as_not_sure_with_the_closest_guess_and_its_evidence():
    lines = format_answer(withheld()).splitlines()
    assert lines[0] == f"The documents don't say for sure; closest: {QUOTE} [1]  (unsure)"
    assert lines[1] == f"  evidence [1]: {DOC}"
    assert f"\u27e6{QUOTE}\u27e7" in lines[2] and lines[2].startswith("  [1] doc.txt")


def test_rag_ask_json_prints_the_confidence(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RAG_SEEDS_DIR", str(tmp_path))
    fake = pipeline_answering(withheld)
    monkeypatch.setattr(Pipeline, "load", classmethod(lambda cls, settings, **kw: fake))
    assert main(["ask", QUESTION, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["confidence"] == 0.6 and out["best_guess"]["confidence"] == 0.4 and out["reason"] == NOT_SURE
    assert main(["ask", QUESTION]) == 0
    assert capsys.readouterr().out.startswith("The documents don't say for sure; closest: ")


# --- the chat ----------------------------------------------------------------------------------------------------------
def test_chat_shows_the_confidence_as_a_word_with_the_number_in_its_tooltip():
    out = render.answer_html(sure_answer().model_dump())
    pill = re.search(r'<span class="rag-confidence rag-confidence-sure" title="([^"]*)">sure</span>', out)
    assert pill and html.unescape(pill.group(1)).startswith("confidence 0.93")
    assert render.plain_text(sure_answer().model_dump()).splitlines()[0] == f"{QUOTE} [1] (sure)"
    assert "rag-confidence" not in render.answer_html(sure_answer(confidence=None).model_dump())


def test_chat_shows_a_withheld_answer_as_a_refusal_with_the_closest_guess():
    answer = withheld().model_dump()
    out = render.answer_html(answer)
    text = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert 'class="rag-refusal"' in out and "The documents don't say for sure; closest: " in text
    assert QUOTE in text and "rag-badge" in out and "rag-confidence-unsure" in out
    assert 'class="rag-evidence"' in out and f"<mark>{render.text_html(QUOTE)}</mark>" in out
    assert (
        render.plain_text(answer).splitlines()[0] == f"The documents don't say for sure; closest: {QUOTE} [1] (unsure)"
    )
    sources = render.sources_html(QUESTION, answer, [])
    assert "Closest guess for" in sources and f"<mark>{render.text_html(QUOTE)}</mark>" in sources


def test_a_refusal_says_how_sure_it_is():
    out = render.answer_html(fakes.refusal(QUESTION).model_copy(update={"confidence": 0.85}).model_dump())
    assert "rag-confidence-sure" in out and "Why: " in out


# --- calibration -------------------------------------------------------------------------------------------------------
def test_a_perfectly_calibrated_decider_has_no_calibration_error():
    pairs = [(0.8, True)] * 8 + [(0.8, False)] * 2 + [(0.3, True)] * 3 + [(0.3, False)] * 7
    c = calibration(pairs)
    assert c["ece"] == pytest.approx(0.0, abs=1e-12) and c["n"] == 20
    assert [(b["n"], b["accuracy"]) for b in c["bins"] if b["n"]] == [(10, 0.3), (10, 0.8)]


def test_sure_of_everything_and_right_about_nothing_is_an_error_near_one():
    assert calibration([(0.99, False)] * 5 + [(1.0, False)] * 5)["ece"] == pytest.approx(0.995)


def test_ece_weights_each_bin_by_its_answers():
    c = calibration([(0.25, True), (0.25, False), (0.9, True)])
    assert c["ece"] == pytest.approx(2 / 3 * 0.25 + 1 / 3 * 0.1)
    assert calibration([])["ece"] is None and calibration([])["n"] == 0  # nothing measured is not "calibrated"


def judged(answerable: bool, refused: bool, correct, confidence) -> dict:
    return {
        "answerable": answerable,
        "refused": refused,
        "correct": correct,
        "forbidden_found": [],
        "confidence": confidence,
    }


def test_a_refusal_is_right_when_the_question_is_unanswerable_and_unstated_confidences_are_left_out():
    js = [judged(False, True, None, 0.9), judged(True, False, True, 0.9), judged(True, True, False, 0.1),
          judged(False, False, None, 0.1), judged(True, False, True, None)]  # fmt: skip
    m = mt.calibration_metric(js)
    # bin 0.9: two right of two (|1 - 0.9|); bin 0.1: a false refusal and an answered unanswerable, both wrong
    assert m["value"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.1) and m["n"] == 4 and m["without"] == 1


@pytest.fixture
def confident_run(tmp_path, seeds):
    questions = [question("fact01"), question("unans01", "unanswerable", answerable=False), question("fact02")]
    script = {
        "question fact01?": ({**answer("Wang Wentao [1]", citation("Wang Wentao")), "confidence": 0.9}, [passage()]),
        "question unans01?": ({**refusal(), "confidence": 0.7}, [passage()]),
        "question fact02?": (answer("Wang Wentao [1]", citation("Wang Wentao")), [passage()]),
    }
    path = write_questions(tmp_path / "questions.jsonl", questions)
    return ev.run_eval(eval_pipeline(seeds, script), questions, 2, path)


def test_eval_results_report_and_chart_hold_the_calibration(confident_run, tmp_path, monkeypatch):
    results = confident_run
    assert [r["judgement"]["confidence"] for r in results["questions"]] == [0.9, 0.7, None]
    ece = results["metrics"]["overall"]["ece"]
    assert ece["value"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.3) and ece["n"] == 2 and ece["without"] == 1
    monkeypatch.setattr(rp, "write_chart", lambda results, p: p.write_bytes(b"png"))  # the other chart: not here
    paths = rp.write_outputs(results, tmp_path / "run")
    assert [p.name for p in paths][-1] == "reliability.png"
    assert paths[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Calibration" in report and "over 2 questions with a confidence (1 without one are left out" in report
    assert "| expected calibration error ↓ | 0.200 |" in report and "| 0.9–1.0 | 1 | 0.900 | 1.000 |" in report


def test_no_confidence_no_reliability_chart(tmp_path, seeds, monkeypatch):
    questions = [question("fact01")]
    script = {"question fact01?": (answer("Wang Wentao [1]", citation("Wang Wentao")), [passage()])}
    results = ev.run_eval(eval_pipeline(seeds, script), questions, 2, write_questions(tmp_path / "q.jsonl", questions))
    monkeypatch.setattr(rp, "write_chart", lambda results, p: p.write_bytes(b"png"))
    assert "reliability.png" not in [p.name for p in rp.write_outputs(results, tmp_path / "run")]
    assert "No answer stated a confidence (1 questions)" in rp.render_report(results)


def test_squad_records_carry_the_confidence_and_the_report_its_calibration(loaded, tmp_path):
    _, _, qs = loaded
    c1, e1 = qs["c1"], qs["e1"]
    records = [
        sq.score(c1, {**reply("on the mat [1]", [cite(c1.doc_id, *c1.spans[0])]), "confidence": 0.8}, 1.0),  # right
        sq.score(qs["c4"], {**reply("2012 [1]"), "confidence": 0.8}, 1.0),  # unanswerable, answered: wrong
        sq.score(e1, {**reply("no", refused=True), "confidence": 0.6}, 1.0),  # answerable, refused: wrong
        sq.score(qs["c2"], reply("no", refused=True), 1.0),  # no confidence: left out
    ]
    assert [r["confidence"] for r in records] == [0.8, 0.8, 0.6, None]
    results = sq.results(records, {"file": "tiny.json", "k": 3})
    m = results["metrics"]
    assert m["overall"]["ece"] == pytest.approx(2 / 3 * 0.3 + 1 / 3 * 0.6) and m["overall"]["with_confidence"] == 3
    assert m["baseline"]["overall"]["ece"] is None  # refusing everything states nothing
    report = sq.render_report(results)
    assert "## Calibration" in report and "over 3 of 4 scored questions" in report
    assert "| expected calibration error (questions with a confidence) | 0.400 | – |" in report
    chart = tmp_path / "reliability.png"
    assert sq.write_reliability_chart(results, chart) and chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not sq.write_reliability_chart(sq.results(records[3:], {}), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
