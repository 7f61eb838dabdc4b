import pytest
import torch

from hat.cli.average_checkpoints import main
from hat.checkpoints import save_checkpoint


def _ckpts(tmp_path):
    for e in (1, 2, 3):
        save_checkpoint({"model": {"w": torch.full((2,), float(e)), "n": torch.tensor(e)}, "epoch": e,
                         "optimizer": {"x": 1}}, tmp_path / f"checkpoint{e}.pt")
    for u in (10, 20, 30):
        save_checkpoint({"model": {"w": torch.full((2,), float(u)), "n": torch.tensor(u)}, "update": u},
                        tmp_path / f"checkpoint_1_{u}.pt")


def test_average_last_epochs(tmp_path, capsys):
    _ckpts(tmp_path)
    assert main(["--inputs", str(tmp_path), "--num-epoch-checkpoints", "2", "--output", str(tmp_path / "a.pt")]) == 0
    avg = torch.load(tmp_path / "a.pt", weights_only=True)
    assert torch.equal(avg["model"]["w"], torch.full((2,), 2.5))
    assert avg["epoch"] == 3 and "optimizer" not in avg  # metadata of the newest, as fairseq


def test_average_updates_and_explicit(tmp_path):
    _ckpts(tmp_path)
    assert main(["--inputs", str(tmp_path), "--num-update-checkpoints", "3", "--output", str(tmp_path / "u.pt")]) == 0
    assert torch.equal(torch.load(tmp_path / "u.pt", weights_only=True)["model"]["w"], torch.full((2,), 20.0))
    assert main(["--inputs", str(tmp_path / "checkpoint1.pt"), str(tmp_path / "checkpoint_1_30.pt"),
                 "--output", str(tmp_path / "e.pt")]) == 0
    assert torch.equal(torch.load(tmp_path / "e.pt", weights_only=True)["model"]["w"], torch.full((2,), 15.5))


@pytest.mark.parametrize("args", [["--num-epoch-checkpoints", "5"], ["--num-update-checkpoints", "0"]])
def test_average_errors(tmp_path, capsys, args):
    _ckpts(tmp_path)
    assert main(["--inputs", str(tmp_path), *args, "--output", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hat-average-checkpoints: error:") and "\n" not in err
