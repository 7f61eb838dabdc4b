"""benchmarks/step_costs.py: the decode's split adds up, and the profiled operator shares cover the step graph."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from step_costs import measure, node_costs  # noqa: E402

pytest.importorskip("onnxruntime")


def test_the_split_adds_up_and_the_shares_cover_the_kernels():
    from hat.space import SubnetConfig
    sub = SubnetConfig(encoder_embed_dim=32, decoder_embed_dim=32, encoder_layer_num=1, decoder_layer_num=2,
                       encoder_ffn_embed_dim=[64], encoder_self_attention_heads=[2], decoder_ffn_embed_dim=[64, 32],
                       decoder_self_attention_heads=[2, 4], decoder_ende_attention_heads=[4, 2],
                       decoder_arbitrary_ende_attn=[-1, -1])
    res = measure(sub, vocab=40, qkv_dim=32, runs=2, profile_runs=1)
    for d in res["decodes"]:
        assert d["encoder_ms"] > 0 and d["step_graph_ms"] > 0
        assert d["whole_ms"] == pytest.approx(d["encoder_ms"] + d["step_graph_ms"] + d["rest_ms"])
    assert sum(res["op_shares"].values()) == pytest.approx(1.0) and "MultiHeadAttention" in res["op_shares"]
    costs = node_costs(runs=20)
    assert costs["call_us"] > 0
