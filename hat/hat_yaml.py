"""HAT's config-file format (ConfigArgParse style): flags <-> the fields of :mod:`hat.space`'s configs.

HAT (mit-han-lab/hardware-aware-transformers) passes its YAML files to ConfigArgParse (``--configs``,
``--sub-configs``): the keys are command-line flags without ``--`` (``encoder-embed-choice``), lists are written
``[a, b]`` and ``True`` marks a store_true flag. Two kinds matter here:

* SuperTransformer files (``configs/<task>/supertransformer/space0.yml``): the super dims (``encoder-embed-dim``,
  ``encoder-layers``, ``qkv-dim``, ...) and the ``*-choice`` lists of the search space;
* SubTransformer files (``configs/<task>/subtransformer/HAT_*.yml``, written by ``evo_search.py``): the
  ``*-subtransformer`` genes; HAT reads them together with ``common.yml`` (``--sub-configs``), which holds the
  super dims.

Only the architecture keys are interpreted; HAT's training, data and logging flags (``lr``, ``max-tokens``, ...)
are accepted and ignored, since they have hat equivalents elsewhere (task configs). A key that looks like an
architecture gene (``*-choice``, ``*-subtransformer``) but is not one is an error, so typos do not pass silently.

This module only translates the format (it sits below :mod:`hat.space`, which reads HAT files through it);
:mod:`hat.interop.hat_configs` has the object-level API (load, check against the super dims, write).
"""

from __future__ import annotations

import os
from typing import Any, Optional

from hat.config import load_yaml
from hat.errors import ConfigError

# hat gene -> HAT SubTransformer flag (the order evo_search.py writes them in).
SUBNET_KEYS = {
    "encoder_embed_dim": "encoder-embed-dim-subtransformer",
    "decoder_embed_dim": "decoder-embed-dim-subtransformer",
    "encoder_ffn_embed_dim": "encoder-ffn-embed-dim-all-subtransformer",
    "decoder_ffn_embed_dim": "decoder-ffn-embed-dim-all-subtransformer",
    "encoder_layer_num": "encoder-layer-num-subtransformer",
    "decoder_layer_num": "decoder-layer-num-subtransformer",
    "encoder_self_attention_heads": "encoder-self-attention-heads-all-subtransformer",
    "decoder_self_attention_heads": "decoder-self-attention-heads-all-subtransformer",
    "decoder_ende_attention_heads": "decoder-ende-attention-heads-all-subtransformer",
    "decoder_arbitrary_ende_attn": "decoder-arbitrary-ende-attn-all-subtransformer",
}
# hat search-space gene -> HAT choice flag.
SPACE_KEYS = {
    "encoder_embed_dim": "encoder-embed-choice",
    "decoder_embed_dim": "decoder-embed-choice",
    "encoder_ffn_embed_dim": "encoder-ffn-embed-dim-choice",
    "decoder_ffn_embed_dim": "decoder-ffn-embed-dim-choice",
    "encoder_layer_num": "encoder-layer-num-choice",
    "decoder_layer_num": "decoder-layer-num-choice",
    "encoder_self_attention_heads": "encoder-self-attention-heads-choice",
    "decoder_self_attention_heads": "decoder-self-attention-heads-choice",
    "decoder_ende_attention_heads": "decoder-ende-attention-heads-choice",
    "decoder_arbitrary_ende_attn": "decoder-arbitrary-ende-attn-choice",
}
# SuperTransformer dims (HAT flag -> meaning); qkv-dim defaults to the encoder embed dim (HAT MHA:46-49).
SUPER_KEYS = ("encoder-embed-dim", "decoder-embed-dim", "encoder-ffn-embed-dim", "decoder-ffn-embed-dim",
              "encoder-layers", "decoder-layers", "encoder-attention-heads", "decoder-attention-heads", "qkv-dim")
_PER_LAYER = {"encoder_ffn_embed_dim": "encoder_layer_num", "encoder_self_attention_heads": "encoder_layer_num",
              "decoder_ffn_embed_dim": "decoder_layer_num", "decoder_self_attention_heads": "decoder_layer_num",
              "decoder_ende_attention_heads": "decoder_layer_num", "decoder_arbitrary_ende_attn": "decoder_layer_num"}


def is_hat_format(data: dict) -> bool:
    """True when a parsed YAML mapping uses HAT's flag names (dashes) rather than hat's field names."""
    return any(isinstance(k, str) and "-" in k for k in data)


def read_hat_yaml(path: str | os.PathLike, common: Optional[str | os.PathLike] = None) -> dict:
    """Parse a HAT config file (and optionally HAT's ``--sub-configs`` file, whose values it overrides).

    Raises:
        ConfigError: missing or malformed file, or an architecture-looking key HAT does not have.
    """
    data = dict(load_yaml(common)) if common is not None else {}
    data.update(load_yaml(path))
    known = set(SUBNET_KEYS.values()) | set(SPACE_KEYS.values()) | set(SUPER_KEYS) | {"train-subtransformer",
                                                                                      "validate-subtransformer"}
    for k in data:
        if not isinstance(k, str):
            raise ConfigError(f"{path}: key {k!r} is not a HAT flag name")
        if (k.endswith("-choice") or k.endswith("-subtransformer")) and k not in known:
            kind = "-choice" if k.endswith("-choice") else "-subtransformer"
            raise ConfigError(f"{path}: unknown HAT architecture key '{k}' (HAT's are "
                              f"{', '.join(sorted(x for x in known if x.endswith(kind)))})")
    return data


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{where}: expected an integer, got {v!r}")
    return v


def _ints(v: Any, where: str) -> list[int]:
    if not isinstance(v, list):
        v = [v]  # ConfigArgParse turns a scalar into a one-element list for nargs='*' flags
    return [_int(x, f"{where}[{i}]") for i, x in enumerate(v)]


def super_dims(data: dict, where: str) -> dict[str, int]:
    """The SuperTransformer dims a HAT file gives (missing ones are absent; ``qkv-dim`` defaults to the embed dim)."""
    out = {k: _int(data[k], f"{where}: {k}") for k in SUPER_KEYS if data.get(k) is not None}
    if "qkv-dim" not in out and "encoder-embed-dim" in out:
        out["qkv-dim"] = out["encoder-embed-dim"]
    return out


def subnet_fields(data: dict, where: str = "HAT config") -> dict[str, Any]:
    """The :class:`~hat.space.SubnetConfig` fields given by HAT's ``*-subtransformer`` flags.

    As HAT, only the first ``*-layer-num`` entries of a per-layer list are read (``evo_search.py`` writes exactly
    that many; in-memory configs carry one per super layer).

    Raises:
        ConfigError: a flag is missing or a list is shorter than its layer count.
    """
    missing = [v for v in SUBNET_KEYS.values() if data.get(v) is None]
    if missing:
        raise ConfigError(f"{where}: not a HAT SubTransformer config (missing {', '.join(missing)})")
    d: dict[str, Any] = {}
    for gene in ("encoder_embed_dim", "decoder_embed_dim", "encoder_layer_num", "decoder_layer_num"):
        d[gene] = _int(data[SUBNET_KEYS[gene]], f"{where}: {SUBNET_KEYS[gene]}")
    for gene, count in _PER_LAYER.items():
        vals = _ints(data[SUBNET_KEYS[gene]], f"{where}: {SUBNET_KEYS[gene]}")
        if len(vals) < d[count]:
            raise ConfigError(f"{where}: {SUBNET_KEYS[gene]} has {len(vals)} entries but {SUBNET_KEYS[count]} is "
                              f"{d[count]}")
        d[gene] = vals[:d[count]]
    return d


def space_fields(data: dict, name: str, where: str = "HAT config") -> dict[str, Any]:
    """The :class:`~hat.space.SearchSpace` fields given by HAT's ``*-choice`` flags and ``qkv-dim`` (default: the super embed dim).

    Raises:
        ConfigError: a choice flag is missing, or a choice exceeds the super dims the file gives.
    """
    missing = [v for v in SPACE_KEYS.values() if data.get(v) is None and v != "decoder-arbitrary-ende-attn-choice"]
    if missing:
        raise ConfigError(f"{where}: not a HAT SuperTransformer space (missing {', '.join(missing)})")
    d: dict[str, Any] = {"name": name}
    for gene, key in SPACE_KEYS.items():
        if data.get(key) is not None:
            d[gene] = _ints(data[key], f"{where}: {key}")
    dims = super_dims(data, where)
    d["qkv_dim"] = dims.get("qkv-dim", max(d["encoder_embed_dim"]))
    for gene, key in (("encoder_embed_dim", "encoder-embed-dim"), ("decoder_embed_dim", "decoder-embed-dim"),
                      ("encoder_ffn_embed_dim", "encoder-ffn-embed-dim"),
                      ("decoder_ffn_embed_dim", "decoder-ffn-embed-dim"),
                      ("encoder_layer_num", "encoder-layers"), ("decoder_layer_num", "decoder-layers")):
        if key in dims and max(d[gene]) > dims[key]:
            raise ConfigError(f"{where}: {SPACE_KEYS[gene]} {d[gene]} exceeds the SuperTransformer's {key} "
                              f"{dims[key]}")
    d["description"] = f"HAT space from {where}"
    return d
