"""The chat UI's pure parts: badges, the sources panel, refusals, loading and errors, follow-up rewrites.

Also home of `chat_pipeline`, the fake pipeline with the canned, cited, streaming answer the browser tests serve.
"""

from __future__ import annotations

import asyncio
import html
import json
import re

import pytest

from rag.api.service import RagService
from rag.errors import ModelError
from rag.followup import Turn, content_words, followup_cue, is_followup, passage_frequency, rewrite
from ui import chat, render

from .conftest import ROOT
from .support import fakes

DOC = "000_d74c9cd70636ffa8.txt"
P1 = "Microsoft President Brad Smith engaged in a significant meeting with China's Minister of Commerce, Wang Wentao, on Wednesday, December 6, 2023."
P1_START = 100
P2 = "Nothing to see <here> & there's $x$ — ${value} *stars* [2] #tag"
P2_START = 400


def passage(text: str, start: int, chunk_id: str, score: float = 0.03):
    return fakes.passage(DOC, text, start, chunk_id, score)


INFO = {"documents": 1, "chunks": 2, "embedder": "fake", "model": "fake.gguf", "mode": "extractive"}


def chat_pipeline(refuse: bool = False, fail: Exception | None = None, delay: float = 0.0) -> fakes.FakePipeline:
    """Streams a canned answer citing "Wednesday, December 6, 2023" in P1, the way the real one does."""
    p1, p2 = passage(P1, P1_START, f"{DOC}#1"), passage(P2, P2_START, f"{DOC}#2", 0.02)

    def answer(question: str):
        if refuse:
            return fakes.refusal(question)
        return fakes.cited_answer(question, p1, "Wednesday, December 6, 2023", timings={"total_ms": 1234.0})

    tokens = ["[1] Wed", "nesday, Dec", "ember 6, 2023"]
    return fakes.FakePipeline([p1, p2], answer, tokens, INFO, delay=delay * len(tokens), fail=fail)


def final_answer(refuse: bool = False) -> dict:
    return chat_pipeline(refuse=refuse).ask("When?").model_dump()


# --- escaping and badges -------------------------------------------------------------------------


def test_text_html_is_inert_and_round_trips():
    nasty = "<script>alert('x')</script> & \"q\" *b* _i_ [1] $$x$$ ${value} `c` # h"
    out = render.text_html(nasty)
    assert html.unescape(out) == nasty
    bare = re.sub(r"&#\d+;", "", out)  # what is left besides character references
    for ch in "<>\"'*_[]$`#{}&":
        assert ch not in bare


def test_markers_become_badges_and_text_is_escaped():
    out = render.with_badges("Wang <b>Wentao</b> [1] and [12].", {1: "doc: “Wang”"})
    assert out.count('class="rag-badge"') == 2
    assert '<span class="rag-badge" title="doc: “Wang”">1</span>' in out
    assert ">12</span>" in out
    assert "<b>" not in out and "&#60;b&#62;" in out
    assert "[1]" not in out and "[12]" not in out


def test_answer_html_badges_and_meta():
    out = render.answer_html(final_answer())
    assert 'class="rag-answer"' in out
    assert "Wednesday, December 6, 2023" in html.unescape(out)
    assert re.search(r'<span class="rag-badge" title="[^"]*Wednesday[^"]*">1</span>', out)
    assert "fake.gguf · extractive · 1.2 s" in out
    assert "rag-refusal" not in out


def test_refusal_is_a_note_with_its_reason_not_an_error():
    out = render.answer_html(final_answer(refuse=True))
    assert 'class="rag-refusal"' in out
    assert "The documents don" in out and "t say." in out
    assert "Why: no date in the cited passage" in out
    assert "rag-error" not in out and "rag-badge" not in out


def test_streaming_and_followup_note():
    out = render.streaming_html("[1] Wednes", searched="When was that? (wang wentao)")
    assert "rag-cursor" in out and "rag-badge" in out and "Wednes" in out
    assert "Follow-up question: searched for" in out and "wang wentao" in out
    assert "Reading the passages" in render.streaming_html("")


def test_loading_and_error_messages():
    assert "Model is loading…" in render.loading_html()
    err = render.error_html("boom <b>")
    assert 'class="rag-error"' in err and "<b>" not in err and "boom" in err


# --- sources panel -----------------------------------------------------------------------------------


def test_sources_highlight_exactly_the_cited_span():
    answer = final_answer()
    out = render.sources_html(
        "When did they meet?",
        answer,
        [p.to_out().model_dump() for p in [passage(P1, P1_START, "a"), passage(P2, P2_START, "b")]],
    )
    marks = re.findall(r"<mark>(.*?)</mark>", out)
    assert [html.unescape(m) for m in marks] == ["Wednesday, December 6, 2023"]
    c = answer["citations"][0]
    assert c["text"][c["start"] - c["passage_start"] : c["end"] - c["passage_start"]] == c["quote"]
    # the whole passage is shown around the mark, with the document name and the offsets
    card = out[out.index("rag-cited") : out.index("</mark>") + 200]
    assert html.unescape(re.sub(r"</?mark>", "", re.search(r'rag-passage">(.*?)</div>', card).group(1))) == P1
    assert DOC in html.unescape(out) and f"characters {c['start']}–{c['end']}" in out
    # the other retrieved passage is listed, escaped, under "Other retrieved passages"
    assert "Other retrieved passages (1)" in out
    assert "<here>" not in out and "${value}" not in out and "$x$" not in out
    assert html.unescape(out).count(P2) == 1


def test_cited_span_falls_back_to_the_quote_when_offsets_disagree():
    c = dict(final_answer()["citations"][0])
    c["start"] += 5  # wrong offsets
    c["end"] += 5
    assert c["text"][slice(*render.cited_span(c))] == c["quote"]
    c["quote"] = "not in the passage"
    assert render.cited_span(c) is None
    out = render.citation_card(c)
    assert "<mark>" not in out and "could not be located" in out


def test_sources_for_a_refusal_list_what_was_searched():
    out = render.sources_html("q", final_answer(refuse=True), [passage(P1, P1_START, "a").to_out().model_dump()])
    assert "Nothing cited for" in out and "<mark>" not in out and "Wang Wentao" in out


def test_sources_while_streaming_and_empty():
    assert "Retrieved for" in render.sources_html("q", None, [passage(P1, P1_START, "a").to_out().model_dump()])
    assert render.NO_SOURCES in render.sources_html()


# --- the chat handler's event sequence (ui.chat; no gradio) ----------------------------------------------


def served(pipeline=None, **settings) -> RagService:
    """The server's service answering with `pipeline` (None: still loading), as the chat page is given it."""
    from rag.settings import Settings

    return RagService(Settings(**settings), pipeline)


def answer_steps(service: RagService, question: str, history=()) -> list[tuple]:
    """Every step `ui.chat.answer_events` gives for one question."""

    async def go():
        return [step async for step in chat.answer_events(service, question, list(history))]

    return asyncio.run(go())


def test_events_stream_then_final():
    fake = chat_pipeline()
    events = answer_steps(served(fake), "When did they meet?")
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and kinds[1] == "sources" and kinds[-1] == "final"
    assert [p for k, p in events if k == "stream"][-1] == "[1] Wednesday, December 6, 2023"
    assert events[-1][1]["citations"][0]["quote"] == "Wednesday, December 6, 2023"
    assert fake.closed == 1


def test_events_loading_error_and_failures_never_raise():
    assert answer_steps(served(), "q") == [("loading", None)]

    def broken(settings):
        raise ModelError("no GGUF file at /x", hint="set RAG_MODEL_PATH")

    failed = served()
    failed.start_loading(broken).join()
    assert answer_steps(failed, "q") == [("error", "no GGUF file at /x (set RAG_MODEL_PATH)")]
    fake = chat_pipeline(fail=ValueError("llama exploded"))
    events = answer_steps(served(fake), "q")
    assert events[-1][0] == "error" and "llama exploded" in events[-1][1] and fake.closed == 1
    fake = chat_pipeline()
    events = answer_steps(served(fake), "\u200b ")  # the service's check, before the pipeline sees it
    assert events == [("error", "That question cannot be searched: must not be blank (it has no visible characters)")]
    assert fake.calls == []


def test_events_rewrite_followups_with_the_previous_turn():
    fake = chat_pipeline()
    history = [{"query": "Who did Brad Smith meet?", "answer_text": "Wang Wentao [1]", "refused": False}]
    events = answer_steps(served(fake), "and when was that?", history)
    assert events[0][1].applied
    assert fake.questions == ["When was that? (wang wentao brad)"]


def test_events_leave_a_followup_alone_when_its_own_word_pins_a_passage():
    class Index:
        chunks = [
            passage(P1, P1_START, "a").chunk,
            passage(P2, P2_START, "b").chunk,
            passage("Brad Smith met reporters.", 600, "c").chunk,
        ]

    fake = chat_pipeline()
    fake.index = Index()
    history = [{"query": "Who did Brad Smith meet?", "answer_text": "Wang Wentao [1]", "refused": False}]
    answer_steps(served(fake), "and what did he engage in?", history)  # "engaged": one passage
    answer_steps(served(fake), "and what did he say?", history)  # "say": a stopword, nothing pins
    assert fake.questions == ["and what did he engage in?", "What did he say? (wang wentao brad)"]
    assert chat.frequency_for(fake) is chat.frequency_for(fake)  # built once per pipeline


def test_status_line():
    assert chat.status_markdown(lambda: None) == (render.LOADING_MESSAGE, False)
    text, ready = chat.status_markdown(lambda: chat_pipeline())
    assert ready and text == "Ready · 1 document · 2 passages · fake.gguf (extractive)"


# --- follow-up rewrite (rag/followup.py) -------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    ["and when was that?", "who translated it?", "when?", "how much?", "what are those used for?", "And of Tesla?",
     "what did he emphasize?"],
)  # fmt: skip
def test_followups_are_recognised(question):
    assert is_followup(question), question


@pytest.mark.parametrize(
    "question",
    ["Which company developed ChatGPT?", "Who translated the Chinese government announcement?",
     "Where does Tesla operate one of its largest factories?", "When did Brad Smith meet Wang Wentao?", ""],
)  # fmt: skip
def test_standalone_questions_are_left_alone(question):
    assert followup_cue(question) is None
    r = rewrite(question, [Turn("Who is the CEO of Tesla?", "Elon Musk [1]")])
    assert not r.applied and r.query == question


def test_rewrite_borrows_answer_then_question_words_in_lower_case():
    r = rewrite("and when was that?", [Turn("Who did Brad Smith meet?", "Wang Wentao [1]")])
    assert r.applied and r.query == "When was that? (wang wentao brad)"
    assert r.added == ["wang", "wentao", "brad"]
    # a refused previous answer lends nothing; only its question does
    r = rewrite("who translated it?", [Turn("Who announced the meeting?", "The documents don't say.", refused=True)])
    assert r.query == "Who translated it? (announced meeting)"
    # only the latest turn counts; no history, no rewrite
    r = rewrite(
        "who is its CEO?",
        [Turn("Who developed ChatGPT?", "OpenAI [1]"), Turn("Where is Tesla's factory?", "China [1]")],
    )
    assert r.query == "Who is its CEO? (china tesla's factory)"
    assert not rewrite("who is its CEO?", []).applied


def test_a_word_of_its_own_that_pins_one_passage_keeps_the_question_as_asked():
    freq = passage_frequency(
        ["The announcement was translated by Youdao.", "Brad Smith met Wang Wentao.", "They met in Beijing."]
    )
    previous = [Turn("Who announced the meeting?", "a Chinese government announcement [1]")]
    r = rewrite("who translated it?", previous, freq)  # "translated" is in one passage
    assert not r.applied and r.query == "who translated it?" and "translated" in r.reason
    r = rewrite("who did he meet?", previous, freq)  # "meet" is in two
    assert r.applied and r.query == "Who did he meet? (chinese government announcement)"


def test_content_words_skip_markers_stopwords_and_pointers():
    assert content_words("Who translated it [1] for them, and when?") == ["translated"]


def test_followup_pairs_file_is_well_formed():
    rows = [json.loads(line) for line in (ROOT / "eval" / "followups.jsonl").read_text().splitlines() if line.strip()]
    assert len(rows) >= 6
    seed = next((ROOT / "seeds").glob("*.txt")).read_text()
    for row in rows:
        assert row["evidence"] in seed, row["id"]
        if not row.get("heldout"):  # held-out rows were written after the rules were fixed; they may miss
            assert is_followup(row["followup"]) != bool(row.get("standalone")), row["id"]


def test_answer_html_shows_the_evidence_sentence_under_the_short_answer():
    answer = final_answer()
    answer["evidence"] = [{"n": 1, "source": DOC, "start": P1_START, "end": P1_START + len(P1), "text": P1}]
    out = render.answer_html(answer)
    assert out.index('class="rag-answer"') < out.index('class="rag-evidence"')
    assert "<mark>Wednesday, December 6, 2023</mark>" in out and "Brad Smith" in out
