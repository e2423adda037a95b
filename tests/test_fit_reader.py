"""Smoke run of the reader's training script (rag_eval/fit_reader.py): a few steps on a handful of
questions, so CI knows the script still trains, checkpoints, resumes and writes a file the pipeline
loads. CI never trains the shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import ROOT

SQUAD = ROOT.parent / "shared" / "benchmarks" / "squad2" / "squad2-dev-10-articles.json.gz"

needs_squad = pytest.mark.skipif(not SQUAD.exists(), reason="the shared SQuAD files are not on this machine")


def _run(tmp_path: Path, *extra: str) -> int:
    from rag_eval import fit_reader

    return fit_reader.main([
        str(SQUAD), "--train", "1973_oil_crisis", "--calibrate", "Packet_switching", "--held-out", "Force",
        "--limit", "3", "--steps", "2", "--batch", "4", "--checkpoint-every", "1",
        "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "reader.safetensors"), *extra,
    ])  # fmt: skip


@pytest.mark.slow
@needs_squad
def test_smoke_run_trains_checkpoints_and_writes_a_loadable_reader_with_its_header(tmp_path, capsys):
    from rag.embedding import bundled_embedder_path
    from rag.reader import ReaderModel, load_reader_file

    assert _run(tmp_path) == 0
    assert (tmp_path / "work" / "reader-train.pt").exists()
    out = tmp_path / "reader.safetensors"
    state, meta = load_reader_file(out.read_bytes())
    assert meta["format"] == 2 and meta["script"] == "rag_eval/fit_reader.py"
    assert meta["train_articles"] == ["1973_oil_crisis"] and meta["held_out_articles"] == ["Force"]
    assert meta["steps"] == 2 and meta["seed"] == 13
    assert "held_out_gold_paragraph" in meta and "threshold" in meta
    assert any(k.startswith("encoder.encoder.layer.5.") for k in state) and "head.weight" in state
    assert not any("layer.0." in k or "embeddings" in k for k in state)  # frozen parts are not shipped
    reader = ReaderModel.from_state(bundled_embedder_path(), state, meta)
    reading = reader.read("When did the oil crisis begin?", ["The crisis began in October 1973.", "Unrelated."])
    assert len(reading.null) == 2
    for s in reading.spans:
        text = ["The crisis began in October 1973.", "Unrelated."][s.passage]
        assert 0 <= s.start < s.end <= len(text)

    # a second run with the same settings resumes from the checkpoint instead of training again
    capsys.readouterr()
    assert _run(tmp_path) == 0
    assert "resumed at step 2/2" in capsys.readouterr().err


def _results(path: Path, rows: list[tuple[bool, float, float | None, bool]]) -> Path:
    """A `rag eval --squad` results file: (answerable, f1, reader margin or None if refused, name missing)."""
    records = []
    for i, (answerable, f1, margin, missing) in enumerate(rows):
        signals = {
            "missing_anchors": ["Xi"] if missing else [],
            "extra": {} if margin is None else {"reader_margin": margin},
        }
        records.append(
            {
                "id": str(i),
                "answerable": answerable,
                "f1": f1,
                "refused": margin is None,
                "signals": signals,
                "error": None,
            }
        )
    path.mkdir(parents=True, exist_ok=True)
    (path / "results.json").write_text(json.dumps({"records": records}))
    return path / "results.json"


def test_refit_sets_the_threshold_for_the_false_refusal_budget_and_fits_confidence(tmp_path):
    import torch

    from rag.reader import ReaderModel, load_reader_file, save_reader
    from rag_eval.fit_reader import refit

    reader_file = tmp_path / "reader.safetensors"
    save_reader(reader_file, {"head.weight": torch.zeros(2, 4)}, {"format": 2, "threshold": 0.0})
    # answerable: right answers have high margins; unanswerable: low margins, one with a missing name
    rows = [(True, 1.0, m, False) for m in (4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 3.0, 2.5, 2.0)] + [(True, 0.0, 1.0, False)]
    rows += [(False, 0.0, m, False) for m in (-3.0, -2.0, 0.5, 1.5)] + [(False, 0.0, 6.0, True)]
    decider = refit([_results(tmp_path / "cal", rows)], reader_file, max_false_refusals=0.1)
    # 10 answerable: at most one refused, so the threshold sits just under the second-lowest margin (2.0)
    assert decider["false_refusals"] <= 0.1 and 1.0 < decider["threshold"] <= 2.0
    # the names rule refuses the confident unanswerable one at no cost to answerable questions: kept
    assert decider["require_names"] is True and decider["refusal_recall"] == 1.0
    _, meta = load_reader_file(reader_file.read_bytes())
    assert meta["threshold"] == decider["threshold"] and meta["decider"]["fitted_on"] == [
        "cal"
    ]  # no config: the folder
    model = ReaderModel(None, None, meta)
    assert model.require_names and model.p_answer(9.0) > 0.5 > model.p_answer(-3.0)
