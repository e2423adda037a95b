"""`rag eval`: metric functions, failure reasons, gates and comparison with hand-built answers and a fake pipeline;
one slow run of the real thing on a few questions."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from rag import evaluation as ev
from rag.cli import build_parser, main
from rag.evalset import Question
from rag.settings import Settings

from .conftest import ROOT, SEEDS

DOC = (
    "Microsoft President Brad Smith met China's Minister of Commerce, Wang Wentao, on Wednesday, December 6, 2023. "
    "The announcement was translated by Youdao. Tesla operates one of its largest factories in China."
)
REFUSAL = "The documents don't say."


# --- helpers: hand-built answers and a fake pipeline ------------------------------------------------------------------
def citation(quote: str, n: int = 1, doc: str = DOC, source: str = "doc.txt") -> dict:
    start = doc.index(quote)
    return {
        "n": n, "source": source, "chunk_id": f"{source}#0", "start": start, "end": start + len(quote),
        "text": doc, "score": 0.5, "quote": quote, "passage_start": 0, "passage_end": len(doc),
    }  # fmt: skip


def answer(text: str, *cites: dict, refused: bool = False, reason: str | None = None) -> dict:
    return {
        "question": "q", "answer": text, "refused": refused, "citations": list(cites), "model": "fake.gguf",
        "timings": {}, "mode": "extractive", "reason": reason, "raw": text, "dropped": [], "signals": None,
    }  # fmt: skip


def refusal(reason: str = "off-topic") -> dict:
    return answer(REFUSAL, refused=True, reason=reason)


def question(qid="q1", category="factoid", answers=(("Wang Wentao",),), evidence=("Minister of Commerce, Wang Wentao",),
             forbidden=(), answerable=True) -> Question:  # fmt: skip
    return Question(
        id=qid, category=category, question=f"question {qid}?", answerable=answerable,
        answers=[list(p) for p in answers] if answerable else [], evidence=list(evidence) if answerable else [],
        forbidden=list(forbidden),
    )  # fmt: skip


def passage(text: str = DOC):
    return SimpleNamespace(chunk=SimpleNamespace(doc_id="doc.txt", chunk_id="doc.txt#0", start=0, end=len(text), text=text))


OTHER = passage("Apple CEO Tim Cook visited China earlier in the year.")


@pytest.fixture
def seeds(tmp_path):
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "doc.txt").write_text(DOC, "utf-8")
    return folder


@pytest.fixture
def read(seeds):
    return ev.SourceReader(seeds)


class FakeAnswer:
    def __init__(self, data: dict, passages: list):
        self.data, self.passages = data, passages

    def to_dict(self) -> dict:
        return dict(self.data)


class FakePipeline:
    """What the runner needs from rag.pipeline.Pipeline: .ask plus the objects the run config is read from."""

    def __init__(self, seeds: Path, script: dict[str, tuple[dict, list]]):
        model = seeds.parent / "fake.gguf"
        model.write_bytes(b"GGUF fake weights")
        self.settings = Settings(seeds_dir=seeds, index_dir=seeds.parent / "index")
        self.embedder = SimpleNamespace(id="fake-embedder@1")
        self.generator = SimpleNamespace(path=model)
        self.answerer = SimpleNamespace(mode="extractive")
        self.script = script
        self.calls: list[tuple[str, int]] = []

    def ask(self, text: str, k: int | None = None) -> FakeAnswer:
        self.calls.append((text, k))
        data, passages = self.script[text]
        return FakeAnswer(data, passages)


def write_questions(path: Path, questions: list[Question]) -> Path:
    path.write_text("".join(q.model_dump_json() + "\n" for q in questions), "utf-8")
    return path


# --- text matching -------------------------------------------------------------------------------------------------------
def test_normalize_lowercases_and_drops_punctuation_articles_and_extra_space():
    assert ev.normalize("  The U.S.-China   Deal!\n") == "u s china deal"
    assert ev.normalize("Dec. 6, 2023") == "dec 6 2023"


def test_phrase_match_is_whole_word_and_ignores_case_and_punctuation():
    assert ev.contains_phrase("OpenAI's chatbot", "openai")
    assert ev.contains_phrase("on Wednesday, December 6, 2023.", "december 6 2023")
    assert not ev.contains_phrase("in 2010", "10")
    assert not ev.contains_phrase("Wangs", "Wang")


def test_every_part_needs_one_alias_and_citation_markers_do_not_count():
    parts = [["Brad Smith", "Smith"], ["Wang Wentao", "Wang"]]
    assert ev.is_correct("Smith met Wang [1]", parts)
    assert not ev.is_correct("Brad Smith [1]", parts)
    assert ev.missing_parts("Brad Smith [1]", parts) == [["Wang Wentao", "Wang"]]
    assert not ev.is_correct("Wednesday [1]", [["1"]])  # the marker's digit is not an answer
    assert not ev.is_correct("anything", [])


def test_token_f1_is_squad_style_and_averages_best_alias_per_part():
    assert ev.token_f1("December 6, 2023", "december 6 2023") == 1.0
    assert ev.token_f1("Wednesday, December 6, 2023", "December 6, 2023") == pytest.approx(6 / 7)
    assert ev.token_f1("Youdao", "Wang Wentao") == 0.0
    assert ev.answer_f1("Wednesday, December 6, 2023 [1]", [["Dec. 6", "December 6, 2023"]]) == pytest.approx(6 / 7)
    assert ev.answer_f1("Brad Smith [1]", [["Brad Smith"], ["Wang Wentao"]]) == pytest.approx(0.5)


def test_forbidden_values_count_only_in_answers_that_were_given():
    assert ev.forbidden_found(answer("It was in Paris [1]."), ["Paris", "Beijing"]) == ["Paris"]
    assert ev.forbidden_found(answer("comparison [1]"), ["Paris"]) == []
    assert ev.forbidden_found(refusal("Paris is not mentioned"), ["Paris"]) == []


# --- statistics --------------------------------------------------------------------------------------------------------
def test_wilson_interval_matches_published_values():
    lo, hi = ev.wilson(5, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.2366, 0.7634)
    lo, hi = ev.wilson(0, 10)
    assert lo == 0.0 and round(hi, 4) == 0.2775
    lo, hi = ev.wilson(10, 10)
    assert round(lo, 4) == 0.7225 and hi == pytest.approx(1.0)
    assert ev.wilson(0, 0) is None


def test_crag_score_rewards_honest_refusal_and_punishes_wrong_answers():
    assert ev.crag_score(answerable=True, refused=False, correct=True) == 1
    assert ev.crag_score(answerable=True, refused=True, correct=False) == 0
    assert ev.crag_score(answerable=True, refused=False, correct=False) == -1
    assert ev.crag_score(answerable=False, refused=True, correct=False) == 1
    assert ev.crag_score(answerable=False, refused=False, correct=False) == -1


def test_percentile_interpolates_and_handles_one_value():
    assert ev.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert ev.percentile([2.5], 95) == 2.5
    assert ev.percentile([], 95) is None


# --- citations -------------------------------------------------------------------------------------------------------------
def test_exact_citation_is_valid(read):
    assert ev.citation_problems(answer("Wang Wentao [1]", citation("Wang Wentao")), read) == []


def test_marker_without_citation_is_invalid(read):
    problems = ev.citation_problems(answer("Wang Wentao [2]", citation("Wang Wentao")), read)
    assert problems == ["marker [2] has no citation"]


def test_span_that_does_not_match_the_source_is_invalid(read):
    bad = citation("Wang Wentao")
    bad["start"] += 1  # off by one: the file holds "ang Wentao,"
    bad["end"] += 1
    problems = ev.citation_problems(answer("Wang Wentao [1]", bad), read)
    assert len(problems) == 1 and "doc.txt[" in problems[0] and "'ang Wentao,'" in problems[0]


def test_citation_to_unreadable_source_and_citation_without_marker_are_invalid(read):
    assert "cannot be read" in ev.citation_problems(answer("x [1]", citation("Wang", source="gone.txt")), read)[0]
    assert ev.citation_problems(answer("Wang Wentao", citation("Wang Wentao")), read) == [
        "citations are listed but the answer has no [n] marker"
    ]


def test_citation_hit_uses_the_sentence_around_a_short_quote():
    assert ev.cites_evidence(answer("Wednesday [1]", citation("Wednesday")), ["Wednesday, December 6, 2023"])
    # "Youdao" sits in the next sentence, not the one holding the evidence
    assert not ev.cites_evidence(answer("Youdao [1]", citation("Youdao")), ["Wednesday, December 6, 2023"])


# --- judging and failure reasons -------------------------------------------------------------------------------------------
def reasons(judgement: dict) -> list[str]:
    return [f["reason"] for f in judgement["failures"]]


def test_correct_cited_answer_has_no_failures(read):
    j = ev.judge(question(), answer("Wang Wentao [1]", citation("Wang Wentao")), [passage()], 1.0, read)
    assert reasons(j) == []
    assert (j["correct"], j["f1"], j["rank"], j["citation_valid"], j["citation_hit"], j["truthfulness"]) == (
        True, 1.0, 1, True, True, 1,
    )  # fmt: skip


def test_retrieval_miss_and_wrong_answer_and_unsupported_citation(read):
    j = ev.judge(question(), answer("Youdao [1]", citation("Youdao")), [OTHER], 1.0, read)
    assert reasons(j) == ["retrieval_miss", "wrong_answer", "unsupported_citation"]
    assert j["rank"] is None and j["truthfulness"] == -1 and j["citation_valid"] is True


def test_evidence_found_at_rank_two(read):
    j = ev.judge(question(), answer("Wang Wentao [1]", citation("Wang Wentao")), [OTHER, passage()], 1.0, read)
    assert j["rank"] == 2 and "retrieval_miss" not in reasons(j)


def test_refusing_an_answerable_question_is_a_false_refusal(read):
    j = ev.judge(question(), refusal("no name in the cited passage"), [passage()], 1.0, read)
    assert reasons(j) == ["false_refusal"]
    assert "no name in the cited passage" in j["failures"][0]["detail"]
    assert (j["correct"], j["f1"], j["truthfulness"], j["citation_valid"]) == (False, 0.0, 0, None)


def test_answering_an_unanswerable_question_is_a_missed_refusal_and_may_state_a_forbidden_value(read):
    q = question("u1", "unanswerable", answerable=False, forbidden=["Beijing"])
    j = ev.judge(q, answer("Beijing [1]", citation("China")), [passage()], 1.0, read)
    assert reasons(j) == ["missed_refusal", "forbidden_value"]
    assert j["truthfulness"] == -1 and j["correct"] is None and j["rank"] is None
    assert reasons(ev.judge(q, refusal(), [passage()], 1.0, read)) == []


def test_uncited_and_invalidly_cited_answers(read):
    assert reasons(ev.judge(question(), answer("Wang Wentao"), [passage()], 1.0, read)) == ["no_citation"]
    j = ev.judge(question(), answer("Wang Wentao [3]", citation("Wang Wentao")), [passage()], 1.0, read)
    assert reasons(j) == ["invalid_citation"] and j["citation_valid"] is False


def test_forbidden_value_in_a_correct_answer_counts_as_hallucinated(read):
    q = question(forbidden=["Paris"])
    j = ev.judge(q, answer("Wang Wentao in Paris [1]", citation("Wang Wentao")), [passage()], 1.0, read)
    assert reasons(j) == ["forbidden_value"] and j["correct"] is True and j["truthfulness"] == -1


# --- aggregate metrics ---------------------------------------------------------------------------------------------------------
def judged(read, cases):
    return [ev.judge(q, a, [passage()], s, read) for q, a, s in cases]


def test_refusal_metrics_use_the_right_denominators(read):
    ans, unans = question(), question("u", "unanswerable", answerable=False)
    good = answer("Wang Wentao [1]", citation("Wang Wentao"))
    js = judged(read, [
        (ans, good, 1.0), (ans, refusal(), 2.0), (ans, good, 3.0),   # 1 of 3 answerable refused
        (unans, refusal(), 4.0), (unans, good, 5.0),                 # 1 of 2 unanswerable refused
    ])  # fmt: skip
    m = ev.compute_metrics(js, k=3)
    assert m["false_refusal_rate"]["value"] == pytest.approx(1 / 3) and m["false_refusal_rate"]["n"] == 3
    assert m["refusal_recall"]["value"] == 0.5 and m["refusal_recall"]["n"] == 2
    assert m["refusal_precision"]["value"] == 0.5 and m["refusal_precision"]["n"] == 2
    assert m["accuracy"]["value"] == pytest.approx(2 / 3) and m["accuracy"]["ci"] == pytest.approx(ev.wilson(2, 3))
    assert m["truthfulness"]["value"] == pytest.approx((1 + 0 + 1 + 1 - 1) / 5)
    assert m["citation_validity"]["n"] == 3  # answers given, answerable or not
    assert m["citation_hit"]["n"] == 2  # answers given to answerable questions
    assert m["median_seconds"]["value"] == 3.0 and m["p95_seconds"]["value"] == pytest.approx(4.8)
    assert m["forbidden_rate"]["n"] == 0 and m["forbidden_rate"]["value"] is None


def test_retrieval_metrics_count_answerable_questions_only(read):
    q = question()
    js = [
        ev.judge(q, refusal(), [passage()], 1.0, read),
        ev.judge(q, refusal(), [OTHER, passage()], 1.0, read),
        ev.judge(q, refusal(), [OTHER], 1.0, read),
        ev.judge(question("u", answerable=False), refusal(), [OTHER], 1.0, read),
    ]
    m = ev.compute_metrics(js, k=2)
    assert (m["hit@1"]["value"], m["hit@k"]["value"], m["hit@k"]["n"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3), 3)
    assert m["mrr"]["value"] == pytest.approx((1 + 0.5 + 0) / 3)


# --- the runner with a fake pipeline ------------------------------------------------------------------------------------------
@pytest.fixture
def fake_run(tmp_path, seeds):
    questions = [
        question("fact01", "factoid"),
        question("fact02", "factoid", answers=[["Youdao"]], evidence=["translated by Youdao"]),
        question("unans01", "unanswerable", answerable=False, forbidden=["Beijing"]),
        question("unans02", "unanswerable", answerable=False),
    ]
    script = {
        "question fact01?": (answer("Wang Wentao [1]", citation("Wang Wentao")), [passage()]),
        "question fact02?": (refusal("no name"), [passage()]),
        "question unans01?": (answer("Beijing [1]", citation("China")), [passage()]),
        "question unans02?": (refusal(), [passage()]),
    }
    pipeline = FakePipeline(seeds, script)
    path = write_questions(tmp_path / "questions.jsonl", questions)
    return pipeline, questions, path


def test_run_eval_asks_each_question_once_and_records_config_metrics_and_judgements(fake_run):
    pipeline, questions, path = fake_run
    results = ev.run_eval(pipeline, questions, 2, path)
    assert pipeline.calls == [(q.question, 2) for q in questions]
    config = results["config"]
    assert config["model"] == "fake.gguf" and len(config["model_sha256"]) == 64
    assert (config["embedder"], config["k"], config["mode"], config["chunk_size"]) == ("fake-embedder@1", 2, "extractive", 320)
    overall = results["metrics"]["overall"]
    assert overall["accuracy"]["value"] == 0.5 and overall["refusal_recall"]["value"] == 0.5
    assert results["metrics"]["by_category"]["factoid"]["accuracy"]["value"] == 0.5
    assert results["metrics"]["by_category"]["unanswerable"]["accuracy"]["value"] is None
    first = results["questions"][0]
    assert first["answer"]["answer"] == "Wang Wentao [1]" and first["judgement"]["correct"] is True


def test_outputs_hold_report_tables_and_one_failure_per_line(fake_run, tmp_path):
    pipeline, questions, path = fake_run
    results = ev.run_eval(pipeline, questions, 2, path)
    paths = ev.write_outputs(results, tmp_path / "run", chart=False)
    assert [p.name for p in paths] == ["results.json", "report.md", "failures.jsonl"]
    assert json.loads(paths[0].read_text())["metrics"]["overall"]["accuracy"]["value"] == 0.5
    report = paths[1].read_text()
    assert "## Overall" in report and "## Per category" in report and "| retrieval hit@2 ↑ |" in report
    assert "| factoid | 2 |" in report and "| unans01 | unanswerable | forbidden_value |" in report
    failures = [json.loads(line) for line in paths[2].read_text().splitlines()]
    assert [(f["id"], f["reason"]) for f in failures] == [
        ("fact02", "false_refusal"), ("unans01", "missed_refusal"), ("unans01", "forbidden_value"),
    ]  # fmt: skip


def test_markdown_cells_escape_pipes_and_newlines():
    assert ev.md_cell("a | b\nc") == "a \\| b c"


# --- gates ---------------------------------------------------------------------------------------------------------------------
def parse_eval(*argv):
    return build_parser().parse_args(["eval", *argv])


def test_min_and_max_are_parsed_and_repeatable():
    args = parse_eval("--min", "accuracy=0.5", "--min", "hit@k=0.9", "--max", "p95_seconds=10")
    assert args.minimums == [("accuracy", 0.5), ("hit@k", 0.9)] and args.maximums == [("p95_seconds", 10.0)]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--min", "acuracy=0.5"], "unknown metric 'acuracy'; valid metrics: accuracy, f1, hit@1"),
        (["--min", "accuracy"], "expected METRIC=VALUE"),
        (["--min", "accuracy=high"], "'high' is not a number"),
        (["--min", "p95_seconds=3"], "p95_seconds is lower-is-better; use --max"),
        (["--max", "accuracy=3"], "accuracy is higher-is-better; use --min"),
    ],
)
def test_bad_threshold_is_a_usage_error(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_eval(*argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_thresholds_name_the_metric_value_and_threshold():
    overall = {"accuracy": {"value": 0.5}, "hit@k": {"value": 0.95}, "p95_seconds": {"value": 12.0}, "f1": {"value": None}}
    assert ev.check_thresholds(overall, [("accuracy", 0.5), ("hit@k", 0.9)], [("p95_seconds", 20)]) == []
    problems = ev.check_thresholds(overall, [("accuracy", 0.6), ("f1", 0.1)], [("p95_seconds", 10)])
    assert problems == [
        "accuracy = 0.500 is below the threshold 0.6 (--min)",
        "f1 was not measured (no questions for it); --min f1=0.1 not met",
        "p95_seconds = 12.000 is above the threshold 10 (--max)",
    ]


@pytest.fixture
def cli_with_fake(fake_run, monkeypatch, tmp_path):
    """`rag eval` through rag.cli.main with the fake pipeline and no matplotlib (the chart is tested slow)."""
    pipeline, _, path = fake_run
    from rag.pipeline import Pipeline

    monkeypatch.setattr(Pipeline, "load", classmethod(lambda cls, settings, **kw: pipeline))
    monkeypatch.setattr(ev, "write_chart", lambda results, p: p.write_bytes(b"png"))
    return lambda *argv: main(["eval", "--questions", str(path), "--out", str(tmp_path / "out"), "-q", *argv])


def test_command_exits_1_naming_the_metric_below_its_minimum(cli_with_fake, capsys, tmp_path):
    assert cli_with_fake("--min", "accuracy=0.9", "--min", "citation_validity=0.5") == 1
    err = capsys.readouterr().err
    assert "accuracy = 0.500 is below the threshold 0.9 (--min)" in err and "citation_validity" not in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "failures.jsonl", "metrics_by_category.png", "report.md", "results.json",
    ]  # fmt: skip


def test_command_exits_0_when_thresholds_are_met(cli_with_fake, capsys):
    assert cli_with_fake("--min", "accuracy=0.5") == 0
    assert "| answer accuracy ↑ | 0.500 |" in capsys.readouterr().out


# --- compare --------------------------------------------------------------------------------------------------------------------
def fake_results(path: Path, accuracy: float, p95: float, model: str = "a.gguf") -> Path:
    metrics = {"accuracy": {"value": accuracy, "n": 4, "ci": None}, "p95_seconds": {"value": p95, "n": 4, "ci": None}}
    path.write_text(json.dumps({"config": {"model": model, "k": 3, "n_questions": 4}, "metrics": {"overall": metrics}}))
    return path


def test_compare_prints_both_runs_and_the_difference(tmp_path, capsys):
    a = fake_results(tmp_path / "a.json", 0.5, 4.0)
    b = fake_results(tmp_path / "b.json", 0.75, 3.5, model="b.gguf")
    assert main(["eval", "--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "| answer accuracy ↑ | 0.500 | 0.750 | +0.250 |" in out
    assert "| p95 s/question ↓ | 4.00 | 3.50 | -0.500 |" in out
    assert "a.gguf" in out and "b.gguf" in out


def test_compare_with_a_bad_file_is_a_clear_usage_error(tmp_path, capsys):
    a = fake_results(tmp_path / "a.json", 0.5, 4.0)
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text("[]")
    assert main(["eval", "--compare", str(a), str(tmp_path / "bad.json")]) == 2
    assert "bad.json:1: not valid JSON" in capsys.readouterr().err
    assert main(["eval", "--compare", str(tmp_path / "other.json"), str(a)]) == 2
    assert "other.json: not a rag eval results.json" in capsys.readouterr().err
    assert main(["eval", "--compare", str(tmp_path / "missing.json"), str(a)]) == 2
    assert "missing.json: cannot read" in capsys.readouterr().err


# --- bad question files -----------------------------------------------------------------------------------------------------------
def test_missing_questions_file_is_one_clear_message(tmp_path, capsys):
    assert main(["eval", "--questions", str(tmp_path / "nope.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rag eval: ") and "nope.jsonl: cannot read" in err and "Traceback" not in err


def test_malformed_questions_line_is_named(tmp_path, capsys):
    path = write_questions(tmp_path / "q.jsonl", [question()])
    path.write_text(path.read_text() + '{"id": "x", "oops": 1}\n')
    assert main(["eval", "--questions", str(path)]) == 2
    assert f"rag eval: {path}:2:" in capsys.readouterr().err


# --- the real thing -------------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_eval_end_to_end_on_four_questions(tmp_path, real_embedder, real_generator, real_index_dir):
    """Real embedder, real index of seeds/, real GGUF: every output file is written and the metrics are there."""
    from rag.evalset import load_questions
    from rag.pipeline import Pipeline

    wanted = {"fact01", "kw01", "multi01", "unans02"}
    picked = [q for q in load_questions(ROOT / "eval" / "questions.jsonl") if q.id in wanted]
    path = write_questions(tmp_path / "questions.jsonl", picked)
    settings = Settings(seeds_dir=SEEDS, index_dir=real_index_dir)
    pipeline = Pipeline.load(settings, embedder=real_embedder, generator=real_generator)
    results = ev.run_eval(pipeline, ev.load_question_file(path), settings.k, path)
    paths = ev.write_outputs(results, tmp_path / "run")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths) and len(paths) == 4
    assert paths[3].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(paths[0].read_text())
    overall = saved["metrics"]["overall"]
    assert set(overall) == set(ev.METRICS)
    assert overall["accuracy"]["n"] == 3 and overall["refusal_recall"]["n"] == 1
    assert set(saved["metrics"]["by_category"]) == {"factoid", "keyword", "multi-part", "unanswerable"}
    assert saved["config"]["model_sha256"] == __import__("rag.generation").generation.file_sha256(pipeline.generator.path)
    assert overall["citation_validity"]["value"] in (None, 1.0)  # the pipeline only emits exact spans
    print("\n" + ev.overall_table(saved))
