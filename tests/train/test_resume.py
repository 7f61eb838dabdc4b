"""hat.train.resume.restore on its own: restores what the checkpoint holds and refuses another run's checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from hat.errors import HatError
from hat.checkpoints import load_checkpoint
from hat.train.config import load_train_config
from hat.train.resume import restore
from hat.train.trainer import Trainer, train


@pytest.fixture
def trained(make_task):
    cfg = load_train_config(make_task(), ["max_update=3"])
    train(cfg, progress=False)
    return cfg


def _fresh(cfg):
    t = Trainer(dataclasses.replace(cfg, save_dir=str(Path(cfg.save_dir).parent / "fresh")), progress=False)
    t.close()
    return t


def test_restore_loads_model_optimizer_and_position(trained):
    t = _fresh(trained)
    msgs = []
    state = restore(trained.save_dir, trained, t.space, t.subnet, t.model, t.optimizer, warn=msgs.append)
    ck = load_checkpoint(Path(trained.save_dir) / "checkpoint_last.pt")
    assert state.update == ck["update"] == 3 and msgs == []
    assert (state.epoch, state.position) == (ck["iterator"]["epoch"], ck["iterator"]["position"])
    for k, v in t.model.state_dict().items():
        assert torch.equal(v, ck["model"][k]), k
    assert t.optimizer.state_dict()["state"]  # Adam moments restored


def test_restore_nothing_to_resume(trained, tmp_path):
    t = _fresh(trained)
    msgs = []
    assert restore(tmp_path, trained, t.space, t.subnet, t.model, t.optimizer, warn=msgs.append) is None
    assert "starting from scratch" in msgs[0]


def test_restore_refuses_another_runs_checkpoint(trained):
    t = _fresh(trained)
    for field, value in [("seed", 7), ("max_tokens", 123), ("update_freq", 2)]:
        with pytest.raises(HatError, match=field):
            restore(trained.save_dir, dataclasses.replace(trained, **{field: value}), t.space, t.subnet, t.model,
                    t.optimizer)
    with pytest.raises(HatError, match="processes"):
        restore(trained.save_dir, trained, t.space, t.subnet, t.model, t.optimizer, world_size=2)
