"""rag_eval/fit_decider.py: the decider is fitted from calibration answers for a false-refusal budget, the file it
writes is what the pipeline loads, and the calibration copy answers everything."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rag.decider import DECIDER_FILE, FittedDecider
from rag.prompts import Templates
from rag.question import analyse
from rag.refusal import RefusalPolicy, assess
from rag.settings import AnsweringSettings
from rag_eval import fit_decider

POLICY = RefusalPolicy.of(AnsweringSettings())


def _features(margin: float, rng: random.Random) -> dict:
    f = {name: rng.random() for name in fit_decider.FEATURES}
    f["reader_margin"] = margin
    return f


def _results(path: Path, n: int = 120, seed: int = 0) -> Path:
    """Answerable questions have high margins and mostly right answers; unanswerable ones low margins, a few with
    a name missing from the cited sentence."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        answerable = i % 2 == 0
        margin = rng.gauss(2.0 if answerable else -2.0, 1.5)
        right = answerable and rng.random() < 0.8
        records.append({
            "id": str(i), "answerable": answerable, "f1": 1.0 if right else 0.0, "refused": False, "error": None,
            "signals": {"missing_anchors": ["Xi"] if not answerable and i % 10 == 1 else [],
                        "extra": _features(margin, rng)},
        })  # fmt: skip
    records.append({"id": "off", "answerable": False, "f1": 0.0, "refused": True, "error": None, "signals": None})
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps({"config": {"articles": ["Cal_article"]}, "records": records}))
    return path / "results.json"


def test_the_fit_keeps_false_refusals_in_budget_and_writes_a_file_the_pipeline_loads(tmp_path):
    out = tmp_path / "prompts"
    out.mkdir()
    summary = fit_decider.fit([_results(tmp_path / "cal")], out / DECIDER_FILE, budget=0.15, name="all")
    chosen = summary["candidates"][summary["chosen"]]
    assert chosen["false_refusals"] <= 0.15 and chosen["refusal_recall"] > 0.5  # the margin separates them
    assert next(iter(summary["weights_by_size"])) == "reader_margin"  # the signal that carries the weight
    data = json.loads((out / DECIDER_FILE).read_text())
    assert data["script"] == "rag_eval/fit_decider.py" and data["fitted_on"] == ["Cal_article"]
    assert data["max_false_refusals"] == 0.15 and set(data["candidates"]) == set(fit_decider.FEATURE_SETS)
    assert data["chosen"] == "all" and data["answerer"]["features"] == list(fit_decider.FEATURES)
    decider = FittedDecider.load(Templates(out), POLICY)
    q = analyse("When did it happen?")
    signals = assess(q, "in 1973", "It happened in 1973.", 0.5)
    sure = decider.verdict(q, signals, _features(5.0, random.Random(1)))
    unsure = decider.verdict(q, signals, _features(-5.0, random.Random(1)))
    assert not sure.refused and unsure.refused
    assert sure.p_answer > 0.5 > unsure.p_answer and unsure.p_unanswerable > 0.5


def test_the_calibration_copy_answers_everything_the_names_rule_lets_through_ranked_as_shipped(tmp_path):
    copy = fit_decider.calibration_copy(Path(Templates().root), tmp_path / "cal")
    decider = FittedDecider.load(Templates(copy), POLICY)
    q = analyse("When did Brad Smith meet Wang Wentao?")
    signals = assess(q, "Wednesday", "Brad Smith met Wang Wentao on Wednesday.", 0.5)
    assert not decider.verdict(q, signals, {"reader_margin": -40.0}).refused  # no threshold
    q = analyse("When did Brad Smith meet Xi Jinping?")
    signals = assess(q, "Wednesday", "Brad Smith met him on Wednesday.", 0.5)
    assert "Xi" in decider.verdict(q, signals, {"reader_margin": 40.0}).reason  # the names rule, as shipped
    scores = decider.rank([{"reader_margin": 3.0, "missing_names": 0.5}, {"reader_margin": 1.0}])
    assert scores[1] > scores[0]  # names first, as the shipped decider ranks


def test_the_fit_always_keeps_the_names_rule(tmp_path):
    fit_decider.fit([_results(tmp_path / "cal")], tmp_path / DECIDER_FILE, budget=0.15)
    assert json.loads((tmp_path / DECIDER_FILE).read_text())["answerer"]["require_names"] is True


def test_a_malformed_decider_file_says_how_to_fix_it(tmp_path):
    from rag.errors import TemplateError

    (tmp_path / DECIDER_FILE).write_text(json.dumps({"format": 9}))
    with pytest.raises(TemplateError, match="format 1") as info:
        FittedDecider.load(Templates(tmp_path), POLICY)
    assert "fit_decider" in info.value.hint


def test_the_shipped_decider_names_its_data_and_script():
    data = Templates().json(DECIDER_FILE)
    assert data["format"] == 1 and "SQuAD" in data["data"] and data["script"].startswith("rag_eval/")
    from rag_eval.fit_reader import HELD_OUT

    assert not any(a.split(" ")[0] in HELD_OUT for a in data["fitted_on"])
    assert data["runs"] and {a for run in data["runs"] for a in run["articles"]} == {
        a.split(" ")[0] for a in data["fitted_on"]
    }
    for run in data["runs"]:  # each calibration article was answered by a reader that had not been trained on it
        assert run["reader_trained_on"] and not set(run["articles"]) & set(run["reader_trained_on"])


def test_the_script_names_a_missing_results_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fit_decider.main([str(tmp_path / "nope.json"), "--out", str(tmp_path / DECIDER_FILE)])
    assert "nope.json: no such results file" in capsys.readouterr().err


def test_a_run_whose_reader_was_trained_on_its_article_is_refused(tmp_path):
    path = _results(tmp_path / "cal")
    data = json.loads(path.read_text())
    data["config"]["reader"] = {"created": "2026-12-07", "commit": "abc", "train_articles": ["Other", "Cal_article"]}
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match="trained on Cal_article"):
        fit_decider.fit([path], tmp_path / DECIDER_FILE, budget=0.15)
    data["config"]["reader"]["train_articles"] = ["Other"]  # an earlier reader that had not seen it: allowed
    path.write_text(json.dumps(data))
    fit_decider.fit([path], tmp_path / DECIDER_FILE, budget=0.15)
    runs = json.loads((tmp_path / DECIDER_FILE).read_text())["runs"]
    assert runs == [
        {
            "articles": ["Cal_article"],
            "reader_created": "2026-12-07",
            "reader_commit": "abc",
            "reader_trained_on": ["Other"],
        }
    ]


def test_with_three_articles_each_is_predicted_by_a_fit_on_the_others(tmp_path):
    paths = []
    for i, name in enumerate(["A", "B", "C"]):
        path = _results(tmp_path / name, seed=i)
        data = json.loads(path.read_text())
        data["config"]["articles"] = [name]
        for r in data["records"]:
            r["article"] = name
        path.write_text(json.dumps(data))
        paths.append(path)
    summary = fit_decider.fit(paths, tmp_path / DECIDER_FILE, budget=0.15)
    by_article = summary["candidates"]["margin"]["by_article"]
    assert set(by_article) == {"A", "B", "C"} and all(0 <= v["false_refusals"] <= 0.5 for v in by_article.values())


def test_a_names_refusal_states_a_confidence_fitted_on_names_refusals(tmp_path):
    """Names-rule refusals keep their span's features; P(no answer) is fitted on them with the share of names
    missing, so a names refusal is as sure as such refusals were right, whatever its margin says."""
    path = _results(tmp_path / "cal", n=200)
    data = json.loads(path.read_text())
    for r in data["records"]:
        if r["signals"]:
            r["signals"]["extra"]["missing_names"] = 1.0 if r["signals"]["missing_anchors"] else 0.0
    rng = random.Random(3)
    for i in range(60):  # names refusals: mostly unanswerable, with answer-like margins
        extra = _features(rng.gauss(2.0, 1.0), rng)
        extra["missing_names"] = 1.0
        data["records"].append({
            "id": f"n{i}", "answerable": i % 5 == 0, "f1": 0.0, "refused": True, "error": None,
            "signals": {"missing_anchors": ["Xi"], "extra": extra},
        })  # fmt: skip
    path.write_text(json.dumps(data))
    out = tmp_path / "prompts"
    out.mkdir()
    fit_decider.fit([path], out / DECIDER_FILE, budget=0.3)
    written = json.loads((out / DECIDER_FILE).read_text())
    assert written["unanswerable"]["features"] == ["reader_margin", "missing_names"]
    assert written["answerer"]["features"] == ["reader_margin"]
    decider = FittedDecider.load(Templates(out), POLICY)
    q = analyse("When did Xi Jinping visit?")
    signals = assess(q, "in 1973", "He visited in 1973.", 0.5)
    verdict = decider.verdict(q, signals, {**_features(2.0, rng), "missing_names": 1.0})
    assert verdict.refused and "Xi" in verdict.reason
    assert verdict.p_unanswerable > 0.6  # 80% of such refusals were right
