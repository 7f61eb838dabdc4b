"""Synthetic search problems on any space: cheap, deterministic loss and latency functions with known structure.

For tests, demos and sanity checks of the search without a trained SuperTransformer or a latency predictor:
``toy_latency`` is a linear latency formula, ``toy_loss`` a loss that falls with model size (so the best config under
a budget is a knapsack optimum), ``mismatch`` a loss whose unique optimum is a chosen target config.
"""

from __future__ import annotations

from hat.space import DECODER_LAYER_GENES, ENCODER_LAYER_GENES, GLOBAL_GENES, num_ende_layers


def toy_params(c) -> float:
    """Parameter-count-like size: bigger dims and more layers = more capacity."""
    enc = sum(2 * c.encoder_embed_dim * f + 4 * c.encoder_embed_dim * 128 for f in c.encoder_ffn_embed_dim)
    dec = sum(2 * c.decoder_embed_dim * f + 8 * c.decoder_embed_dim * 128 for f in c.decoder_ffn_embed_dim)
    return float(enc + dec)


def toy_latency(configs) -> list[float]:
    """A latency formula with other weights than the size (decoder layers are dear), so the optimum is a knapsack."""
    out = []
    for c in configs:
        out.append(2.0 + 0.01 * c.encoder_embed_dim + 0.002 * sum(c.encoder_ffn_embed_dim)
                   + c.decoder_layer_num * (1.0 + 0.01 * c.decoder_embed_dim) + 0.004 * sum(c.decoder_ffn_embed_dim)
                   + 0.2 * sum(c.encoder_self_attention_heads + c.decoder_self_attention_heads
                               + c.decoder_ende_attention_heads)
                   + 0.5 * sum(num_ende_layers(v) for v in c.decoder_arbitrary_ende_attn))
    return out


def toy_loss(configs) -> list[float]:
    """Lower for bigger configs (like validation loss), heads and arbitrary attention help a little."""
    return [10.0 - toy_params(c) / 1e5 - 0.01 * sum(c.decoder_self_attention_heads)
            - 0.02 * sum(num_ende_layers(v) for v in c.decoder_arbitrary_ende_attn) for c in configs]


def mismatch(c, target) -> int:
    """Genes of ``c`` that differ from ``target`` (missing layers count as differing): 0 only at ``target``."""
    n = sum(getattr(c, g) != getattr(target, g) for g in GLOBAL_GENES)
    for g in ENCODER_LAYER_GENES + DECODER_LAYER_GENES:
        a, b = getattr(c, g), getattr(target, g)
        n += sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
    return n


class Counting:
    """Wraps a score function, counting configs and calls."""

    def __init__(self, fn):
        self.fn, self.configs, self.calls = fn, 0, 0

    def __call__(self, configs):
        self.calls += 1
        self.configs += len(configs)
        return self.fn(configs)
