"""benchmarks/encoder_graph.py: both arms decode the same weights, differing only in how the encoder was made."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from encoder_graph import race, summarize  # noqa: E402

pytest.importorskip("onnxruntime")


def test_both_arms_decode_and_the_summary_compares_them():
    from hat.space import SubnetConfig
    sub = SubnetConfig(encoder_embed_dim=32, decoder_embed_dim=32, encoder_layer_num=2, decoder_layer_num=1,
                       encoder_ffn_embed_dim=[64, 32], encoder_self_attention_heads=[2, 4],
                       decoder_ffn_embed_dim=[64], decoder_self_attention_heads=[2], decoder_ende_attention_heads=[4],
                       decoder_arbitrary_ende_attn=[1])
    ms = race(sub, vocab=40, qkv_dim=32, rounds=2, repeats=1)
    assert set(ms) == {"traced", "built"} and all(len(v) == 2 and all(0 < e <= w for e, w in v) for v in ms.values())
    row = summarize("m", ms)
    assert row["encoder_speedup_min"] == row["traced_encoder_min_ms"] / row["built_encoder_min_ms"]
