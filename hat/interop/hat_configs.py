"""HAT's config files (ConfigArgParse style) <-> :class:`~hat.space.SearchSpace` / :class:`~hat.space.SubnetConfig`.

The format itself (flag names, parsing) lives in :mod:`hat.hat_yaml`, below :mod:`hat.space`, so that
``SearchSpace.from_yaml`` / ``load_space`` and ``SubnetConfig.load_yaml`` read HAT's files too. This module adds
the checks against the SuperTransformer dims HAT's ``common.yml`` gives, and the writer ``evo_search.py``'s format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from hat.errors import ConfigError
from hat.hat_yaml import SUBNET_KEYS, read_hat_yaml, super_dims
from hat.io import atomic_write
from hat.space import SearchSpace, SubnetConfig, num_ende_layers


def check_fits_super(subnet: SubnetConfig, dims: dict[str, int], where: str) -> None:
    """ConfigError when ``subnet`` does not fit the SuperTransformer ``dims`` (from :func:`super_dims`)."""
    caps = {"encoder_embed_dim": "encoder-embed-dim", "decoder_embed_dim": "decoder-embed-dim",
            "encoder_layer_num": "encoder-layers", "decoder_layer_num": "decoder-layers"}
    problems = [f"{g}={getattr(subnet, g)} > {k} {dims[k]}" for g, k in caps.items()
                if k in dims and getattr(subnet, g) > dims[k]]
    for g, k in (("encoder_ffn_embed_dim", "encoder-ffn-embed-dim"),
                 ("decoder_ffn_embed_dim", "decoder-ffn-embed-dim")):
        if k in dims:
            problems += [f"{g}[{i}]={v} > {k} {dims[k]}" for i, v in enumerate(getattr(subnet, g)) if v > dims[k]]
    q = dims.get("qkv-dim")
    if q:
        for g in ("encoder_self_attention_heads", "decoder_self_attention_heads", "decoder_ende_attention_heads"):
            problems += [f"{g}[{i}]={h} does not divide qkv-dim {q}" for i, h in enumerate(getattr(subnet, g)) if q % h]
    layers = dims.get("encoder-layers", subnet.encoder_layer_num)
    problems += [f"decoder_arbitrary_ende_attn[{i}]={v} needs more than {layers} encoder layers"
                 for i, v in enumerate(subnet.decoder_arbitrary_ende_attn) if num_ende_layers(v) > layers]
    if problems:
        raise ConfigError(f"{where}: SubTransformer does not fit the SuperTransformer: {'; '.join(problems[:3])}")


def load_hat_subnet(path: str | os.PathLike, common: Optional[str | os.PathLike] = None) -> SubnetConfig:
    """Read a HAT SubTransformer file (``HAT_*.yml``); with ``common`` (HAT's ``common.yml``) also check that it
    fits the SuperTransformer dims given there.

    Raises:
        ConfigError: unreadable file, missing genes, or a SubTransformer that does not fit.
    """
    data = read_hat_yaml(path, common)
    subnet = SubnetConfig.from_hat(data, str(path))
    dims = super_dims(data, str(path))
    if dims:
        check_fits_super(subnet, dims, str(path))
    return subnet


def load_hat_space(path: str | os.PathLike, name: Optional[str] = None) -> SearchSpace:
    """Read a HAT SuperTransformer file (``space0.yml``) as a :class:`SearchSpace` named after the file."""
    return SearchSpace.from_hat(read_hat_yaml(path), name or Path(path).stem, str(path))


def subnet_to_hat(subnet: SubnetConfig) -> str:
    """``subnet`` as the text of a HAT SubTransformer file (what ``evo_search.py`` writes; HAT's ``train.py
    --configs`` / ``generate.py --configs`` read it together with ``--sub-configs common.yml``)."""
    lines = []
    for gene, key in SUBNET_KEYS.items():
        v = getattr(subnet, gene)
        lines.append(f"{key}: [{', '.join(str(x) for x in v)}]" if isinstance(v, list) else f"{key}: {v}")
    return "\n".join(lines) + "\n"


def save_hat_subnet(subnet: SubnetConfig, path: str | os.PathLike) -> None:
    """Write :func:`subnet_to_hat` to ``path`` atomically."""
    atomic_write(path, subnet_to_hat(subnet))
