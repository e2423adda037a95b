"""Judging one answer: text matching, evidence, citation checks, failure reasons; and the metrics over many
(rag_eval.judging, rag_eval.metrics), with hand-built answers and no model."""

from __future__ import annotations

import pytest

from rag_eval import judging as jd
from rag_eval import metrics as mt
from rag_eval.stats import wilson

from .support.eval_fakes import OTHER, answer, citation, passage, question, read, refusal, seeds  # noqa: F401 - fixtures


# --- text matching -------------------------------------------------------------------------------------------------------
def test_normalize_is_the_official_squad_one_in_both_harnesses():
    from rag.markers import strip_markers
    from rag_eval import matching, squad

    assert jd.normalize_answer("  The U.S.-China   Deal!\n") == "uschina deal"  # deleted, as evaluate-v2.0.py
    assert jd.normalize_answer("Dec. 6, 2023") == "dec 6 2023"
    assert (
        jd.token_f1 is matching.token_f1 and squad.f1 is matching.f1 and squad.normalize_answer is jd.normalize_answer
    )
    assert jd.strip_markers is strip_markers  # one strip_markers


def test_phrase_match_is_whole_word_and_ignores_case_and_punctuation():
    assert jd.contains_phrase("OpenAI, the developer", "openai")
    assert not jd.contains_phrase("OpenAI's chatbot", "openai")  # the official rule joins "openai" and "s"
    assert jd.contains_phrase("on Wednesday, December 6, 2023.", "december 6 2023")
    assert not jd.contains_phrase("anything", "the")  # an alias that normalises to nothing matches nothing
    assert not jd.contains_phrase("in 2010", "10")
    assert not jd.contains_phrase("Wangs", "Wang")


def test_every_part_needs_one_alias_and_citation_markers_do_not_count():
    parts = [["Brad Smith", "Smith"], ["Wang Wentao", "Wang"]]
    assert jd.missing_parts("Smith met Wang [1]", parts) == []
    assert jd.missing_parts("Brad Smith [1]", parts) == [["Wang Wentao", "Wang"]]
    assert jd.missing_parts("Wednesday [1]", [["1"]]) == [["1"]]  # the marker's digit is not an answer


def test_token_f1_is_squad_style_and_averages_best_alias_per_part():
    assert jd.token_f1("December 6, 2023", "december 6 2023") == 1.0
    assert jd.token_f1("Wednesday, December 6, 2023", "December 6, 2023") == pytest.approx(6 / 7)
    assert jd.token_f1("Youdao", "Wang Wentao") == 0.0
    assert jd.answer_f1("Wednesday, December 6, 2023 [1]", [["Dec. 6", "December 6, 2023"]]) == pytest.approx(6 / 7)
    assert jd.answer_f1("Brad Smith [1]", [["Brad Smith"], ["Wang Wentao"]]) == pytest.approx(0.5)


def test_forbidden_values_count_only_in_answers_that_were_given():
    assert jd.forbidden_found(answer("It was in Paris [1]."), ["Paris", "Beijing"]) == ["Paris"]
    assert jd.forbidden_found(answer("comparison [1]"), ["Paris"]) == []
    assert jd.forbidden_found(refusal("Paris is not mentioned"), ["Paris"]) == []


# --- CRAG score ---------------------------------------------------------------------------------------------------------
def test_crag_score_rewards_honest_refusal_and_punishes_wrong_answers():
    assert jd.crag_score(answerable=True, refused=False, correct=True) == 1
    assert jd.crag_score(answerable=True, refused=True, correct=False) == 0
    assert jd.crag_score(answerable=True, refused=False, correct=False) == -1
    assert jd.crag_score(answerable=False, refused=True, correct=False) == 1
    assert jd.crag_score(answerable=False, refused=False, correct=False) == -1


# --- citations -------------------------------------------------------------------------------------------------------------
def test_exact_citation_is_valid(read):
    assert jd.citation_problems(answer("Wang Wentao [1]", citation("Wang Wentao")), read) == []


def test_marker_without_citation_is_invalid(read):
    problems = jd.citation_problems(answer("Wang Wentao [2]", citation("Wang Wentao")), read)
    assert problems == ["marker [2] has no citation"]


def test_span_that_does_not_match_the_source_is_invalid(read):
    bad = citation("Wang Wentao")
    bad["start"] += 1  # off by one: the file holds "ang Wentao,"
    bad["end"] += 1
    problems = jd.citation_problems(answer("Wang Wentao [1]", bad), read)
    assert len(problems) == 1 and "doc.txt[" in problems[0] and "'ang Wentao,'" in problems[0]


def test_citation_to_unreadable_source_and_citation_without_marker_are_invalid(read):
    assert "cannot be read" in jd.citation_problems(answer("x [1]", citation("Wang", source="gone.txt")), read)[0]
    assert jd.citation_problems(answer("Wang Wentao", citation("Wang Wentao")), read) == [
        "citations are listed but the answer has no [n] marker"
    ]


def test_citation_hit_uses_the_sentence_around_a_short_quote():
    assert jd.cites_evidence(answer("Wednesday [1]", citation("Wednesday")), ["Wednesday, December 6, 2023"])
    # "Youdao" sits in the next sentence, not the one holding the evidence
    assert not jd.cites_evidence(answer("Youdao [1]", citation("Youdao")), ["Wednesday, December 6, 2023"])


# --- judging and failure reasons -------------------------------------------------------------------------------------------
def reasons(judgement: dict) -> list[str]:
    return [f["reason"] for f in judgement["failures"]]


def test_correct_cited_answer_has_no_failures(read):
    j = jd.judge(question(), answer("Wang Wentao [1]", citation("Wang Wentao")), [passage()], 1.0, read)
    assert reasons(j) == []
    assert (j["correct"], j["f1"], j["rank"], j["citation_valid"], j["citation_hit"], j["truthfulness"]) == (
        True, 1.0, 1, True, True, 1,
    )  # fmt: skip


def test_retrieval_miss_and_wrong_answer_and_unsupported_citation(read):
    j = jd.judge(question(), answer("Youdao [1]", citation("Youdao")), [OTHER], 1.0, read)
    assert reasons(j) == ["retrieval_miss", "wrong_answer", "unsupported_citation"]
    assert j["rank"] is None and j["truthfulness"] == -1 and j["citation_valid"] is True


def test_evidence_found_at_rank_two(read):
    j = jd.judge(question(), answer("Wang Wentao [1]", citation("Wang Wentao")), [OTHER, passage()], 1.0, read)
    assert j["rank"] == 2 and "retrieval_miss" not in reasons(j)


def test_refusing_an_answerable_question_is_a_false_refusal(read):
    j = jd.judge(question(), refusal("no name in the cited passage"), [passage()], 1.0, read)
    assert reasons(j) == ["false_refusal"]
    assert "no name in the cited passage" in j["failures"][0]["detail"]
    assert (j["correct"], j["f1"], j["truthfulness"], j["citation_valid"]) == (False, 0.0, 0, None)


def test_answering_an_unanswerable_question_is_a_missed_refusal_and_may_state_a_forbidden_value(read):
    q = question("u1", "unanswerable", answerable=False, forbidden=["Beijing"])
    j = jd.judge(q, answer("Beijing [1]", citation("China")), [passage()], 1.0, read)
    assert reasons(j) == ["missed_refusal", "forbidden_value"]
    assert j["truthfulness"] == -1 and j["correct"] is None and j["rank"] is None
    assert reasons(jd.judge(q, refusal(), [passage()], 1.0, read)) == []


def test_uncited_and_invalidly_cited_answers(read):
    assert reasons(jd.judge(question(), answer("Wang Wentao"), [passage()], 1.0, read)) == ["no_citation"]
    j = jd.judge(question(), answer("Wang Wentao [3]", citation("Wang Wentao")), [passage()], 1.0, read)
    assert reasons(j) == ["invalid_citation"] and j["citation_valid"] is False


def test_forbidden_value_in_a_correct_answer_counts_as_hallucinated(read):
    q = question(forbidden=["Paris"])
    j = jd.judge(q, answer("Wang Wentao in Paris [1]", citation("Wang Wentao")), [passage()], 1.0, read)
    assert reasons(j) == ["forbidden_value"] and j["correct"] is True and j["truthfulness"] == -1


# --- aggregate metrics ---------------------------------------------------------------------------------------------------------
def judged(read, cases):
    return [jd.judge(q, a, [passage()], s, read) for q, a, s in cases]


def test_refusal_metrics_use_the_right_denominators(read):
    ans, unans = question(), question("u", "unanswerable", answerable=False)
    good = answer("Wang Wentao [1]", citation("Wang Wentao"))
    js = judged(read, [
        (ans, good, 1.0), (ans, refusal(), 2.0), (ans, good, 3.0),   # 1 of 3 answerable refused
        (unans, refusal(), 4.0), (unans, good, 5.0),                 # 1 of 2 unanswerable refused
    ])  # fmt: skip
    m = mt.compute_metrics(js, k=3)
    assert m["false_refusal_rate"]["value"] == pytest.approx(1 / 3) and m["false_refusal_rate"]["n"] == 3
    assert m["refusal_recall"]["value"] == 0.5 and m["refusal_recall"]["n"] == 2
    assert m["refusal_precision"]["value"] == 0.5 and m["refusal_precision"]["n"] == 2
    assert m["accuracy"]["value"] == pytest.approx(2 / 3) and m["accuracy"]["ci"] == pytest.approx(wilson(2, 3))
    assert m["truthfulness"]["value"] == pytest.approx((1 + 0 + 1 + 1 - 1) / 5)
    assert m["citation_validity"]["n"] == 3  # answers given, answerable or not
    assert m["citation_hit"]["n"] == 2  # answers given to answerable questions
    assert m["median_seconds"]["value"] == 3.0 and m["p95_seconds"]["value"] == pytest.approx(4.8)
    assert m["forbidden_rate"]["n"] == 0 and m["forbidden_rate"]["value"] is None


def test_retrieval_metrics_count_answerable_questions_only(read):
    q = question()
    js = [
        jd.judge(q, refusal(), [passage()], 1.0, read),
        jd.judge(q, refusal(), [OTHER, passage()], 1.0, read),
        jd.judge(q, refusal(), [OTHER], 1.0, read),
        jd.judge(question("u", answerable=False), refusal(), [OTHER], 1.0, read),
    ]
    m = mt.compute_metrics(js, k=2)
    assert (m["hit@1"]["value"], m["hit@k"]["value"], m["hit@k"]["n"]) == (
        pytest.approx(1 / 3),
        pytest.approx(2 / 3),
        3,
    )
    assert m["mrr"]["value"] == pytest.approx((1 + 0.5 + 0) / 3)
