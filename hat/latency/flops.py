"""Analytic multiply-accumulate (MAC) and FLOP counts of a SubTransformer.

Counts follow HAT's model (fixed ``qkv_dim`` projections, ``head_dim = qkv_dim // heads``) and the measurement
protocol in :mod:`hat.latency.protocol`: the encoder runs once over ``src_len`` tokens, the decoder runs
``tgt_len`` incremental steps (step ``t`` attends to ``t + 1`` cached positions) for each of ``rows`` decoder rows
(beam). Counted: matrix multiplies of the projections, attention scores and weighted sums, FFNs, and the output
projection to the vocabulary; ignored: layer norms, softmax, biases, activations, embeddings lookups (all O(n)).
FLOPs = 2 x MACs. Head counts do not change MACs (the projections are ``qkv_dim`` wide whatever the split).
"""

from __future__ import annotations

from dataclasses import dataclass

from hat.space import SubnetConfig, num_ende_layers


@dataclass
class MacCount:
    """MACs per part of one sentence (see module docstring)."""

    encoder: int  # all encoder layers over src_len tokens
    cross_kv: int  # decoder cross-attention K/V projections of the encoder states (once per sentence and row)
    decoder: int  # decoder layers over tgt_len incremental steps (excluding cross_kv and output projection)
    output: int  # output projection to the vocabulary, all steps

    @property
    def total(self) -> int:
        return self.encoder + self.cross_kv + self.decoder + self.output

    @property
    def flops(self) -> int:
        """Total FLOPs (2 per MAC)."""
        return 2 * self.total


def subnet_macs(subnet: SubnetConfig, qkv_dim: int, src_len: int = 30, tgt_len: int = 30, vocab_size: int = 0,
                rows: int = 1) -> MacCount:
    """MACs of one sentence through ``subnet``.

    Args:
        subnet: the SubTransformer.
        qkv_dim: its space's fixed q/k/v projection width.
        src_len: source tokens (encoder sequence length).
        tgt_len: decoder steps.
        vocab_size: output-projection width (0 leaves it out, as HAT's FLOP numbers do).
        rows: decoder rows (beam size); the encoder is counted once.
    """
    s, q = src_len, qkv_dim
    ce, cd = subnet.encoder_embed_dim, subnet.decoder_embed_dim
    enc = 0
    for f in subnet.encoder_ffn_embed_dim:
        enc += s * ce * q * 3 + s * q * ce  # q, k, v, out projections
        enc += 2 * s * s * q  # scores + weighted sum
        enc += 2 * s * ce * f  # FFN
    cross = 0
    dec = 0
    steps_attended = tgt_len * (tgt_len + 1) // 2  # sum over steps of the cached length t + 1
    for f, v in zip(subnet.decoder_ffn_embed_dim, subnet.decoder_arbitrary_ende_attn):
        s_l = s * num_ende_layers(v)
        cross += 2 * s_l * ce * q  # K and V of the attended encoder states
        per_step = cd * q * 3 + q * cd  # self-attention projections
        per_step += cd * q + q * cd  # cross-attention query and output projections
        per_step += 2 * s_l * q  # cross-attention scores + weighted sum
        per_step += 2 * cd * f  # FFN
        dec += tgt_len * per_step + 2 * steps_attended * q  # self-attention over the growing cache
    out = tgt_len * cd * vocab_size
    return MacCount(encoder=enc, cross_kv=cross * rows, decoder=dec * rows, output=out * rows)


def subnet_flops(subnet: SubnetConfig, qkv_dim: int, src_len: int = 30, tgt_len: int = 30, vocab_size: int = 0,
                 rows: int = 1) -> int:
    """Total FLOPs (2 x MACs) of one sentence; arguments as :func:`subnet_macs`."""
    return subnet_macs(subnet, qkv_dim, src_len, tgt_len, vocab_size, rows).flops
