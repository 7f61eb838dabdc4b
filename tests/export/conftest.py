"""Fixtures of the export tests: a tiny static Transformer with non-uniform heads and arbitrary attention."""

from __future__ import annotations

import pytest
import torch

from hat.nn import ModelConfig, Transformer
from hat.space import SubnetConfig

# Two decoder layers, the first attending to the last two encoder layers (arbitrary attention: cross length
# 2 x src_len), non-uniform heads and FFN widths.
TWO_LAYER_SUBNET = SubnetConfig(
    encoder_embed_dim=32, decoder_embed_dim=32, encoder_layer_num=2, decoder_layer_num=2,
    encoder_ffn_embed_dim=[64, 32], encoder_self_attention_heads=[2, 4], decoder_ffn_embed_dim=[32, 64],
    decoder_self_attention_heads=[4, 2], decoder_ende_attention_heads=[2, 4], decoder_arbitrary_ende_attn=[1, -1])


@pytest.fixture(scope="session")
def make_tiny_static():
    """``make_tiny_static(src_vocab, tgt_vocab)``: :data:`TWO_LAYER_SUBNET` at qkv_dim 32, seeded, eval mode."""
    def make(src_vocab: int = 32, tgt_vocab: int = 32) -> Transformer:
        torch.manual_seed(0)
        cfg = ModelConfig(src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab, dropout=0.0,
                          share_all_embeddings=src_vocab == tgt_vocab)
        return Transformer(TWO_LAYER_SUBNET, cfg, 32).eval()
    return make
