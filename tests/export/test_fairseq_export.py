"""hat-export --format fairseq: uniform configs round-trip through fairseq's checkpoint format; others exit 2."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from hat.cli.export import main
from hat.nn import ModelConfig, SuperTransformer
from hat.space import load_space


@pytest.fixture(scope="module")
def supernet_ckpt(tmp_path_factory):
    from hat.checkpoints import save_checkpoint
    space = load_space("multi30k_tiny")
    cfg = ModelConfig(src_vocab_size=48, tgt_vocab_size=48)
    torch.manual_seed(0)
    model = SuperTransformer(space, cfg)
    path = tmp_path_factory.mktemp("ckpt") / "supernet.pt"
    save_checkpoint({"model": model.state_dict(), "space": space.to_dict(), "model_config": dataclasses.asdict(cfg),
                     "subnet": None}, path)
    return path, model.eval(), space


def _same_outputs(a, b):
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, a.cfg.src_vocab_size, (3, 7), generator=g)
    src[0, :2] = a.cfg.padding_idx  # left padding
    prev = torch.randint(4, a.cfg.tgt_vocab_size, (3, 5), generator=g)
    lens = src.ne(a.cfg.padding_idx).sum(1)
    with torch.no_grad():
        return torch.equal(a.eval()(src, lens, prev)[0], b.eval()(src, lens, prev)[0])


def test_uniform_subnet_round_trips(supernet_ckpt, tmp_path):
    from hat.interop.fairseq import load_transformer
    path, supernet, space = supernet_ckpt
    subnet = space.largest()  # uniform, qkv == embed, ende heads == self heads: a plain fairseq transformer
    subnet.save_yaml(tmp_path / "subnet.yaml")
    assert main(["--checkpoint", str(path), "--subnet", str(tmp_path / "subnet.yaml"), "--format", "fairseq",
                 "--out", str(tmp_path / "fs")]) == 0
    back = load_transformer(tmp_path / "fs" / "checkpoint_best.pt")
    assert back.subnet == subnet
    assert _same_outputs(back, supernet.get_active_subnet(subnet))


def test_fairseq_fixture_round_trips(fairseq_fixture, tmp_path):
    from hat.interop.fairseq import load_transformer
    ck = fairseq_fixture / "checkpoint_best.pt"
    assert main(["--checkpoint", str(ck), "--format", "fairseq", "--out", str(tmp_path),
                 "--data", str(fairseq_fixture / "bin")]) == 0
    assert (tmp_path / "dict.de.txt").is_file() and (tmp_path / "dict.en.txt").is_file()
    assert _same_outputs(load_transformer(tmp_path / "checkpoint_best.pt"), load_transformer(ck))


def test_nonuniform_subnet_is_one_line_error(supernet_ckpt, tmp_path, capsys):
    path, _, space = supernet_ckpt
    subnet = space.largest()
    subnet.encoder_ffn_embed_dim = [512, 256, 512]
    subnet.save_yaml(tmp_path / "subnet.yaml")
    rc = main(["--checkpoint", str(path), "--subnet", str(tmp_path / "subnet.yaml"), "--format", "fairseq",
               "--out", str(tmp_path / "fs")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "encoder_ffn_embed_dim=[512, 256, 512]" in err
    assert not (tmp_path / "fs" / "checkpoint_best.pt").exists()


def test_supernet_without_subnet_is_an_error(supernet_ckpt, tmp_path, capsys):
    path, _, _ = supernet_ckpt
    assert main(["--checkpoint", str(path), "--format", "onnx", "--out", str(tmp_path)]) == 2
    assert "--subnet" in capsys.readouterr().err


def test_onnx_export_from_supernet(supernet_ckpt, tmp_path, capsys):
    path, _, space = supernet_ckpt
    space.sample(random.Random(5)).save_yaml(tmp_path / "subnet.yaml")
    assert main(["--checkpoint", str(path), "--subnet", str(tmp_path / "subnet.yaml"), "--format", "onnx",
                 "--out", str(tmp_path / "onnx")]) == 0
    assert "max |logit diff|" in capsys.readouterr().out
    assert (tmp_path / "onnx" / "meta.json").is_file()
