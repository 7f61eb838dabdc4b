"""The training factories on their own: model (seeded, fixed subnet), optimizer, device, model config."""

from __future__ import annotations

import pytest
import torch

from hat.errors import ConfigError, HatError
from hat.space import load_space
from hat.train.build import build_model, build_optimizer, model_config_for, resolve_device
from hat.train.config import load_train_config


class _Dict:
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def pad(self) -> int:
        return 1

    def eos(self) -> int:
        return 2


@pytest.fixture
def cfg(task_yaml):
    return load_train_config(task_yaml)


def test_model_config_takes_vocabulary_from_dictionaries(cfg):
    m = model_config_for(cfg, _Dict(50), _Dict(50))
    assert (m.src_vocab_size, m.tgt_vocab_size, m.padding_idx, m.eos_idx) == (50, 50, 1, 2)
    cfg.model = {**cfg.model, "padding_idx": 0}
    with pytest.raises(ConfigError, match="padding_idx"):
        model_config_for(cfg, _Dict(50), _Dict(50))


def test_build_model_is_seeded(cfg):
    space = load_space(cfg.space)
    mcfg = model_config_for(cfg, _Dict(50), _Dict(50))
    a, b = build_model(cfg, space, mcfg), build_model(cfg, space, mcfg)
    assert a.subnet is None and type(a.model).__name__ == "SuperTransformer"
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(v, w), k
    cfg.seed += 1
    c = build_model(cfg, space, mcfg)
    assert not all(torch.equal(v, w) for v, w in zip(a.model.state_dict().values(), c.model.state_dict().values()))


def test_build_model_fixed_subnet(cfg, tmp_path):
    space = load_space(cfg.space)
    sub_yaml = tmp_path / "sub.yaml"
    space.smallest().save_yaml(sub_yaml, note="test")
    cfg.subnet = str(sub_yaml)
    built = build_model(cfg, space, model_config_for(cfg, _Dict(50), _Dict(50)))
    assert type(built.model).__name__ == "Transformer" and built.subnet == space.smallest()


def test_build_model_rejects_subnet_outside_space(cfg, tmp_path):
    space = load_space(cfg.space)
    sub = space.smallest()
    sub_yaml = tmp_path / "sub.yaml"
    sub.save_yaml(sub_yaml, note="test")
    text = sub_yaml.read_text().replace("encoder_embed_dim: 16", "encoder_embed_dim: 24")
    assert text != sub_yaml.read_text()
    sub_yaml.write_text(text)
    cfg.subnet = str(sub_yaml)
    with pytest.raises(HatError):
        build_model(cfg, space, model_config_for(cfg, _Dict(50), _Dict(50)))


@pytest.mark.parametrize("amp,dtype", [(None, None), ("bf16", torch.bfloat16)])
def test_build_optimizer(cfg, amp, dtype):
    cfg.amp = amp
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = build_optimizer(cfg, params)
    assert isinstance(opt.optimizer, torch.optim.Adam)
    g = opt.optimizer.param_groups[0]
    assert g["betas"] == tuple(cfg.adam_betas) and g["eps"] == cfg.adam_eps
    assert opt.amp_dtype == dtype and opt.scaler is None
    assert opt.schedule(0) < opt.schedule(cfg.warmup_updates)  # warm-up rises


def test_resolve_device_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(HatError, match="CUDA"):
            resolve_device("cuda")
