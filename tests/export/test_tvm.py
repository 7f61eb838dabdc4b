"""hat.export.tvm: host build decodes like PyTorch; rpi4 cross-compiles to aarch64. Skipped without tvm."""

from __future__ import annotations

import pytest
import torch

tvm = pytest.importorskip("tvm")

from hat.export.tvm import TvmTranslator, export_tvm  # noqa: E402

VOCAB = 32


@pytest.fixture(scope="module")
def tiny(make_tiny_static):
    model = make_tiny_static(VOCAB, VOCAB)
    with torch.no_grad():
        model.decoder.embed_tokens.weight.mul_(6.0)  # peaked outputs: hypotheses end before max_len
    return model


def test_host_build_matches_pytorch_beam(tiny, tmp_path, capsys):
    import dataclasses

    from hat.cli.export import main
    from hat.generate import SequenceGenerator
    from hat.runtime import translate_dataset
    from hat.space import load_space
    from hat.checkpoints import save_checkpoint
    space = load_space("multi30k_tiny").to_dict()
    space["qkv_dim"] = 32
    ckpt = tmp_path / "static.pt"
    save_checkpoint({"model": tiny.state_dict(), "space": space, "model_config": dataclasses.asdict(tiny.cfg),
                     "subnet": tiny.subnet.to_dict()}, ckpt)
    # Through the CLI: compiles both graphs and checks the first-step logits against PyTorch.
    assert main(["--checkpoint", str(ckpt), "--format", "tvm", "--out", str(tmp_path / "tvm")]) == 0
    assert "max |logit diff| vs PyTorch" in capsys.readouterr().out
    tmp_path = tmp_path / "tvm"
    g = torch.Generator().manual_seed(3)
    srcs = [torch.cat([torch.randint(4, VOCAB, (n,), generator=g), torch.tensor([2])]).numpy() for n in (1, 3, 6, 4)]
    ours = translate_dataset(TvmTranslator(tmp_path, beam_size=3, max_len_b=10), srcs, batch_size=4)
    ref = translate_dataset(SequenceGenerator(tiny, beam_size=3, max_len_b=10), srcs, batch_size=4)
    assert [h.tokens.tolist() for h in ours] == [h.tokens.tolist() for h in ref]
    assert [h.score for h in ours] == pytest.approx([h.score for h in ref], abs=1e-4)


def test_rpi4_cross_compiles_to_aarch64(tiny, tmp_path):
    import shutil
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc not installed")
    paths = export_tvm(tiny, tmp_path, target="rpi4")
    for p in (paths.encoder, paths.decoder_step):
        head = p.read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 0xB7  # EM_AARCH64
    with pytest.raises(Exception, match="rpi4"):
        TvmTranslator(tmp_path)
