"""HAT's baselines in a search space: Transformers scaled by layers and by dimensions, its corners, and a seeded
ranking set (the baselines plus random SubTransformers) for comparing inherited with from-scratch quality."""

from __future__ import annotations

import random
from pathlib import Path

from hat.space import SearchSpace, SubnetConfig


def layer_scaled(space: SearchSpace, enc: int, dec: int) -> SubnetConfig:
    """The largest width with ``enc`` encoder and ``dec`` decoder layers."""
    big = space.largest()
    return SubnetConfig(
        encoder_embed_dim=big.encoder_embed_dim, decoder_embed_dim=big.decoder_embed_dim,
        encoder_layer_num=enc, decoder_layer_num=dec,
        encoder_ffn_embed_dim=[big.encoder_ffn_embed_dim[0]] * enc,
        encoder_self_attention_heads=[big.encoder_self_attention_heads[0]] * enc,
        decoder_ffn_embed_dim=[big.decoder_ffn_embed_dim[0]] * dec,
        decoder_self_attention_heads=[big.decoder_self_attention_heads[0]] * dec,
        decoder_ende_attention_heads=[big.decoder_ende_attention_heads[0]] * dec,
        decoder_arbitrary_ende_attn=[-1] * dec)


def dim_scaled(space: SearchSpace, embed: int, ffn: int) -> SubnetConfig:
    """The largest depth with embed dim ``embed`` and FFN dim ``ffn`` (heads as the largest)."""
    d = space.largest().to_dict()
    d.update(encoder_embed_dim=embed, decoder_embed_dim=embed,
             encoder_ffn_embed_dim=[ffn] * d["encoder_layer_num"], decoder_ffn_embed_dim=[ffn] * d["decoder_layer_num"])
    return SubnetConfig(**d)


def baselines(space: SearchSpace) -> dict[str, SubnetConfig]:
    """HAT's baselines: Transformers scaled by layers (encoder and decoder together) and by dimensions, plus the
    space's corners (largest = full depth and width; smallest)."""
    enc, dec = sorted(space.encoder_layer_num), sorted(space.decoder_layer_num)
    emb, ffn = sorted(space.encoder_embed_dim), sorted(space.encoder_ffn_embed_dim)
    out = {"Transformer-largest": space.largest(), "Transformer-smallest": space.smallest()}
    # layers: (max-1, max-1) and (min, min) encoder/decoder layers at full width
    for e, d in sorted({(max(enc[0], enc[-1] - 1), max(dec[0], dec[-1] - 1)), (enc[0], dec[0])}, reverse=True):
        if (e, d) != (enc[-1], dec[-1]):
            out[f"Transformer-e{e}d{d}"] = layer_scaled(space, e, d)
    for i in range(len(emb) - 2, -1, -1):  # dimensions: smaller embed + FFN at full depth
        out[f"Transformer-w{emb[i]}"] = dim_scaled(space, emb[i], ffn[i])
    return out


def ranking_configs(space: SearchSpace, n_random: int, seed: int = 7) -> dict[str, SubnetConfig]:
    """The SubTransformers whose inherited and from-scratch validation losses are compared: the baselines plus
    ``n_random`` distinct configs sampled from the space (seeded)."""
    out = dict(baselines(space))
    n_base = len(out)
    rng = random.Random(seed)
    seen = {c.key() for c in out.values()}
    while len(out) < n_base + n_random:
        c = space.sample(rng)
        if c.key() not in seen:
            seen.add(c.key())
            out[f"random{len(out) - n_base}"] = c
    return out


def save_subnet(cfg: SubnetConfig, path: Path, space: SearchSpace) -> Path:
    """Write ``cfg`` as a subnet YAML with its space's name, parameter count and FLOPs (kept if it exists)."""
    from hat.latency.flops import subnet_flops
    from hat.nn import count_subnet_params
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg.save_yaml(path, space=space.name, params=int(count_subnet_params(cfg, space.qkv_dim)),
                      flops=int(subnet_flops(cfg, space.qkv_dim)))
    return path
