"""rag_eval/fit_ranker.py: the ranker is fitted on the pipeline's proposals, validated by article, written into
the decider file the pipeline loads, and kept when the answerer is refitted."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from rag.decider import DECIDER_FILE, FittedDecider
from rag.prompts import Templates
from rag.refusal import RefusalPolicy
from rag.settings import AnsweringSettings
from rag_eval import fit_decider, fit_ranker

POLICY = RefusalPolicy.of(AnsweringSettings())


def _proposals(path: Path, articles: list[str], n: int = 60, seed: int = 0, trained_on=()) -> Path:
    """Questions with three proposals: the right one ("gold") has high support but often not the best margin."""
    rng = random.Random(seed)
    lines = [{"run": {"file": "x.json", "articles": articles, "reader": {"train_articles": list(trained_on)}}}]
    for article in articles:
        for i in range(n):
            props = []
            for j in range(3):
                right = j == 0
                f = {name: rng.random() for name in fit_decider.FEATURES}
                f["reader_margin"] = rng.gauss(1.0, 1.0) + (0.5 if right else 0.8)  # the margin misleads a little
                f["support"] = rng.gauss(0.9 if right else 0.3, 0.15)
                props.append({"quote": "gold words" if right else f"other {j}", "features": f, "names_missing": False})
            rng.shuffle(props)
            lines.append({"article": article, "id": f"{article}{i}", "question": "q?", "answers": ["gold words"],
                          "proposals": props})  # fmt: skip
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


@pytest.fixture
def prompts(tmp_path):
    folder = tmp_path / "prompts"
    shutil.copytree(Path(str(Templates().root)), folder, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return folder


def test_the_ranker_beats_the_margin_by_article_and_the_pipeline_ranks_with_it(tmp_path, prompts):
    runs = [_proposals(tmp_path / "a.jsonl", ["A", "B"]), _proposals(tmp_path / "b.jsonl", ["C"], seed=1)]
    header = fit_ranker.fit(runs, prompts / DECIDER_FILE)
    figures = header["chosen_f1_by_article"]
    assert set(figures["margin"]) == {"A", "B", "C", "all"}
    assert figures["ranker (cross-validated)"]["all"] > figures["margin"]["all"] + 0.2
    assert figures["best proposal"]["all"] == 1.0
    data = json.loads((prompts / DECIDER_FILE).read_text())
    assert data["ranker_fitted"]["script"] == "rag_eval/fit_ranker.py" and data["answerer"]  # the answerer is kept
    decider = FittedDecider.load(Templates(prompts), POLICY)
    assert decider.ranker is not None
    base = {**{name: 0.5 for name in fit_decider.FEATURES}, "missing_names": 0.0}
    supported = {**base, "reader_margin": 1.0, "support": 0.9}
    louder = {**base, "reader_margin": 1.5, "support": 0.2}
    scores = decider.rank([louder, supported])
    assert scores[1] > scores[0]
    scores = decider.rank([louder, {**supported, "missing_names": 0.5}])
    assert scores[0] > scores[1]  # the names rule still ranks first
    # the reach: the smallest that ranks as well as no limit, by article; beyond it the reader's margin decides
    assert header["reach"] in fit_ranker.REACHES and data["ranker"]["reach"] == header["reach"] == decider.reach
    by_reach = header["chosen_f1_by_reach"]
    assert by_reach[str(header["reach"])]["all"] >= by_reach["None"]["all"]
    if header["reach"] is not None:
        far = {**supported, "reader_margin": 1.5 - header["reach"] - 0.1}
        scores = decider.rank([louder, far])
        assert scores[0] > scores[1]


def test_refitting_the_answerer_keeps_the_ranker_and_the_calibration_copy_ranks_with_it(tmp_path, prompts):
    fit_ranker.fit([_proposals(tmp_path / "a.jsonl", ["A", "B", "C"])], prompts / DECIDER_FILE)
    ranker = json.loads((prompts / DECIDER_FILE).read_text())["ranker"]
    copy = fit_decider.calibration_copy(prompts, tmp_path / "cal")
    assert json.loads((copy / DECIDER_FILE).read_text())["ranker"] == ranker
    from .test_fit_decider import _results

    fit_decider.fit([_results(tmp_path / "res")], prompts / DECIDER_FILE, budget=0.15)
    data = json.loads((prompts / DECIDER_FILE).read_text())
    assert data["ranker"] == ranker and data["ranker_fitted"]["script"] == "rag_eval/fit_ranker.py"
    assert data["script"] == "rag_eval/fit_decider.py"


def test_proposals_of_the_readers_own_training_articles_are_refused(tmp_path, prompts):
    run = _proposals(tmp_path / "a.jsonl", ["A", "B"], trained_on=["B"])
    with pytest.raises(SystemExit, match="trained on B"):
        fit_ranker.fit([run], prompts / DECIDER_FILE)


def test_one_article_cannot_validate_a_ranker(tmp_path, prompts):
    with pytest.raises(SystemExit, match="at least two articles"):
        fit_ranker.fit([_proposals(tmp_path / "a.jsonl", ["A"])], prompts / DECIDER_FILE)


def test_a_file_that_is_not_a_collect_file_is_named(tmp_path, prompts):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q?"}\n')
    with pytest.raises(SystemExit, match="bad.jsonl"):
        fit_ranker.fit([bad], prompts / DECIDER_FILE)
