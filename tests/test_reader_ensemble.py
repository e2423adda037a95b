"""A reader file may hold an ensemble ("members.<i>.<key>", `fit_reader --ensemble`): answering runs every
member on the same windows and averages their logits. Checked on the real bundled encoder with two made-up
heads, under torch and through the ONNX export the server uses."""

from __future__ import annotations

import numpy as np
import pytest

from rag.errors import TemplateError


def _heads(seed: int) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    return {"head.weight": torch.randn(2, 384, generator=g) * 0.1, "head.bias": torch.randn(2, generator=g)}


def _inputs():
    ids = np.array([[101, 2043, 2106, 102, 1996, 5325, 2211, 1999, 3196, 102]], dtype=np.int64)
    types = np.array([[0, 0, 0, 0, 1, 1, 1, 1, 1, 1]], dtype=np.int64)
    return ids, np.ones_like(ids), types


def test_members_of_splits_an_ensemble_and_refuses_mixed_files():
    from rag.reader import members_of

    a, b = _heads(1), _heads(2)
    assert members_of(a) == [a]
    parts = members_of({**{f"members.1.{k}": v for k, v in b.items()}, **{f"members.0.{k}": v for k, v in a.items()}})
    assert [sorted(p) for p in parts] == [sorted(a), sorted(b)] and parts[0]["head.bias"] is a["head.bias"]
    with pytest.raises(TemplateError, match="neither"):
        members_of({"members.0.head.bias": a["head.bias"], "head.weight": a["head.weight"]})


def test_an_ensemble_reads_the_mean_of_its_members_logits_sharing_the_untrained_encoder():
    from rag.embedding import bundled_embedder_path
    from rag.reader import TorchNet, build_net

    base = bundled_embedder_path()
    a, b = _heads(1), _heads(2)
    one, two = TorchNet(build_net(base, a)), TorchNet(build_net(base, b))
    both_net = build_net(
        base, {**{f"members.0.{k}": v for k, v in a.items()}, **{f"members.1.{k}": v for k, v in b.items()}}
    )
    first, second = both_net.members
    assert second.encoder.embeddings is first.encoder.embeddings  # untrained parts held once
    assert second.head is not first.head
    # a layer one member trained is its own, never shared with (or borrowed from) another member
    import torch

    layer = {"encoder.encoder.layer.2.output.dense.bias": torch.ones(384)}
    mixed = build_net(
        base, {**{f"members.0.{k}": v for k, v in {**a, **layer}.items()}, "members.1.head.bias": b["head.bias"]}
    )
    m0, m1 = mixed.members
    assert m1.encoder.encoder.layer[2] is not m0.encoder.encoder.layer[2]
    assert not torch.equal(m1.encoder.encoder.layer[2].output.dense.bias, torch.ones(384))
    assert m1.encoder.encoder.layer[3] is m0.encoder.encoder.layer[3]
    x = _inputs()
    (s1, e1), (s2, e2), (s, e) = one(*x), two(*x), TorchNet(both_net)(*x)
    assert not np.allclose(s1, s2)
    np.testing.assert_allclose(s, (s1 + s2) / 2, atol=1e-5)
    np.testing.assert_allclose(e, (e1 + e2) / 2, atol=1e-5)


@pytest.mark.slow
def test_an_ensemble_file_loads_through_the_onnx_export_and_reads_like_torch(tmp_path):
    from rag.embedding import bundled_embedder_path
    from rag.prompts import Templates
    from rag.reader import FORMAT, READER_FILE, OnnxNet, ReaderModel, save_reader

    a, b = _heads(1), _heads(2)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    state = {**{f"members.0.{k}": v for k, v in a.items()}, **{f"members.1.{k}": v for k, v in b.items()}}
    save_reader(prompts / READER_FILE, state, {"format": FORMAT, "max_length": 96, "stride": 32})
    base = bundled_embedder_path()
    onnx = ReaderModel.load(Templates(prompts), base, runtime="onnx", cache_dir=tmp_path / "cache")
    torch = ReaderModel.load(Templates(prompts), base, runtime="torch")
    assert isinstance(onnx.net, OnnxNet)
    x = _inputs()
    (so, eo), (st, et) = onnx.net(*x), torch.net(*x)
    np.testing.assert_allclose(so, st, atol=1e-3)
    np.testing.assert_allclose(eo, et, atol=1e-3)
