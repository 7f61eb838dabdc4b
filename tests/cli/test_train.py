"""hat-train CLI: user errors are one stderr line and exit code 2; a tiny run succeeds."""

from __future__ import annotations

import json

import pytest
import yaml

from hat.cli.train import main

MINIMAL = {"src_lang": "de", "tgt_lang": "en", "space": "multi30k_tiny", "max_update": 1}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("hat-train: error:"), err
    return err


def test_malformed_yaml(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("data: [unclosed\n")
    assert main(["--config", str(p)]) == 2
    assert "malformed YAML" in _one_line_error(capsys)


def test_unknown_key(tmp_path, capsys, fairseq_fixture):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({**MINIMAL, "data": str(fairseq_fixture / "bin"), "learning_rate": 1}))
    assert main(["--config", str(p)]) == 2
    assert "unknown key(s) learning_rate" in _one_line_error(capsys)


def test_bad_override(tmp_path, capsys, fairseq_fixture):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({**MINIMAL, "data": str(fairseq_fixture / "bin")}))
    assert main(["--config", str(p), "--set", "max_tokens=lots"]) == 2
    assert "max_tokens" in _one_line_error(capsys)


def test_missing_config(tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.yaml")]) == 2
    _one_line_error(capsys)


def test_missing_data_dir(tmp_path, capsys):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({**MINIMAL, "data": str(tmp_path / "no_such_dir"), "save_dir": str(tmp_path / "o")}))
    assert main(["--config", str(p)]) == 2
    assert "no_such_dir" in _one_line_error(capsys)


def test_subnet_outside_space(tmp_path, capsys, fairseq_fixture):
    from hat.space import load_space
    big = load_space("wmt14_space0").largest()  # embed 640: not in the tiny space
    sub = tmp_path / "sub.yaml"
    big.save_yaml(sub)
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({**MINIMAL, "data": str(fairseq_fixture / "bin"), "save_dir": str(tmp_path / "o")}))
    assert main(["--config", str(p), "--subnet", str(sub)]) == 2
    assert "outside search space 'multi30k_tiny'" in _one_line_error(capsys)


def test_fp16_on_cpu_refused(tmp_path, capsys, fairseq_fixture):
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({**MINIMAL, "data": str(fairseq_fixture / "bin"), "save_dir": str(tmp_path / "o")}))
    assert main(["--config", str(p), "--device", "cpu", "--amp", "fp16"]) == 2
    assert "fp16 needs CUDA" in _one_line_error(capsys)


MICRO_SPACE = {
    "name": "micro_cli", "encoder_embed_dim": [32], "decoder_embed_dim": [32], "encoder_ffn_embed_dim": [64],
    "decoder_ffn_embed_dim": [64, 32], "encoder_layer_num": [1], "decoder_layer_num": [1],
    "encoder_self_attention_heads": [2], "decoder_self_attention_heads": [2], "decoder_ende_attention_heads": [2],
    "qkv_dim": 32,
}


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_tiny_run(tmp_path, capsys, fairseq_fixture, amp):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(MICRO_SPACE))
    task = tmp_path / "t.yaml"
    task.write_text(yaml.safe_dump({**MINIMAL, "data": str(fairseq_fixture / "bin"), "space": str(space),
                                    "max_update": 2, "max_tokens": 400, "valid_subset_max_batches": 1,
                                    "threads": 1}))
    assert main(["--config", str(task), "--no-progress", "--amp", amp, "--save-dir", str(tmp_path / "run")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["update"] == 2 and out["valid_loss"] > 0
    assert (tmp_path / "run" / "checkpoint_last.pt").is_file()


def test_tensorboard_missing_is_a_user_error(tmp_path, capsys, fairseq_fixture):
    try:
        import tensorboard  # noqa: F401
        pytest.skip("tensorboard is installed")
    except ImportError:
        pass
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({**MINIMAL, "data": str(fairseq_fixture / "bin"), "save_dir": str(tmp_path / "o"),
                                 "log_format": "tensorboard"}))
    assert main(["--config", str(p), "--no-progress"]) == 2
    assert "pip install tensorboard" in _one_line_error(capsys)


@pytest.mark.parametrize("flags,match", [
    (["--inplace-distill", "1"], "needs subnet_sampling: sandwich"),
    (["--subnet-sampling", "sandwich", "--sandwich-random", "-1"], "sandwich_random must be >= 0"),
    (["--subnet-sampling", "sandwich", "--inplace-distill", "2"], r"inplace_distill must be in"),
])
def test_bad_sandwich_flags(tmp_path, capsys, fairseq_fixture, flags, match):
    import re
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump({**MINIMAL, "data": str(fairseq_fixture / "bin"), "save_dir": str(tmp_path / "o")}))
    assert main(["--config", str(p), *flags]) == 2
    assert re.search(match, _one_line_error(capsys))
