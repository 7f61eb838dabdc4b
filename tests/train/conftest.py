"""Fixtures for hat.train tests: a very small space and task config on the fairseq Multi30k fixture data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

MICRO_SPACE = {
    "name": "micro_test",
    "encoder_embed_dim": [32, 16],
    "decoder_embed_dim": [32, 16],
    "encoder_ffn_embed_dim": [64, 32],
    "decoder_ffn_embed_dim": [64, 32],
    "encoder_layer_num": [2],
    "decoder_layer_num": [2, 1],
    "encoder_self_attention_heads": [4, 2],
    "decoder_self_attention_heads": [4, 2],
    "decoder_ende_attention_heads": [4, 2],
    "decoder_arbitrary_ende_attn": [-1, 1],
    "qkv_dim": 32,
}


def write_task(tmp_path: Path, data_dir: Path, **overrides) -> Path:
    """A task YAML for a micro SuperTransformer on ``data_dir``; returns its path."""
    space = tmp_path / "micro_space.yaml"
    space.write_text(yaml.safe_dump(MICRO_SPACE))
    cfg = {
        "task": "micro",
        "data": str(data_dir),
        "src_lang": "de",
        "tgt_lang": "en",
        "space": str(space),
        "model": {"dropout": 0.1},
        "max_tokens": 400,
        "max_update": 6,
        "lr": 0.002,
        "warmup_updates": 2,
        "save_dir": str(tmp_path / "ckpt"),
        "save_interval_updates": 2,
        "keep_last": 2,
        "log_interval": 1,
        "valid_subset_max_batches": 2,
        "threads": 1,
    }
    cfg.update(overrides)
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def fixture_bin(fairseq_fixture) -> Path:
    return fairseq_fixture / "bin"


@pytest.fixture
def make_task(tmp_path, fixture_bin):
    """``make_task(**overrides) -> Path``: write the micro task YAML with overrides into ``tmp_path``."""
    return lambda **overrides: write_task(tmp_path, fixture_bin, **overrides)


@pytest.fixture
def task_yaml(make_task) -> Path:
    return make_task()
