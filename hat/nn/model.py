"""Encoder, decoder and the encoder-decoder base shared by :class:`SuperTransformer` and :class:`Transformer`.

The computation follows fairseq's ``transformer`` (post-norm by default, pre-norm with ``normalize_before``) and HAT's
elastic extensions (fixed ``qkv_dim``, per-layer heads/FFN dims, arbitrary encoder-decoder attention). Parameter
names are fairseq's, so fairseq state dicts map 1:1. Tensors are batch-first inside; ``EncoderOut.states`` are
``[S, B, C]`` as in fairseq.
"""

from __future__ import annotations

import math
import uuid
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hat.errors import ConfigError
from hat.nn.config import ModelConfig
from hat.nn.elastic import ElasticEmbedding, ElasticLayerNorm, ElasticLinear, ElasticMultiheadAttention
from hat.space import SubnetConfig, num_ende_layers


class EncoderOut(NamedTuple):
    """Encoder output.

    Attributes:
        states: output of every active encoder layer in order, each ``[S, B, C]`` (the last one is the final output,
            after the final LayerNorm when pre-norm).
        padding_mask: ``[B, S]`` bool, True at padding.
    """

    states: list[Tensor]
    padding_mask: Tensor


def make_positions(tokens: Tensor, padding_idx: int) -> Tensor:
    """fairseq ``utils.make_positions``: non-pad tokens numbered from ``padding_idx + 1``, pads get ``padding_idx``."""
    mask = tokens.ne(padding_idx).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + padding_idx


def sinusoidal_table(num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None) -> Tensor:
    """fairseq ``SinusoidalPositionalEmbedding.get_embedding``: ``[sin | cos]`` halves, padding row zero."""
    half_dim = embedding_dim // 2
    emb = math.log(10000) / (half_dim - 1)
    emb = torch.exp(torch.arange(half_dim, dtype=torch.float) * -emb)
    emb = torch.arange(num_embeddings, dtype=torch.float).unsqueeze(1) * emb.unsqueeze(0)
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=1).view(num_embeddings, -1)
    if embedding_dim % 2 == 1:
        emb = torch.cat([emb, torch.zeros(num_embeddings, 1)], dim=1)
    if padding_idx is not None:
        emb[padding_idx, :] = 0
    return emb


class SinusoidalPositionalEmbedding(nn.Module):
    """Fixed sinusoidal positions, computed at the width asked for (a supernet uses several widths).

    The table at the full width is a non-persistent buffer (moves with ``.to()``, absent from the state dict, as in
    fairseq); other widths are computed once and cached.

    Args:
        embedding_dim: full width.
        padding_idx: pad symbol (its row is zero; positions start after it).
        init_size: rows built up front.
        source_dim: HAT semantics: every width is the leading columns of the table built at this width (HAT's
            SuperTransformer embed dim) instead of a sinusoid of its own width. None = hat's own.
    """

    def __init__(self, embedding_dim: int, padding_idx: int, init_size: int, source_dim: Optional[int] = None):
        super().__init__()
        if source_dim is not None and source_dim < embedding_dim:
            raise ConfigError(f"position table width {source_dim} is narrower than the embed dim {embedding_dim}")
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.source_dim = source_dim
        self.register_buffer("weights", self._build(init_size, embedding_dim), persistent=False)
        self._cache: dict[tuple, Tensor] = {}

    def _build(self, rows: int, dim: int) -> Tensor:
        if self.source_dim is None:
            return sinusoidal_table(rows, dim, self.padding_idx)
        return sinusoidal_table(rows, self.source_dim, self.padding_idx)[:, :dim].contiguous()

    def table(self, dim: int, min_rows: int = 0) -> Tensor:
        """The ``[rows, dim]`` table (at least ``min_rows`` rows) on this module's device and dtype."""
        w = self.weights
        rows = max(w.size(0), min_rows)
        if dim == self.embedding_dim and rows == w.size(0):
            return w
        key = (dim, rows, w.device, w.dtype)
        t = self._cache.get(key)
        if t is None:
            self._cache.clear()  # device/dtype/width changed: keep only the current one
            t = self._build(rows, dim).to(device=w.device, dtype=w.dtype)
            self._cache[key] = t
        return t

    def forward(self, tokens: Tensor, dim: int) -> Tensor:
        """Positions of ``tokens [B, T]`` at width ``dim`` -> ``[B, T, dim]`` (pads get zeros)."""
        n = tokens.size(1)
        # Grow the table only for concrete lengths: a symbolic length (torch.export / ONNX with a dynamic sequence
        # axis) must not become a guard; such graphs support up to max_*_positions.
        table = self.table(dim, n + self.padding_idx + 1) if isinstance(n, int) else self.table(dim)
        return F.embedding(make_positions(tokens, self.padding_idx), table)

    def at(self, position: Tensor, dim: int) -> Tensor:
        """Row ``padding_idx + 1 + position`` (0-based position, a 0-dim int64 tensor) -> ``[1, dim]``."""
        return self.table(dim).index_select(0, (position + (self.padding_idx + 1)).reshape(1))


def _activation(name: str):
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    if name in ("gelu_accurate", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "tanh":
        return torch.tanh
    if name == "linear":
        return lambda x: x
    raise ConfigError(f"unknown activation_fn {name!r}")


class _FFNMixin:
    """fc1 -> activation -> dropout -> fc2 -> dropout, with residual and pre/post LayerNorm (``final_layer_norm``)."""

    def init_ffn(self, embed_dim: int, ffn_dim: int, cfg: ModelConfig) -> None:
        """Create the FFN sublayer and the dropout settings; called after the attention modules, so parameters
        keep their registration order (optimizer state in checkpoints is stored in that order)."""
        self.fc1 = ElasticLinear(embed_dim, ffn_dim)
        self.fc2 = ElasticLinear(ffn_dim, embed_dim)
        self.final_layer_norm = ElasticLayerNorm(embed_dim)
        self.normalize_before = cfg.normalize_before
        self.dropout = cfg.dropout
        self.activation_dropout = cfg.activation_dropout
        self.activation = _activation(cfg.activation_fn)

    def set_ffn_active(self, embed_dim: int, ffn_dim: int) -> None:
        self.fc1.set_active(embed_dim, ffn_dim)
        self.fc2.set_active(ffn_dim, embed_dim)
        self.final_layer_norm.set_active(embed_dim)

    def ffn_block(self, x: Tensor) -> Tensor:
        residual = x
        if self.normalize_before:
            x = self.final_layer_norm(x)
        x = self.activation(self.fc1(x))
        x = F.dropout(x, self.activation_dropout, self.training)
        x = self.fc2(x)
        x = residual + F.dropout(x, self.dropout, self.training)
        if not self.normalize_before:
            x = self.final_layer_norm(x)
        return x


class TransformerEncoderLayer(_FFNMixin, nn.Module):
    """fairseq encoder layer with elastic widths. Input/output ``[B, S, C]``."""

    def __init__(self, embed_dim: int, ffn_dim: int, qkv_dim: int, cfg: ModelConfig):
        super().__init__()
        self.self_attn = ElasticMultiheadAttention(embed_dim, qkv_dim, dropout=cfg.attention_dropout)
        self.self_attn_layer_norm = ElasticLayerNorm(embed_dim)
        self.init_ffn(embed_dim, ffn_dim, cfg)

    def set_active(self, embed_dim: int, ffn_dim: int, heads: int) -> None:
        self.self_attn.set_active(embed_dim, heads)
        self.self_attn_layer_norm.set_active(embed_dim)
        self.set_ffn_active(embed_dim, ffn_dim)

    def forward(self, x: Tensor, attn_mask: Tensor) -> Tensor:
        residual = x
        if self.normalize_before:
            x = self.self_attn_layer_norm(x)
        q = self.self_attn.project_q(x)
        k, v = self.self_attn.project_kv(x)
        x = self.self_attn.attend(q, k, v, attn_mask)
        x = residual + F.dropout(x, self.dropout, self.training)
        if not self.normalize_before:
            x = self.self_attn_layer_norm(x)
        return self.ffn_block(x)

    def active_numel(self) -> int:
        return sum(m.active_numel() for m in (self.self_attn, self.self_attn_layer_norm, self.fc1, self.fc2,
                                              self.final_layer_norm))


class TransformerDecoderLayer(_FFNMixin, nn.Module):
    """fairseq decoder layer (self attention, encoder attention, FFN) with elastic widths. ``[B, T, C]``."""

    def __init__(self, embed_dim: int, encoder_embed_dim: int, ffn_dim: int, qkv_dim: int, cfg: ModelConfig):
        super().__init__()
        self.self_attn = ElasticMultiheadAttention(embed_dim, qkv_dim, dropout=cfg.attention_dropout)
        self.self_attn_layer_norm = ElasticLayerNorm(embed_dim)
        self.encoder_attn = ElasticMultiheadAttention(embed_dim, qkv_dim, kdim=encoder_embed_dim,
                                                      dropout=cfg.attention_dropout)
        self.encoder_attn_layer_norm = ElasticLayerNorm(embed_dim)
        self.init_ffn(embed_dim, ffn_dim, cfg)
        self.num_ende = 1  # encoder layers attended (arbitrary encoder-decoder attention)
        # HAT semantics: arbitrary attention indexes the SuperTransformer's list of this many encoder layers (0 = off).
        self.hat_super_encoder_layers = cfg.hat_super_encoder_layer_num if cfg.hat_compat else 0

    def set_active(self, embed_dim: int, encoder_embed_dim: int, ffn_dim: int, heads: int, ende_heads: int,
                   arbitrary_ende_attn: int) -> None:
        self.self_attn.set_active(embed_dim, heads)
        self.self_attn_layer_norm.set_active(embed_dim)
        self.encoder_attn.set_active(embed_dim, ende_heads, kdim=encoder_embed_dim)
        self.encoder_attn_layer_norm.set_active(embed_dim)
        self.set_ffn_active(embed_dim, ffn_dim)
        self.num_ende = num_ende_layers(arbitrary_ende_attn)

    def self_attn_block(self, x: Tensor, past_k: Optional[Tensor] = None, past_v: Optional[Tensor] = None,
                        attn_mask: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
        """Self attention sub-block; keys/values of ``x`` are appended to ``past_k/past_v`` (``[B, H, t, d]``).

        Returns:
            ``(x, k, v)`` with ``k, v`` the full (past + new) keys and values.
        """
        residual = x
        if self.normalize_before:
            x = self.self_attn_layer_norm(x)
        q = self.self_attn.project_q(x)
        k, v = self.self_attn.project_kv(x)
        if past_k is not None:
            k = torch.cat([past_k, k], dim=2)
            v = torch.cat([past_v, v], dim=2)
        x = self.self_attn.attend(q, k, v, attn_mask)
        x = residual + F.dropout(x, self.dropout, self.training)
        if not self.normalize_before:
            x = self.self_attn_layer_norm(x)
        return x, k, v

    def ende_states(self, num_states: int) -> list[int]:
        """Which of the encoder's ``num_states`` layer outputs this layer attends to, in the order their keys are
        concatenated (the ONNX encoder graph builds the same concatenation from this list)."""
        n = self.num_ende
        if self.hat_super_encoder_layers:
            # HAT: [-1], [-2], ... of the super layer list (last first), whose identity layers beyond the active
            # depth repeat the last active output (then repeated keys: same result as attending it once).
            padded = list(range(num_states)) + [num_states - 1] * (self.hat_super_encoder_layers - num_states)
            return [padded[-1 - j] for j in range(n)]
        return list(range(num_states))[-n:]

    def cross_kv(self, encoder_out: EncoderOut) -> tuple[Tensor, Tensor]:
        """Keys/values ``[B, H, n*S, d]`` over the last ``n`` encoder layers' outputs, concatenated along S."""
        states = [encoder_out.states[i] for i in self.ende_states(len(encoder_out.states))]
        mem = states[0] if len(states) == 1 else torch.cat(states, dim=0)
        return self.encoder_attn.project_kv(mem.transpose(0, 1))

    def cross_mask(self, padding_mask: Tensor) -> Tensor:
        """``[B, 1, 1, n*S]`` bool (True = attend) from the encoder padding mask, repeated for the n layers."""
        if self.num_ende > 1:
            padding_mask = padding_mask.repeat(1, self.num_ende)
        return padding_mask.logical_not()[:, None, None, :]

    def cross_attn_block(self, x: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor]) -> Tensor:
        residual = x
        if self.normalize_before:
            x = self.encoder_attn_layer_norm(x)
        x = self.encoder_attn.attend(self.encoder_attn.project_q(x), k, v, attn_mask)
        x = residual + F.dropout(x, self.dropout, self.training)
        if not self.normalize_before:
            x = self.encoder_attn_layer_norm(x)
        return x

    def active_numel(self) -> int:
        return sum(m.active_numel() for m in (self.self_attn, self.self_attn_layer_norm, self.encoder_attn,
                                              self.encoder_attn_layer_norm, self.fc1, self.fc2,
                                              self.final_layer_norm))


def _set_stack_dropout(stack: nn.Module, dropout: float, activation_dropout: float) -> None:
    stack.dropout = dropout
    for layer in stack.layers:
        layer.dropout, layer.activation_dropout = dropout, activation_dropout


def _embed_scale(cfg: ModelConfig, dim: int) -> float:
    return 1.0 if cfg.no_scale_embedding else math.sqrt(dim)


class TransformerEncoder(nn.Module):
    """Token + sinusoidal position embedding, then the first ``layer_num`` encoder layers."""

    def __init__(self, cfg: ModelConfig, embed_tokens: ElasticEmbedding, embed_dim: int, ffn_dims: list[int],
                 qkv_dim: int):
        super().__init__()
        self.register_buffer("version", torch.Tensor([3]))  # fairseq's state-dict version marker
        self.cfg = cfg
        self.padding_idx = cfg.padding_idx
        self.embed_dim = embed_dim
        self.embed_tokens = embed_tokens
        self.embed_positions = SinusoidalPositionalEmbedding(
            embed_dim, cfg.padding_idx, cfg.max_source_positions + cfg.padding_idx + 1,
            cfg.hat_super_encoder_embed_dim if cfg.hat_compat else None)
        self.layers = nn.ModuleList([TransformerEncoderLayer(embed_dim, f, qkv_dim, cfg) for f in ffn_dims])
        self.layer_norm = ElasticLayerNorm(embed_dim) if cfg.normalize_before else None
        self.active_dim = embed_dim
        self.active_layers = len(self.layers)
        self.dropout = cfg.dropout

    def set_dropout(self, dropout: float, activation_dropout: float) -> None:
        """Dropout of embeddings and residual branches, and after the FFN activation (all layers)."""
        _set_stack_dropout(self, dropout, activation_dropout)

    def set_active(self, embed_dim: int, layer_num: int, ffn_dims: list[int], heads: list[int]) -> None:
        """Run the first ``layer_num`` layers at width ``embed_dim`` with per-layer FFN dims and heads."""
        self.active_dim = embed_dim
        self.active_layers = layer_num
        for i in range(layer_num):
            self.layers[i].set_active(embed_dim, ffn_dims[i], heads[i])
        if self.layer_norm is not None:
            self.layer_norm.set_active(embed_dim)

    def forward(self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None) -> EncoderOut:
        """Encode ``src_tokens [B, S]`` (left or right padded; ``src_lengths`` is unused, pads define the mask)."""
        d = self.active_dim
        padding_mask = src_tokens.eq(self.padding_idx)
        x = _embed_scale(self.cfg, d) * self.embed_tokens(src_tokens, d)
        x = x + self.embed_positions(src_tokens, d)
        x = F.dropout(x, self.dropout, self.training)
        x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        attn_mask = padding_mask.logical_not()[:, None, None, :]
        states = []
        for i in range(self.active_layers):
            x = self.layers[i](x, attn_mask)
            states.append(x)
        if self.layer_norm is not None:
            states[-1] = self.layer_norm(states[-1])
        return EncoderOut([s.transpose(0, 1) for s in states], padding_mask)

    @staticmethod
    def reorder_encoder_out(encoder_out: EncoderOut, new_order: Tensor) -> EncoderOut:
        """Select batch entries ``new_order`` (beam search)."""
        return EncoderOut([s.index_select(1, new_order) for s in encoder_out.states],
                          encoder_out.padding_mask.index_select(0, new_order))

    def max_positions(self) -> int:
        return self.cfg.max_source_positions


class TransformerDecoder(nn.Module):
    """Decoder: first ``layer_num`` layers, arbitrary encoder-decoder attention, output projection."""

    def __init__(self, cfg: ModelConfig, embed_tokens: ElasticEmbedding, embed_dim: int, encoder_embed_dim: int,
                 ffn_dims: list[int], qkv_dim: int):
        super().__init__()
        self.register_buffer("version", torch.Tensor([3]))
        self.cfg = cfg
        self.padding_idx = cfg.padding_idx
        self.embed_dim = embed_dim
        self.embed_tokens = embed_tokens
        self.embed_positions = SinusoidalPositionalEmbedding(
            embed_dim, cfg.padding_idx, cfg.max_target_positions + cfg.padding_idx + 1,
            cfg.hat_super_decoder_embed_dim if cfg.hat_compat else None)
        self.layers = nn.ModuleList([TransformerDecoderLayer(embed_dim, encoder_embed_dim, f, qkv_dim, cfg)
                                     for f in ffn_dims])
        self.layer_norm = ElasticLayerNorm(embed_dim) if cfg.normalize_before else None
        if cfg.tie_output:
            self.output_projection = ElasticLinear(embed_tokens.embedding_dim, cfg.tgt_vocab_size, bias=False)
            self.output_projection.weight = embed_tokens.weight
        else:
            self.output_projection = ElasticLinear(embed_dim, cfg.tgt_vocab_size, bias=False)
            nn.init.normal_(self.output_projection.weight, mean=0.0, std=embed_dim ** -0.5)
        self.active_dim = embed_dim
        self.active_layers = len(self.layers)
        self.dropout = cfg.dropout
        self._state_key = f"decoder.{uuid.uuid4().hex}"  # namespace in a shared fairseq-style incremental_state

    def set_dropout(self, dropout: float, activation_dropout: float) -> None:
        """Dropout of embeddings and residual branches, and after the FFN activation (all layers)."""
        _set_stack_dropout(self, dropout, activation_dropout)

    def set_active(self, embed_dim: int, encoder_embed_dim: int, layer_num: int, ffn_dims: list[int],
                   heads: list[int], ende_heads: list[int], arbitrary_ende_attn: list[int]) -> None:
        """Run the first ``layer_num`` layers at width ``embed_dim`` (keys/values of encoder attention read
        ``encoder_embed_dim`` features) with per-layer FFN dims, heads and arbitrary-attention genes."""
        self.active_dim = embed_dim
        self.active_layers = layer_num
        for i in range(layer_num):
            self.layers[i].set_active(embed_dim, encoder_embed_dim, ffn_dims[i], heads[i], ende_heads[i],
                                      arbitrary_ende_attn[i])
        if self.layer_norm is not None:
            self.layer_norm.set_active(embed_dim)
        self.output_projection.set_active(in_dim=embed_dim)

    def _embed(self, tokens: Tensor, positions: Tensor) -> Tensor:
        d = self.active_dim
        x = _embed_scale(self.cfg, d) * self.embed_tokens(tokens, d) + positions
        return F.dropout(x, self.dropout, self.training)

    def _output(self, x: Tensor) -> Tensor:
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.output_projection(x)

    def forward(self, prev_output_tokens: Tensor, encoder_out: EncoderOut,
                incremental_state: Optional[dict] = None) -> tuple[Tensor, dict]:
        """Teacher-forced logits ``[B, T, V]``, or with ``incremental_state`` (fairseq convention: the whole prefix
        is passed) the logits ``[B, 1, V]`` of its last position, caching keys/values in ``incremental_state``.

        Returns:
            ``(logits, extra)``; ``extra = {"attn": [None], "inner_states": [[T, B, C] per layer input/output]}``.
        """
        if incremental_state is not None:
            return self._forward_incremental(prev_output_tokens, encoder_out, incremental_state)
        d = self.active_dim
        x = self._embed(prev_output_tokens, self.embed_positions(prev_output_tokens, d))
        t = prev_output_tokens.size(1)
        # Causal mask, and (as fairseq >= 0.9) pad keys masked: only changes the outputs at pad positions. HAT
        # (fairseq 0.8) masks future positions only.
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril_()
        if self.cfg.hat_compat:
            self_mask = causal[None, None]
        else:
            self_mask = causal[None, None] & prev_output_tokens.ne(self.padding_idx)[:, None, None, :]
        inner = [x]
        cross_masks: dict[int, Tensor] = {}  # by number of attended encoder layers
        for i in range(self.active_layers):
            layer = self.layers[i]
            x, _, _ = layer.self_attn_block(x, attn_mask=self_mask)
            k, v = layer.cross_kv(encoder_out)
            if layer.num_ende not in cross_masks:
                cross_masks[layer.num_ende] = layer.cross_mask(encoder_out.padding_mask)
            x = layer.cross_attn_block(x, k, v, cross_masks[layer.num_ende])
            x = layer.ffn_block(x)
            inner.append(x)
        return self._output(x), {"attn": [None], "inner_states": [s.transpose(0, 1) for s in inner]}

    def _forward_incremental(self, prev_output_tokens: Tensor, encoder_out: EncoderOut,
                             incremental_state: dict) -> tuple[Tensor, dict]:
        t = prev_output_tokens.size(1)
        # fairseq: in incremental mode the position is padding_idx + prefix length for every sentence.
        pos = self.embed_positions.table(self.active_dim, t + self.padding_idx + 1)[self.padding_idx + t]  # [C]
        x = self._embed(prev_output_tokens[:, -1:], pos)
        cache = incremental_state.setdefault(self._state_key, {})
        inner = [x]
        cross_masks: dict[int, Tensor] = {}
        for i in range(self.active_layers):
            layer = self.layers[i]
            c = cache.get(i)
            if c is None:
                ck, cv = layer.cross_kv(encoder_out)
                c = cache[i] = {"cross_key": ck, "cross_value": cv}
            x, c["prev_key"], c["prev_value"] = layer.self_attn_block(x, c.get("prev_key"), c.get("prev_value"))
            if layer.num_ende not in cross_masks:
                cross_masks[layer.num_ende] = layer.cross_mask(encoder_out.padding_mask)
            x = layer.cross_attn_block(x, c["cross_key"], c["cross_value"], cross_masks[layer.num_ende])
            x = layer.ffn_block(x)
            inner.append(x)
        return self._output(x), {"attn": [None], "inner_states": [s.transpose(0, 1) for s in inner]}

    def reorder_incremental_state(self, incremental_state: dict, new_order: Tensor) -> None:
        """Select batch entries ``new_order`` of every cached key/value (beam search), in place."""
        cache = incremental_state.get(self._state_key)
        if not cache:
            return
        for c in cache.values():
            for name, tensor in c.items():
                c[name] = tensor.index_select(0, new_order)

    # ----- explicit-cache API (ONNX export, numpy runtime) -----
    def cross_kv(self, encoder_out: EncoderOut) -> list[tuple[Tensor, Tensor]]:
        """Per active decoder layer, encoder-attention keys and values, each ``[B, H, S_l, d]``.

        ``S_l = num_ende_layers(v_l) * S`` (arbitrary attention concatenates encoder layers along S).
        """
        return [self.layers[i].cross_kv(encoder_out) for i in range(self.active_layers)]

    def step(self, tokens: Tensor, step: Tensor, cross_kv: list[tuple[Tensor, Tensor]], self_k: list[Tensor],
             self_v: list[Tensor], encoder_padding_mask: Optional[Tensor] = None
             ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """One decoding step with an explicit cache (no Python control flow on tensor values).

        Args:
            tokens: ``[B, 1]`` the current input token (the previous output; EOS at step 0).
            step: 0-dim int64 tensor, 0-based position of ``tokens``.
            cross_kv: from :meth:`cross_kv`.
            self_k, self_v: per layer ``[B, H, t, d]`` keys/values of the previous ``t`` steps (``t`` may be 0).
            encoder_padding_mask: ``[B, S]`` bool (True = pad) when the batch's sources are padded; None = no pads.

        Returns:
            ``(logits [B, V], new_self_k, new_self_v)`` with ``t + 1`` cached positions.
        """
        x = self._embed(tokens, self.embed_positions.at(step, self.active_dim).unsqueeze(0))
        new_k, new_v = [], []
        for i in range(self.active_layers):
            layer = self.layers[i]
            x, k, v = layer.self_attn_block(x, self_k[i], self_v[i])
            new_k.append(k)
            new_v.append(v)
            mask = None if encoder_padding_mask is None else layer.cross_mask(encoder_padding_mask)
            x = layer.cross_attn_block(x, cross_kv[i][0], cross_kv[i][1], mask)
            x = layer.ffn_block(x)
        return self._output(x)[:, 0], new_k, new_v

    def max_positions(self) -> int:
        return self.cfg.max_target_positions


def count_subnet_params(subnet: SubnetConfig, qkv_dim: int, normalize_before: bool = False) -> int:
    """Parameters of a SubTransformer without embeddings and output projection (as HAT reports them).

    Args:
        subnet: the architecture.
        qkv_dim: q/k/v projection width.
        normalize_before: pre-norm models have two extra (final) LayerNorms.
    """
    q = qkv_dim
    e, d = subnet.encoder_embed_dim, subnet.decoder_embed_dim

    def attn(embed, kdim):
        return (q * embed + q) + 2 * (q * kdim + q) + (embed * q + embed)

    def ffn(embed, f):
        return (f * embed + f) + (embed * f + embed)

    n = 0
    for f in subnet.encoder_ffn_embed_dim:
        n += attn(e, e) + ffn(e, f) + 2 * (2 * e)
    for f in subnet.decoder_ffn_embed_dim:
        n += attn(d, d) + attn(d, e) + ffn(d, f) + 3 * (2 * d)
    if normalize_before:
        n += 2 * e + 2 * d
    return n


class EncoderDecoderModel(nn.Module):
    """Shared body of :class:`~hat.nn.SuperTransformer` and :class:`~hat.nn.Transformer`."""

    encoder: TransformerEncoder
    decoder: TransformerDecoder

    def _build(self, cfg: ModelConfig, qkv_dim: int, encoder_embed_dim: int, decoder_embed_dim: int,
               encoder_ffn: list[int], decoder_ffn: list[int]) -> None:
        self.cfg = cfg
        self.qkv_dim = qkv_dim
        if cfg.share_all_embeddings:
            # One table; each side uses its leading columns (widths may differ in a supernet).
            shared = ElasticEmbedding(cfg.src_vocab_size, max(encoder_embed_dim, decoder_embed_dim), cfg.padding_idx)
            enc_emb = dec_emb = shared
        else:
            enc_emb = ElasticEmbedding(cfg.src_vocab_size, encoder_embed_dim, cfg.padding_idx)
            dec_emb = ElasticEmbedding(cfg.tgt_vocab_size, decoder_embed_dim, cfg.padding_idx)
        self.encoder = TransformerEncoder(cfg, enc_emb, encoder_embed_dim, encoder_ffn, qkv_dim)
        self.decoder = TransformerDecoder(cfg, dec_emb, decoder_embed_dim, encoder_embed_dim, decoder_ffn, qkv_dim)

    def _apply_subnet(self, s: SubnetConfig) -> None:
        self.encoder.set_active(s.encoder_embed_dim, s.encoder_layer_num, s.encoder_ffn_embed_dim,
                                s.encoder_self_attention_heads)
        self.decoder.set_active(s.decoder_embed_dim, s.encoder_embed_dim, s.decoder_layer_num,
                                s.decoder_ffn_embed_dim, s.decoder_self_attention_heads,
                                s.decoder_ende_attention_heads, s.decoder_arbitrary_ende_attn)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, prev_output_tokens: Tensor) -> tuple[Tensor, dict]:
        """Teacher-forced logits ``[B, T, V]`` and ``extra`` (see :meth:`TransformerDecoder.forward`)."""
        return self.decoder(prev_output_tokens, self.encoder(src_tokens, src_lengths))

    def get_normalized_probs(self, net_output, log_probs: bool = True, sample=None) -> Tensor:
        """(log-)softmax over the vocabulary, in float32 (fairseq convention)."""
        logits = net_output[0].float()
        return F.log_softmax(logits, dim=-1) if log_probs else F.softmax(logits, dim=-1)

    def reorder_incremental_state(self, incremental_state: dict, new_order: Tensor) -> None:
        """Reorder the decoder's cached keys/values for beam search (in place)."""
        self.decoder.reorder_incremental_state(incremental_state, new_order)

    def max_positions(self) -> tuple[int, int]:
        return self.cfg.max_source_positions, self.cfg.max_target_positions


def check_subnet_fits(subnet: SubnetConfig, qkv_dim: int, what: str = "subnet",
                      cfg: Optional[ModelConfig] = None) -> None:
    """Raise ConfigError when heads do not divide ``qkv_dim`` or arbitrary attention needs too many layers.

    With ``cfg.hat_compat`` arbitrary attention may reach as many layers as the SuperTransformer's encoder has (HAT
    indexes its layer list, whose layers beyond the active depth repeat the last active output).
    """
    for g in ("encoder_self_attention_heads", "decoder_self_attention_heads", "decoder_ende_attention_heads"):
        for i, h in enumerate(getattr(subnet, g)):
            if h <= 0 or qkv_dim % h:
                raise ConfigError(f"{what}: {g}[{i}]={h} does not divide qkv_dim {qkv_dim}")
    reach = subnet.encoder_layer_num
    if cfg is not None and cfg.hat_compat:
        reach = max(reach, cfg.hat_super_encoder_layer_num)
    for i, v in enumerate(subnet.decoder_arbitrary_ende_attn):
        if (v != -1 and v < 1) or num_ende_layers(v) > reach:
            raise ConfigError(f"{what}: decoder_arbitrary_ende_attn[{i}]={v} needs more than "
                              f"{reach} encoder layers (or is not -1 / >= 1)")
    for g in ("encoder_embed_dim", "decoder_embed_dim", "encoder_layer_num", "decoder_layer_num"):
        if getattr(subnet, g) <= 0:
            raise ConfigError(f"{what}: {g} must be positive")
