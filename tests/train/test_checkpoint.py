import random

import pytest
import torch

from hat.errors import HatError
from hat.checkpoints import load_checkpoint, load_model, save_checkpoint
from hat.train.checkpoint import get_rng_state, prune_checkpoints, set_rng_state


def test_atomic_save_and_weights_only_load(tmp_path):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.ones(3))], betas=(0.9, 0.98))
    opt.param_groups[0]["params"][0].grad = torch.ones(3)
    opt.step()
    state = {"model": {"w": torch.arange(3.0)}, "optimizer": opt.state_dict(), "rng": get_rng_state(random.Random(3)),
             "update": 5, "name": "x", "subnet": None}
    save_checkpoint(state, tmp_path / "c.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind
    back = torch.load(tmp_path / "c.pt", weights_only=True)
    assert back["update"] == 5 and torch.equal(back["model"]["w"], torch.arange(3.0))


def test_rng_round_trip():
    r = random.Random(5)
    state = get_rng_state(r)
    a = (torch.rand(3), r.random())
    r2 = random.Random(0)
    set_rng_state(state, r2)
    assert torch.equal(torch.rand(3), a[0]) and r2.random() == a[1]


def test_prune(tmp_path):
    for n in ["checkpoint_1_2.pt", "checkpoint_1_4.pt", "checkpoint_2_10.pt", "checkpoint1.pt", "checkpoint2.pt",
              "checkpoint3.pt", "checkpoint_last.pt"]:
        (tmp_path / n).write_bytes(b"")
    prune_checkpoints(tmp_path, keep_last=2, keep_last_epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint3.pt", "checkpoint_1_4.pt", "checkpoint_2_10.pt",
                                                          "checkpoint_last.pt"]


def test_load_errors(tmp_path):
    with pytest.raises(HatError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(HatError):
        load_model(tmp_path / "junk.pt")
    torch.save({"foo": 1}, tmp_path / "other.pt")
    with pytest.raises(HatError, match="not a hat"):
        load_model(tmp_path / "other.pt")


def test_load_fairseq_checkpoint(fairseq_fixture):
    model, ck = load_model(fairseq_fixture / "checkpoint_best.pt")
    assert type(model).__name__ == "Transformer" and not model.training
    assert "args" in ck or "cfg" in ck
