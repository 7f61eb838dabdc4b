"""benchmarks/protocol_race.py: the graph/outside split times every graph call hat's runtime makes, and its parts
add up to the whole decode."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from protocol_race import outside_share  # noqa: E402

pytest.importorskip("onnxruntime")


def test_the_outside_share_is_what_the_graph_calls_leave():
    from hat.space import SubnetConfig
    sub = SubnetConfig(encoder_embed_dim=32, decoder_embed_dim=32, encoder_layer_num=1, decoder_layer_num=1,
                       encoder_ffn_embed_dim=[64], encoder_self_attention_heads=[2], decoder_ffn_embed_dim=[64],
                       decoder_self_attention_heads=[2], decoder_ende_attention_heads=[2],
                       decoder_arbitrary_ende_attn=[-1])
    res = outside_share(sub, vocab=40, qkv_dim=32, runs=3)
    assert 0 < res["graph_ms"] < res["whole_ms"] and 0 < res["outside_share"] < 1
