"""hat-search on a wmt14_space0 SuperTransformer for device rpi4 falls back to HAT's Raspberry Pi predictor."""

import re
from dataclasses import asdict

import pytest
import torch

from hat.cli.search import main
from hat.space import load_space


@pytest.fixture(scope="module")
def wmt_supernet(tmp_path_factory):
    from hat.nn import ModelConfig, SuperTransformer
    from hat.checkpoints import save_checkpoint
    d = tmp_path_factory.mktemp("wmt_super")
    space = load_space("wmt14_space0")
    torch.manual_seed(0)
    cfg = ModelConfig(src_vocab_size=16, tgt_vocab_size=16)  # tiny vocabulary; no training: only latency matters
    model = SuperTransformer(space, cfg)
    save_checkpoint({"model": model.state_dict(), "space": space.to_dict(), "model_config": asdict(cfg),
                     "subnet": None, "train_config": {}}, d / "super.pt")
    return d / "super.pt"


def test_rpi4_resolves_hat_predictor_and_says_so(wmt_supernet, tmp_path, capsys):
    from hat.predictor.registry import HAT_SOURCE, resolve_predictor
    r = resolve_predictor("rpi4", load_space("wmt14_space0"))
    assert r.entry["source"] == HAT_SOURCE and r.path.name == "hat_wmt14_space0_rpi4.pt" and r.path.is_file()
    # a feasible budget gets past the predictor (then stops at the missing validation data: no --data given)
    assert main(["--supernet", str(wmt_supernet), "--device", "rpi4", "--latency", "4s",
                 "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "o")]) == 2
    cap = capsys.readouterr()
    notes = [line for line in cap.out.splitlines() if "note:" in line]
    assert len(notes) == 1 and "HAT's published" in notes[0]
    assert "hat-profile --space wmt14_space0 --device rpi4" in notes[0]
    assert "validation data directory" in cap.err and cap.err.count("\n") == 1


def test_infeasible_budget_in_seconds(wmt_supernet, tmp_path, capsys):
    assert main(["--supernet", str(wmt_supernet), "--device", "rpi4", "--latency", "0.5s",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    m = re.search(r"budget 0\.5 s is infeasible .* fastest predicted latency in space 'wmt14_space0' is "
                  r"(\d+\.\d+) s$", err.strip())
    assert m, err
    assert 0.5 < float(m.group(1)) < 10  # HAT's Raspberry Pi: seconds per sentence
