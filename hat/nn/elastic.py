"""Elastic layers: weights sized for the largest choice, used through a leading slice (HAT weight sharing).

Every elastic module holds its full-size parameters and an *active* size set by ``set_active(...)``; ``forward``
uses ``weight[:out, :in]`` (a view, no copy). When the active size equals the full size the parameter is used
as is, so a static model built from these modules runs the same code with no slicing at all.

Tensors are batch-first inside the model (``[B, T, C]``); attention works on ``[B, H, T, head_dim]``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ElasticLinear(nn.Module):
    """``nn.Linear`` whose active input/output widths are leading slices of the full weight.

    Args:
        in_features: full (max) input width.
        out_features: full (max) output width.
        bias: whether there is a bias.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.active_in = in_features
        self.active_out = out_features
        self.reset_parameters()

    def reset_parameters(self, gain: float = 1.0) -> None:
        """Xavier-uniform weight (fairseq/HAT), zero bias."""
        nn.init.xavier_uniform_(self.weight, gain=gain)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def set_active(self, in_dim: Optional[int] = None, out_dim: Optional[int] = None) -> None:
        """Set the active input/output widths (None keeps the current value)."""
        if in_dim is not None:
            if not 0 < in_dim <= self.in_features:
                raise ValueError(f"active in_dim {in_dim} not in (0, {self.in_features}]")
            self.active_in = in_dim
        if out_dim is not None:
            if not 0 < out_dim <= self.out_features:
                raise ValueError(f"active out_dim {out_dim} not in (0, {self.out_features}]")
            self.active_out = out_dim

    def active_weight(self) -> Tensor:
        w = self.weight
        if self.active_out != self.out_features:
            w = w[: self.active_out]
        if self.active_in != self.in_features:
            w = w[:, : self.active_in]
        return w

    def active_bias(self) -> Optional[Tensor]:
        if self.bias is None or self.active_out == self.out_features:
            return self.bias
        return self.bias[: self.active_out]

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.active_weight(), self.active_bias())

    def active_numel(self) -> int:
        return self.active_out * self.active_in + (self.active_out if self.bias is not None else 0)

    def extra_repr(self) -> str:
        return (f"in={self.in_features}, out={self.out_features}, active=({self.active_in}, {self.active_out}), "
                f"bias={self.bias is not None}")


class ElasticEmbedding(nn.Module):
    """Token embedding ``[num_embeddings, embedding_dim]`` used at an active width ``weight[:, :dim]``.

    Initialised like fairseq/HAT: N(0, embedding_dim^-0.5), padding row zero (and it gets no gradient).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim))
        nn.init.normal_(self.weight, mean=0.0, std=embedding_dim ** -0.5)
        with torch.no_grad():
            self.weight[padding_idx].zero_()

    def forward(self, tokens: Tensor, dim: int) -> Tensor:
        """Embed ``tokens`` at width ``dim`` (<= embedding_dim)."""
        w = self.weight if dim == self.embedding_dim else self.weight[:, :dim]
        return F.embedding(tokens, w, self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, padding_idx={self.padding_idx}"


class ElasticLayerNorm(nn.Module):
    """LayerNorm over the first ``active`` features (weight/bias sliced)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.active = dim

    def set_active(self, dim: int) -> None:
        if not 0 < dim <= self.dim:
            raise ValueError(f"active dim {dim} not in (0, {self.dim}]")
        self.active = dim

    def forward(self, x: Tensor) -> Tensor:
        d = self.active
        if d == self.dim:
            return F.layer_norm(x, (d,), self.weight, self.bias, self.eps)
        return F.layer_norm(x, (d,), self.weight[:d], self.bias[:d], self.eps)

    def active_numel(self) -> int:
        return 2 * self.active

    def extra_repr(self) -> str:
        return f"{self.dim}, active={self.active}, eps={self.eps}"


class ElasticMultiheadAttention(nn.Module):
    """HAT multi-head attention: q/k/v always project to ``qkv_dim``; heads only change the split.

    ``q_proj: [qkv_dim, embed_dim]``, ``k_proj/v_proj: [qkv_dim, kdim]``, ``out_proj: [embed_dim, qkv_dim]``; the
    input widths (and out_proj's output width) are sliced to the active embed dims. ``head_dim = qkv_dim // heads``.

    Args:
        embed_dim: full query (and output) width.
        qkv_dim: fixed projection width.
        kdim: full key/value input width (encoder embed dim for encoder-decoder attention); default embed_dim.
        dropout: attention-probability dropout.
    """

    def __init__(self, embed_dim: int, qkv_dim: int, kdim: Optional[int] = None, dropout: float = 0.0):
        super().__init__()
        kdim = kdim or embed_dim
        self.embed_dim, self.qkv_dim, self.kdim = embed_dim, qkv_dim, kdim
        self.dropout = dropout
        self.k_proj = ElasticLinear(kdim, qkv_dim)
        self.v_proj = ElasticLinear(kdim, qkv_dim)
        self.q_proj = ElasticLinear(embed_dim, qkv_dim)
        self.out_proj = ElasticLinear(qkv_dim, embed_dim)
        # fairseq init: 1/sqrt(2) gain for the separate q/k/v projections.
        for p in (self.k_proj, self.v_proj, self.q_proj):
            p.reset_parameters(gain=1 / math.sqrt(2))
        self.num_heads = 1

    def set_active(self, embed_dim: int, num_heads: int, kdim: Optional[int] = None) -> None:
        """Set the active query width, head count and (cross attention) key/value input width."""
        if self.qkv_dim % num_heads:
            raise ValueError(f"qkv_dim {self.qkv_dim} not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q_proj.set_active(in_dim=embed_dim)
        self.out_proj.set_active(out_dim=embed_dim)
        kd = embed_dim if kdim is None else kdim
        self.k_proj.set_active(in_dim=kd)
        self.v_proj.set_active(in_dim=kd)

    @property
    def head_dim(self) -> int:
        return self.qkv_dim // self.num_heads

    def _split(self, x: Tensor) -> Tensor:
        # [B, T, qkv] -> [B, H, T, d]
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def project_q(self, x: Tensor) -> Tensor:
        """Queries ``[B, H, T, d]`` (unscaled; SDPA applies 1/sqrt(d))."""
        return self._split(self.q_proj(x))

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values ``[B, H, T, d]`` of ``x [B, T, kdim]``."""
        return self._split(self.k_proj(x)), self._split(self.v_proj(x))

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None,
               is_causal: bool = False) -> Tensor:
        """Scaled dot-product attention then out_proj.

        Args:
            q, k, v: ``[B, H, T, d]``.
            mask: bool, broadcastable to ``[B, H, Tq, Tk]``, True = may attend.
            is_causal: causal mask (no ``mask`` allowed then).

        Returns:
            ``[B, Tq, embed]``.
        """
        p = self.dropout if self.training else 0.0
        if torch.onnx.is_in_onnx_export() and not is_causal:
            o = self._attend_for_export(q, k, v, mask)
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        b, _, t, _ = o.shape
        return self.out_proj(o.transpose(1, 2).reshape(b, t, self.qkv_dim))

    def _attend_for_export(self, q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor]) -> Tensor:
        # SDPA exports its scale as Sqrt(Shape(q)) and guards fully masked rows with IsNaN/Where: ~10 graph nodes
        # per attention that the static head_dim and a cross-attention mask that never masks a whole row make
        # unnecessary (ONNX Runtime's per-node cost dominates a decoder step at batch 1).
        scores = torch.matmul(q * (1.0 / math.sqrt(self.head_dim)), k.transpose(-2, -1))
        if mask is not None:
            scores = scores.masked_fill(mask.logical_not(), float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    def active_numel(self) -> int:
        return sum(m.active_numel() for m in (self.q_proj, self.k_proj, self.v_proj, self.out_proj))
