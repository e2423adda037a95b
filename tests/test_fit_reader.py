"""Smoke run of the reader's training script (rag_eval/fit_reader.py): a few steps on a handful of
questions, so CI knows the script still trains, checkpoints, resumes and writes a file the pipeline
loads. CI never trains the shipped weights."""

from __future__ import annotations

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

    # checkpoint averaging: no training, the mean of a file with itself is that file, the header says so
    avg = tmp_path / "avg.safetensors"
    assert _run(tmp_path, "--average", str(out), str(out), "--out", str(avg)) == 0
    avg_state, avg_meta = load_reader_file(avg.read_bytes())
    assert [a["file"] for a in avg_meta["averaged_from"]] == ["reader.safetensors"] * 2
    assert all((avg_state[k] == state[k]).all() for k in state)

    # an ensemble file of the reader with itself: both members' tensors, named in the header, read as that reader
    ens = tmp_path / "ens.safetensors"
    assert _run(tmp_path, "--ensemble", str(out), str(out), "--out", str(ens)) == 0
    ens_state, ens_meta = load_reader_file(ens.read_bytes())
    assert [m["file"] for m in ens_meta["ensemble_of"]] == ["reader.safetensors"] * 2
    assert set(ens_state) == {f"members.{i}.{k}" for i in (0, 1) for k in state}
    both = ReaderModel.from_state(bundled_embedder_path(), ens_state, ens_meta)
    texts = ["The crisis began in October 1973.", "Unrelated."]
    assert both.read("When did the oil crisis begin?", texts).spans == reading.spans

    # a warm start from that reader: its own checkpoint key (not resumed from the first run's), named in the header
    warm = tmp_path / "warm.safetensors"
    assert _run(tmp_path, "--init", str(out), "--negatives", "2", "--out", str(warm)) == 0
    assert "made with other settings" in capsys.readouterr().err
    assert load_reader_file(warm.read_bytes())[1]["init"] == "reader.safetensors"


def test_average_is_the_elementwise_mean_of_the_trained_tensors(tmp_path):
    import torch

    from rag.reader import FORMAT, save_reader
    from rag_eval.fit_reader import average

    meta = {"format": FORMAT, "steps": 10, "train_seconds": 5}
    save_reader(tmp_path / "a.safetensors", {"head.weight": torch.full((2, 3), 1.0)}, meta)
    save_reader(tmp_path / "b.safetensors", {"head.weight": torch.full((2, 3), 3.0)}, {**meta, "steps": 20})
    out = average([str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")])
    assert torch.equal(out["state"]["head.weight"], torch.full((2, 3), 2.0))
    assert out["steps"] == 20 and out["seconds"] == 10
    assert [a["steps"] for a in out["averaged_from"]] == [10, 20]
    save_reader(tmp_path / "c.safetensors", {"head.bias": torch.zeros(2)}, meta)
    with pytest.raises(SystemExit, match="same tensors"):
        average([str(tmp_path / "a.safetensors"), str(tmp_path / "c.safetensors")])


def test_ensemble_stores_each_readers_tensors_under_its_member_index_and_names_them(tmp_path):
    import torch

    from rag.reader import FORMAT, members_of, save_reader
    from rag_eval.fit_reader import ensemble

    meta = {"format": FORMAT, "steps": 10, "train_seconds": 5, "negatives": 1}
    save_reader(tmp_path / "a.safetensors", {"head.weight": torch.full((2, 3), 1.0)}, meta)
    save_reader(tmp_path / "b.safetensors", {"head.weight": torch.full((2, 3), 3.0)}, {**meta, "negatives": 2})
    out = ensemble([str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")])
    assert sorted(out["state"]) == ["members.0.head.weight", "members.1.head.weight"]
    a, b = members_of(out["state"])
    assert torch.equal(a["head.weight"], torch.full((2, 3), 1.0)) and torch.equal(
        b["head.weight"], torch.full((2, 3), 3.0)
    )
    assert [m["negatives"] for m in out["ensemble_of"]] == [1, 2] and out["seconds"] == 10
    save_reader(tmp_path / "ab.safetensors", out["state"], meta)
    with pytest.raises(SystemExit, match="ensemble already"):
        ensemble([str(tmp_path / "ab.safetensors"), str(tmp_path / "a.safetensors")])


def test_the_shipped_reader_names_its_articles_and_was_not_trained_on_those_it_is_measured_or_calibrated_on():
    """The shipped weights are what `python -m rag_eval.fit_reader`'s defaults make: trained on TRAIN only, so the
    held-out figures in its header (and eval/README.md) and the decider's calibration article stay unseen."""
    from rag.prompts import Templates
    from rag.reader import READER_FILE, _metadata
    from rag_eval import fit_reader

    meta = _metadata(Templates().bytes(READER_FILE))
    assert sorted(meta["train_articles"]) == sorted(fit_reader.TRAIN)
    assert sorted(meta["held_out_articles"]) == sorted(fit_reader.HELD_OUT)
    assert meta["calibration_articles"] == fit_reader.CALIBRATE
    assert not set(meta["train_articles"]) & {*meta["held_out_articles"], *meta["calibration_articles"]}
    assert meta["script"] == "rag_eval/fit_reader.py" and "SQuAD 2.0" in meta["data"]
