"""Convert a uniform SubTransformer to a CTranslate2 model with ctranslate2's Python spec API (no fairseq needed).

Benchmark-only (``pip install -e '.[bench]'``: ``ctranslate2``); used by ``benchmarks/ctranslate2_race.py`` to race
hat's ONNX runtime against the engine people deploy translation models on CPU with.

What CTranslate2 can and cannot represent of a HAT SubTransformer (``TransformerSpec``):

- one head count for every attention layer of the model (``TransformerSpec.from_config(num_heads=...)``); HAT's
  per-layer ``*_attention_heads`` lists cannot be expressed;
- one FFN width per model in practice (each layer's ``fc1``/``fc2`` weights carry their own shape, but the spec
  and its converters assume a uniform stack; we refuse non-uniform FFN dims rather than rely on it);
- head dim = embed dim / heads: HAT's fixed ``qkv_dim`` (q/k/v width independent of the embed dim) must equal the
  embed dim;
- the decoder attends to the last encoder layer only: HAT's arbitrary encoder-decoder attention
  (``decoder_arbitrary_ende_attn`` != -1, attending to a concatenation of several encoder layers) has no equivalent;
- equal encoder and decoder embed dims (shared embeddings).

:func:`ctranslate2_blockers` lists which of these a subnet breaks; :func:`export_ctranslate2` refuses such models.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence

from hat.errors import HatError
from hat.optional import require


def ctranslate2_blockers(subnet, qkv_dim: int) -> list[str]:
    """Reasons CTranslate2's ``TransformerSpec`` cannot represent ``subnet`` (empty = convertible)."""
    why = []
    heads = set(subnet.encoder_self_attention_heads) | set(subnet.decoder_self_attention_heads) | \
        set(subnet.decoder_ende_attention_heads)
    if len(heads) > 1:
        why.append(f"per-layer attention head counts {sorted(heads)} (CTranslate2: one num_heads per model)")
    ffn = set(subnet.encoder_ffn_embed_dim) | set(subnet.decoder_ffn_embed_dim)
    if len(ffn) > 1:
        why.append(f"per-layer FFN dims {sorted(ffn)} (CTranslate2 converters: one ffn dim per model)")
    if subnet.encoder_embed_dim != subnet.decoder_embed_dim:
        why.append("different encoder and decoder embed dims")
    if qkv_dim != subnet.encoder_embed_dim:
        why.append(f"qkv_dim {qkv_dim} != embed dim {subnet.encoder_embed_dim} (CTranslate2: head_dim = dim/heads)")
    if any(v != -1 for v in subnet.decoder_arbitrary_ende_attn):
        why.append("arbitrary encoder-decoder attention (CTranslate2 attends to the last encoder layer only)")
    return why


def _np(t):
    return t.detach().float().cpu().numpy()


def build_spec(model, symbols_src: Sequence[str], symbols_tgt: Sequence[str]):
    """A ``ctranslate2.specs.TransformerSpec`` holding ``model``'s weights (fairseq post-/pre-norm semantics)."""
    import numpy as np
    from ctranslate2.specs import common_spec, transformer_spec

    from hat.nn.model import sinusoidal_table

    subnet, cfg = model.subnet, model.cfg
    why = ctranslate2_blockers(subnet, int(model.qkv_dim))
    if why:
        raise HatError("CTranslate2 cannot represent this SubTransformer: " + "; ".join(why))
    if cfg.activation_fn != "relu":
        raise HatError(f"CTranslate2 conversion supports relu only, got {cfg.activation_fn}")
    heads = subnet.encoder_self_attention_heads[0]
    dim = subnet.encoder_embed_dim
    spec = transformer_spec.TransformerSpec.from_config(
        (subnet.encoder_layer_num, subnet.decoder_layer_num), heads, pre_norm=cfg.normalize_before,
        activation=common_spec.Activation.RELU)
    pad = cfg.padding_idx
    # fairseq positions start at padding_idx + 1; CTranslate2 indexes its table from 0.
    pos = _np(sinusoidal_table(max(cfg.max_source_positions, cfg.max_target_positions) + pad + 1, dim, pad))[pad + 1:]
    scale = 1.0 if cfg.no_scale_embedding else math.sqrt(dim)

    def linear(spec_l, mod):
        spec_l.weight = _np(mod.weight)
        if getattr(mod, "bias", None) is not None:
            spec_l.bias = _np(mod.bias)

    def fused(spec_l, mods):
        spec_l.weight = np.concatenate([_np(m.weight) for m in mods])
        spec_l.bias = np.concatenate([_np(m.bias) for m in mods])

    def norm(spec_n, mod):
        spec_n.gamma, spec_n.beta = _np(mod.weight), _np(mod.bias)

    def ffn(spec_f, layer):
        norm(spec_f.layer_norm, layer.final_layer_norm)
        linear(spec_f.linear_0, layer.fc1)
        linear(spec_f.linear_1, layer.fc2)

    enc, dec = model.encoder, model.decoder
    spec.encoder.embeddings[0].weight = _np(enc.embed_tokens.weight)
    spec.encoder.scale_embeddings = scale
    spec.encoder.position_encodings.encodings = pos
    for s, layer in zip(spec.encoder.layer, enc.layers):
        a = layer.self_attn
        fused(s.self_attention.linear[0], [a.q_proj, a.k_proj, a.v_proj])
        linear(s.self_attention.linear[1], a.out_proj)
        norm(s.self_attention.layer_norm, layer.self_attn_layer_norm)
        ffn(s.ffn, layer)
    if getattr(spec.encoder, "layer_norm", None) is not None and getattr(enc, "layer_norm", None) is not None:
        norm(spec.encoder.layer_norm, enc.layer_norm)
    spec.decoder.embeddings.weight = _np(dec.embed_tokens.weight)
    spec.decoder.scale_embeddings = scale
    spec.decoder.position_encodings.encodings = pos
    linear(spec.decoder.projection, dec.output_projection)
    for s, layer in zip(spec.decoder.layer, dec.layers):
        a, c = layer.self_attn, layer.encoder_attn
        fused(s.self_attention.linear[0], [a.q_proj, a.k_proj, a.v_proj])
        linear(s.self_attention.linear[1], a.out_proj)
        norm(s.self_attention.layer_norm, layer.self_attn_layer_norm)
        linear(s.attention.linear[0], c.q_proj)
        fused(s.attention.linear[1], [c.k_proj, c.v_proj])
        linear(s.attention.linear[2], c.out_proj)
        norm(s.attention.layer_norm, layer.encoder_attn_layer_norm)
        ffn(s.ffn, layer)
    if getattr(spec.decoder, "layer_norm", None) is not None and getattr(dec, "layer_norm", None) is not None:
        norm(spec.decoder.layer_norm, dec.layer_norm)
    spec.register_source_vocabulary(list(symbols_src))
    spec.register_target_vocabulary(list(symbols_tgt))
    # fairseq: sources end with </s>, and the decoder starts from </s>.
    spec.config.decoder_start_token = spec.config.eos_token
    spec.config.add_source_eos = True
    return spec


def export_ctranslate2(model, out_dir: str | os.PathLike, src_dict_path: str | os.PathLike,
                       tgt_dict_path: str | os.PathLike, quantization: Optional[str] = None) -> Path:
    """Write a CTranslate2 model directory for a uniform static ``model``.

    Args:
        model: a static :class:`hat.nn.Transformer` whose subnet CTranslate2 can represent
            (:func:`ctranslate2_blockers` is empty).
        out_dir: output folder (overwritten).
        src_dict_path, tgt_dict_path: the fairseq dictionaries the model was trained with.
        quantization: stored weight type (None = float32; CTranslate2 can also quantize at load time with
            ``compute_type="int8"``).

    Raises:
        HatError: ctranslate2 missing, or a model it cannot represent.
    """
    Converter = require("ctranslate2.converters.converter", "CTranslate2 conversion", pip="ctranslate2",
                        extra="bench").Converter
    from hat.runtime.vocab import Vocabulary

    if hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    spec = build_spec(model.eval(), Vocabulary.load(src_dict_path).symbols, Vocabulary.load(tgt_dict_path).symbols)

    class _SpecConverter(Converter):
        def _load(self):
            return spec

    return Path(_SpecConverter().convert(str(out_dir), quantization=quantization, force=True))
