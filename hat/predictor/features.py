"""Latency features: HAT's 10 averaged genes, analytic cost terms, and per-layer features.

Three feature kinds (a predictor stores its kind and uses the same extraction at fit and predict time):

- ``hat10``: HAT's 10 features (:data:`hat.space.HAT_FEATURE_NAMES`). Works for HAT's published CSVs.
- ``hat10_cost``: ``hat10`` plus analytic cost terms of the whole model (MACs of the encoder pass and of the
  decoder's incremental steps with beam search, weight bytes, kernel-launch counts). Every term is a sum over
  layers of quantities linear in the per-layer genes, so it is exact from the averages: also works for HAT's CSVs.
- ``layers``: ``hat10_cost`` plus per-layer genes (FFN dim, heads, arbitrary attention) padded to the space's max
  layer counts and per-layer MACs. Needs the ``subnet`` column (our own measurements).

Extraction is vectorized (one pass per gene over the configs, then numpy), so feature extraction is not the
bottleneck of :meth:`LatencyPredictor.predict_ms`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Sequence

import numpy as np

from hat.errors import HatError
from hat.space import HAT_FEATURE_NAMES, SearchSpace, SubnetConfig

FEATURE_KINDS = ("hat10", "hat10_cost", "layers")

COST_NAMES = (
    "enc_proj_mmac", "enc_score_mmac", "enc_ffn_mmac", "dec_self_proj_mmac", "dec_self_score_mmac",
    "dec_cross_mmac", "dec_cross_kv_mmac", "dec_ffn_mmac", "dec_out_mmac_per_dmodel", "weight_mbytes",
    "enc_kernels", "dec_kernels", "enc_head_kernels", "dec_head_kernels", "total_mmac",
)


@dataclass
class CostSetting:
    """Shape of one latency measurement (HAT: batch 1, source length 30 (IWSLT 23), beam 5, 30 (23) steps)."""

    src_len: int = 30
    tgt_len: int = 30  # incremental decoder steps
    beam: int = 5
    qkv_dim: int = 512

    def to_dict(self) -> dict:
        return {"src_len": self.src_len, "tgt_len": self.tgt_len, "beam": self.beam, "qkv_dim": self.qkv_dim}


def default_cost_setting(space_name: str, qkv_dim: int = 512) -> CostSetting:
    """HAT's measurement shape for a space: IWSLT uses length 23, WMT (and the rest) 30."""
    n = 23 if "iwslt" in space_name.lower() else 30
    return CostSetting(src_len=n, tgt_len=n, beam=5, qkv_dim=qkv_dim)


def _num_ende(v: np.ndarray) -> np.ndarray:
    # -1 -> 1 encoder layer, k >= 1 -> k + 1 layers (see hat.space.num_ende_layers).
    return np.where(v < 0, 1.0, v + 1.0)


def cost_terms(h: np.ndarray, cs: CostSetting, n_ende_sum: np.ndarray | None = None) -> np.ndarray:
    """Analytic cost terms (:data:`COST_NAMES`) from HAT's 10 features ``h`` [N, 10].

    Args:
        h: HAT features (averages per stack).
        cs: measurement shape.
        n_ende_sum: per config, the total number of encoder layers attended by all decoder layers (exact when the
            subnet is known); else estimated from the averaged arbitrary-attention gene.
    """
    ee, el, ef, eh, de, dl, df, dh, dch, da = (h[:, i] for i in range(10))
    S, T, B, Q = cs.src_len, cs.tgt_len, cs.beam, cs.qkv_dim
    if n_ende_sum is None:
        # avg of {-1, 1, 2} does not determine the layer count exactly; a linear proxy (avg + 1, at least 1).
        n_ende_sum = dl * np.maximum(da + 1.0, 1.0)
    m = 1e-6
    enc_proj = el * S * 4 * ee * Q * m
    enc_score = el * 2 * S * S * Q * m
    enc_ffn = el * S * 2 * ee * ef * m
    steps = T * B
    dec_self_proj = dl * steps * 4 * de * Q * m
    # self-attention over a growing prefix: sum_t (t + 1) keys per step
    dec_self_score = dl * B * 2 * Q * (T * (T + 1) / 2) * m
    dec_cross = dl * steps * 2 * de * Q * m + n_ende_sum * steps * S * 2 * Q * m
    dec_cross_kv = n_ende_sum * S * 2 * ee * Q * m  # encoder-side K/V, computed once per sentence
    dec_ffn = dl * steps * 2 * de * df * m
    dec_out = steps * de * m
    weights = 4 * (el * (4 * ee * Q + 2 * ee * ef) + dl * (6 * de * Q + 2 * ee * Q + 2 * de * df)) * m
    enc_k = el * 12.0
    dec_k = dl * T * 20.0
    enc_hk = el * eh
    dec_hk = dl * T * (dh + dch)
    total = enc_proj + enc_score + enc_ffn + dec_self_proj + dec_self_score + dec_cross + dec_cross_kv + dec_ffn
    return np.stack([enc_proj, enc_score, enc_ffn, dec_self_proj, dec_self_score, dec_cross, dec_cross_kv, dec_ffn,
                     dec_out, weights, enc_k, dec_k, enc_hk, dec_hk, total], axis=1)


_GENES = ("encoder_embed_dim", "decoder_embed_dim", "encoder_layer_num", "decoder_layer_num",
          "encoder_ffn_embed_dim", "encoder_self_attention_heads", "decoder_ffn_embed_dim",
          "decoder_self_attention_heads", "decoder_ende_attention_heads", "decoder_arbitrary_ende_attn")
_GET_GENES = attrgetter(*_GENES)


def _padded(lists: Sequence[list], lengths: np.ndarray, width: int) -> np.ndarray:
    flat = np.fromiter(chain.from_iterable(lists), dtype=np.float64, count=int(lengths.sum()))
    out = np.zeros((len(lengths), width))
    mask = np.arange(width)[None, :] < lengths[:, None]
    out[mask] = flat
    return out


class FeatureSchema:
    """Feature extraction for one kind, space and measurement shape; serializable with :meth:`to_dict`."""

    def __init__(self, kind: str, max_encoder_layers: int = 6, max_decoder_layers: int = 6,
                 cost: CostSetting | None = None):
        if kind not in FEATURE_KINDS:
            raise HatError(f"unknown feature kind '{kind}'; choose one of {', '.join(FEATURE_KINDS)}")
        self.kind = kind
        self.max_encoder_layers = int(max_encoder_layers)
        self.max_decoder_layers = int(max_decoder_layers)
        self.cost = cost or CostSetting()

    @classmethod
    def for_space(cls, kind: str, space: SearchSpace, cost: CostSetting | None = None) -> "FeatureSchema":
        return cls(kind, space.max_encoder_layer_num, space.max_decoder_layer_num,
                   cost or default_cost_setting(space.name, space.qkv_dim))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "max_encoder_layers": self.max_encoder_layers,
                "max_decoder_layers": self.max_decoder_layers, "cost": self.cost.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSchema":
        return cls(d["kind"], d["max_encoder_layers"], d["max_decoder_layers"], CostSetting(**d["cost"]))

    @property
    def names(self) -> list[str]:
        names = list(HAT_FEATURE_NAMES)
        if self.kind in ("hat10_cost", "layers"):
            names += list(COST_NAMES)
        if self.kind == "layers":
            E, D = self.max_encoder_layers, self.max_decoder_layers
            for g in ("enc_ffn", "enc_heads", "enc_layer_mmac"):
                names += [f"{g}_{i}" for i in range(E)]
            for g in ("dec_ffn", "dec_self_heads", "dec_ende_heads", "dec_n_ende", "dec_layer_mmac"):
                names += [f"{g}_{i}" for i in range(D)]
        return names

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def needs_subnet(self) -> bool:
        return self.kind == "layers"

    def from_hat(self, h: np.ndarray) -> np.ndarray:
        """Features from HAT's 10 features only (kinds ``hat10`` and ``hat10_cost``)."""
        h = np.asarray(h, dtype=np.float64).reshape(-1, 10)
        if self.kind == "hat10":
            return h
        if self.kind == "hat10_cost":
            return np.concatenate([h, cost_terms(h, self.cost)], axis=1)
        raise HatError("feature kind 'layers' needs per-layer genes (the CSV's 'subnet' column); HAT's published "
                       "files only hold averaged features: use --model with feature kind hat10/hat10_cost")

    def from_configs(self, configs: Sequence[SubnetConfig]) -> np.ndarray:
        """Features [N, dim] for SubnetConfigs (vectorized)."""
        n = len(configs)
        if n == 0:
            return np.zeros((0, self.dim))
        # One C-level pass over the configs (attrgetter + zip), then numpy: ~5 us per config.
        cols = list(zip(*map(_GET_GENES, configs)))
        el = np.array(cols[2], dtype=np.int64)
        dl = np.array(cols[3], dtype=np.int64)
        if el.max() > self.max_encoder_layers or dl.max() > self.max_decoder_layers:
            raise HatError(f"subnet has more layers than the predictor's space allows "
                           f"({self.max_encoder_layers} encoder / {self.max_decoder_layers} decoder)")
        ee = np.array(cols[0], dtype=np.float64)
        de = np.array(cols[1], dtype=np.float64)
        E, D = self.max_encoder_layers, self.max_decoder_layers
        ef = _padded(cols[4], el, E)
        eh = _padded(cols[5], el, E)
        dfn = _padded(cols[6], dl, D)
        dh = _padded(cols[7], dl, D)
        dch = _padded(cols[8], dl, D)
        da = _padded(cols[9], dl, D)
        elf, dlf = el.astype(np.float64), dl.astype(np.float64)
        h = np.stack([ee, elf, ef.sum(1) / elf, eh.sum(1) / elf, de, dlf, dfn.sum(1) / dlf, dh.sum(1) / dlf,
                      dch.sum(1) / dlf, da.sum(1) / dlf], axis=1)
        if self.kind == "hat10":
            return h
        if self.kind == "hat10_cost":
            # Same estimate as from_hat (averaged genes only), so configs map exactly like HAT's training rows.
            return np.concatenate([h, cost_terms(h, self.cost)], axis=1)
        dmask = np.arange(D)[None, :] < dl[:, None]
        n_ende = np.where(dmask, _num_ende(da), 0.0)
        cost = cost_terms(h, self.cost, n_ende.sum(1))
        cs = self.cost
        S, T, B, Q = cs.src_len, cs.tgt_len, cs.beam, cs.qkv_dim
        emask = np.arange(E)[None, :] < el[:, None]
        enc_layer = np.where(emask, (S * 4 * ee[:, None] * Q + 2 * S * S * Q + S * 2 * ee[:, None] * ef) * 1e-6, 0.0)
        dec_layer = np.where(dmask, (T * B * (6 * de[:, None] * Q + 2 * de[:, None] * dfn)
                                     + B * Q * T * (T + 1) + n_ende * (T * B * S * 2 * Q + S * 2 * ee[:, None] * Q))
                             * 1e-6, 0.0)
        return np.concatenate([h, cost, ef, eh, enc_layer, dfn, dh, dch, n_ende, dec_layer], axis=1)

    def from_records(self, records) -> np.ndarray:
        """Features for :class:`~hat.latency.records.LatencyRecord` s (subnet column used when the kind needs it)."""
        if self.kind == "layers":
            subs = [r.subnet for r in records]
            if any(s is None for s in subs):
                raise HatError("feature kind 'layers' needs the 'subnet' column in every row (HAT's published files "
                               "do not have it); use a hat10/hat10_cost model")
            return self.from_configs(subs)
        return self.from_hat(np.array([r.features for r in records], dtype=np.float64))
