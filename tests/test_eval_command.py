"""`rag eval` (rag_eval.evaluate, rag_eval.report): the runner with a fake pipeline, outputs, gates, comparison,
bad question files; one slow run of the real thing on a few questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.cli import build_parser, main
from rag.settings import Settings
from rag_eval import evaluate as ev
from rag_eval import metrics as mt
from rag_eval import report as rp

from .conftest import ROOT, SEEDS
from .support.eval_fakes import answer, citation, eval_pipeline, passage, question, refusal, seeds, write_questions  # noqa: F401


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
    pipeline = eval_pipeline(seeds, script)
    path = write_questions(tmp_path / "questions.jsonl", questions)
    return pipeline, questions, path


def test_run_eval_asks_each_question_once_and_records_config_metrics_and_judgements(fake_run):
    pipeline, questions, path = fake_run
    results = ev.run_eval(pipeline, questions, 2, path)
    assert pipeline.calls == [(q.question, 2) for q in questions]
    config = results["config"]
    assert config["model"] == "fake.gguf" and len(config["model_sha256"]) == 64
    assert (config["embedder"], config["k"], config["mode"], config["chunk_size"]) == (
        "fake-embedder@1",
        2,
        "extractive",
        320,
    )
    overall = results["metrics"]["overall"]
    assert overall["accuracy"]["value"] == 0.5 and overall["refusal_recall"]["value"] == 0.5
    assert results["metrics"]["by_category"]["factoid"]["accuracy"]["value"] == 0.5
    assert results["metrics"]["by_category"]["unanswerable"]["accuracy"]["value"] is None
    first = results["questions"][0]
    assert first["answer"]["answer"] == "Wang Wentao [1]" and first["judgement"]["correct"] is True


def test_outputs_hold_report_tables_and_one_failure_per_line(fake_run, tmp_path):
    pipeline, questions, path = fake_run
    results = ev.run_eval(pipeline, questions, 2, path)
    paths = rp.write_outputs(results, tmp_path / "run", chart=False)
    assert [p.name for p in paths] == ["results.json", "report.md", "failures.jsonl"]
    assert json.loads(paths[0].read_text())["metrics"]["overall"]["accuracy"]["value"] == 0.5
    report = paths[1].read_text()
    assert "## Overall" in report and "## Per category" in report and "| retrieval hit@2 ↑ |" in report
    assert "| factoid | 2 |" in report and "| unans01 | unanswerable | forbidden_value |" in report
    failures = [json.loads(line) for line in paths[2].read_text().splitlines()]
    assert [(f["id"], f["reason"]) for f in failures] == [
        ("fact02", "false_refusal"), ("unans01", "missed_refusal"), ("unans01", "forbidden_value"),
    ]  # fmt: skip


def test_a_rejected_question_is_recorded_counted_and_the_run_goes_on(fake_run, tmp_path):
    """The one error policy (rag_eval.asking), as the SQuAD runner: record the error, go on, count it."""
    from rag.errors import QueryError

    pipeline, questions, path = fake_run
    scripted = pipeline.answer

    def answer(text: str):
        if text == "question fact02?":
            raise QueryError("question too long")
        return scripted(text)

    pipeline.answer = answer
    results = ev.run_eval(pipeline, questions, 2, path)
    assert pipeline.calls == [(q.question, 2) for q in questions]  # every question asked
    rejected = results["questions"][1]
    assert (rejected["error"], rejected["answer"], rejected["judgement"]) == (
        "QueryError: question too long",
        None,
        None,
    )
    assert results["questions"][0]["error"] is None
    overall = results["metrics"]["overall"]
    assert overall["error_rate"]["value"] == 0.25 and overall["error_rate"]["n"] == 4
    assert (overall["accuracy"]["value"], overall["accuracy"]["n"]) == (1.0, 1)  # scored without the error
    assert results["metrics"]["by_category"]["factoid"]["error_rate"]["value"] == 0.5
    assert mt.check_thresholds(overall, [], [("error_rate", 0.0)]) == [
        "error_rate = 0.250 is above the threshold 0 (--max)"
    ]
    paths = rp.write_outputs(results, tmp_path / "run", chart=False)
    report = paths[1].read_text()
    assert "1 rejected by the pipeline and not scored" in report and "| error rate ↓ | 0.250 |" in report
    assert "| fact02 | factoid | error |  | QueryError: question too long |" in report
    failures = [json.loads(line) for line in paths[2].read_text().splitlines()]
    assert ("fact02", "error") in [(f["id"], f["reason"]) for f in failures]
    assert json.loads(paths[0].read_text())["questions"][1]["error"] == "QueryError: question too long"


def test_markdown_cells_escape_pipes_and_newlines():
    assert rp.md_cell("a | b\nc") == "a \\| b c"


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
    overall = {
        "accuracy": {"value": 0.5},
        "hit@k": {"value": 0.95},
        "p95_seconds": {"value": 12.0},
        "f1": {"value": None},
    }
    assert mt.check_thresholds(overall, [("accuracy", 0.5), ("hit@k", 0.9)], [("p95_seconds", 20)]) == []
    problems = mt.check_thresholds(overall, [("accuracy", 0.6), ("f1", 0.1)], [("p95_seconds", 10)])
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
    monkeypatch.setattr(rp, "write_chart", lambda results, p: p.write_bytes(b"png"))
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
    from rag.pipeline import Pipeline
    from rag_eval.questions import load_questions

    wanted = {"fact01", "kw01", "multi01", "unans02"}
    picked = [q for q in load_questions(ROOT / "eval" / "questions.jsonl") if q.id in wanted]
    path = write_questions(tmp_path / "questions.jsonl", picked)
    settings = Settings(seeds_dir=SEEDS, index_dir=real_index_dir)
    pipeline = Pipeline.load(settings, embedder=real_embedder, generator=real_generator)
    results = ev.run_eval(pipeline, load_questions(path), settings.k, path)
    paths = rp.write_outputs(results, tmp_path / "run")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    # the reliability chart is written when some answer states a confidence (the fitted engine's do)
    assert {p.name for p in paths} == {
        "results.json",
        "report.md",
        "failures.jsonl",
        "metrics_by_category.png",
        "reliability.png",
    }
    assert paths[3].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(paths[0].read_text())
    overall = saved["metrics"]["overall"]
    assert set(overall) == set(mt.METRICS)
    assert overall["accuracy"]["n"] == 3 and overall["refusal_recall"]["n"] == 1
    assert set(saved["metrics"]["by_category"]) == {"factoid", "keyword", "multi-part", "unanswerable"}
    assert saved["config"]["model_sha256"] == __import__("rag.generation").generation.file_sha256(
        pipeline.generator.path
    )
    assert overall["citation_validity"]["value"] in (None, 1.0)  # the pipeline only emits exact spans
    print("\n" + rp.overall_table(saved))
