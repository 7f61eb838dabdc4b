"""Export a SubTransformer to a CTranslate2 model directory (ctranslate2's spec API; no fairseq needed).

Optional extra ``hat[ctranslate2]`` (``ctranslate2``), imported only here and by the CTranslate2 runtime.

What CTranslate2 4.8.5 executes of a HAT SubTransformer, found by measurement (``tests/export/
test_ctranslate2.py`` decodes each case with CTranslate2 and with hat's PyTorch model and compares), not from its
converters' defaults (which build uniform models only). Its runtime takes each layer's sizes from the weights:

- **per-layer FFN widths**: yes (each layer's ``linear_0``/``linear_1`` carry their own shape);
- **encoder width != decoder width**: yes (the cross-attention K/V projection reads the encoder's width);
- **q/k/v width (HAT's fixed ``qkv_dim``) != embed dim**: yes, through the per-attention ``head_dim`` attribute
  (``qkv_dim / heads``); the queries are scaled by ``head_dim ** -0.5`` as in fairseq;
- **int8**: yes (``compute_type="int8"`` at load, or ``quantization="int8"`` stored);
- **head counts**: one per encoder (``num_heads`` of the encoder spec) and one per decoder, shared by its self- and
  encoder-decoder attention: HAT's per-layer head lists must be uniform, and the decoder's two lists equal;
- **arbitrary encoder-decoder attention**: no, the decoder attends to the last encoder layer only
  (``decoder_arbitrary_ende_attn`` must be -1).

:data:`EXECUTES` states the last two as a :class:`~hat.space.SpaceConstraint`: the CTranslate2 latency runtime
declares it, so a search for CTranslate2 samples, mutates and crosses over only configs it can run, and
:func:`ctranslate2_blockers` names what a config breaks.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence

from hat.errors import HatError
from hat.optional import require
from hat.space import SpaceConstraint, SubnetConfig

EXECUTES = SpaceConstraint(
    name="ctranslate2",
    choices={"decoder_arbitrary_ende_attn": [-1]},
    tied=[["encoder_self_attention_heads"], ["decoder_self_attention_heads", "decoder_ende_attention_heads"]])
ACTIVATIONS = ("relu", "gelu")
QUANTIZATIONS = ("int8", "int8_float32", "int16", "float16", "bfloat16")


def ctranslate2_blockers(subnet: SubnetConfig, qkv_dim: Optional[int] = None) -> list[str]:
    """Why CTranslate2 cannot execute ``subnet``, one reason per gene naming its value (empty: it can).

    ``qkv_dim`` is accepted for compatibility: any q/k/v width converts (CTranslate2's ``head_dim``)."""
    return EXECUTES.violations(subnet)


def _import_ct2():
    return require("ctranslate2", "CTranslate2 export", pip="ctranslate2", extra="ctranslate2")


def _np(t):
    # A contiguous copy, never a view of the model's memory: CTranslate2's int8 quantization at conversion works on
    # the arrays in place, so a view (a whole float32 weight) came back quantized into the PyTorch model (every
    # later use of the model, the export's own check included, ran on garbage), and a strided view (an active slice
    # of a wider weight) was mis-read (a CT2 search pick: 1.9 SacreBLEU stored-int8 against 31.1 quantized at load)
    import numpy as np
    return np.array(t.detach().float().cpu().numpy(), order="C", copy=True)


# Modules of hat.nn keep weights of their largest width and compute on the active slice (a static model shares one
# embedding between an encoder and a decoder of different widths): export the active slices.
def _weight(mod):
    return mod.active_weight() if hasattr(mod, "active_weight") else mod.weight


def _bias(mod):
    return mod.active_bias() if hasattr(mod, "active_bias") else getattr(mod, "bias", None)


def _linear(spec_l, mod) -> None:
    spec_l.weight = _np(_weight(mod))
    if _bias(mod) is not None:
        spec_l.bias = _np(_bias(mod))


def _fused(spec_l, mods) -> None:
    import numpy as np
    spec_l.weight = np.concatenate([_np(_weight(m)) for m in mods])
    spec_l.bias = np.concatenate([_np(_bias(m)) for m in mods])


def _norm(spec_n, mod) -> None:
    n = getattr(mod, "active", mod.weight.shape[0])
    spec_n.gamma, spec_n.beta = _np(mod.weight[:n]), _np(mod.bias[:n])


def _ffn(spec_f, layer) -> None:
    _norm(spec_f.layer_norm, layer.final_layer_norm)
    _linear(spec_f.linear_0, layer.fc1)
    _linear(spec_f.linear_1, layer.fc2)


def _positions(embed_positions, dim: int, rows: int, pad: int):
    """fairseq positions start at ``padding_idx + 1``; CTranslate2 indexes its table from 0."""
    return _np(embed_positions.table(dim, rows + pad + 1))[pad + 1:]


def _encoder_spec(model, heads: int, activation):
    from ctranslate2.specs import transformer_spec
    subnet, cfg, enc = model.subnet, model.cfg, model.encoder
    spec = transformer_spec.TransformerEncoderSpec(subnet.encoder_layer_num, heads, pre_norm=cfg.normalize_before,
                                                   activation=activation, head_dim=int(model.qkv_dim) // heads)
    dim = subnet.encoder_embed_dim
    spec.embeddings[0].weight = _np(enc.embed_tokens.weight[:, :subnet.encoder_embed_dim])
    spec.scale_embeddings = 1.0 if cfg.no_scale_embedding else math.sqrt(dim)
    spec.position_encodings.encodings = _positions(enc.embed_positions, dim, cfg.max_source_positions,
                                                   cfg.padding_idx)
    for s, layer in zip(spec.layer, enc.layers):
        a = layer.self_attn
        _fused(s.self_attention.linear[0], [a.q_proj, a.k_proj, a.v_proj])
        _linear(s.self_attention.linear[1], a.out_proj)
        _norm(s.self_attention.layer_norm, layer.self_attn_layer_norm)
        _ffn(s.ffn, layer)
    if getattr(spec, "layer_norm", None) is not None and getattr(enc, "layer_norm", None) is not None:
        _norm(spec.layer_norm, enc.layer_norm)
    return spec


def _decoder_spec(model, heads: int, activation):
    from ctranslate2.specs import transformer_spec
    subnet, cfg, dec = model.subnet, model.cfg, model.decoder
    spec = transformer_spec.TransformerDecoderSpec(subnet.decoder_layer_num, heads, pre_norm=cfg.normalize_before,
                                                   activation=activation, head_dim=int(model.qkv_dim) // heads)
    dim = subnet.decoder_embed_dim
    spec.embeddings.weight = _np(dec.embed_tokens.weight[:, :subnet.decoder_embed_dim])
    spec.scale_embeddings = 1.0 if cfg.no_scale_embedding else math.sqrt(dim)
    spec.position_encodings.encodings = _positions(dec.embed_positions, dim, cfg.max_target_positions,
                                                   cfg.padding_idx)
    _linear(spec.projection, dec.output_projection)
    for s, layer in zip(spec.layer, dec.layers):
        a, c = layer.self_attn, layer.encoder_attn
        _fused(s.self_attention.linear[0], [a.q_proj, a.k_proj, a.v_proj])
        _linear(s.self_attention.linear[1], a.out_proj)
        _norm(s.self_attention.layer_norm, layer.self_attn_layer_norm)
        _linear(s.attention.linear[0], c.q_proj)
        _fused(s.attention.linear[1], [c.k_proj, c.v_proj])
        _linear(s.attention.linear[2], c.out_proj)
        _norm(s.attention.layer_norm, layer.encoder_attn_layer_norm)
        _ffn(s.ffn, layer)
    if getattr(spec, "layer_norm", None) is not None and getattr(dec, "layer_norm", None) is not None:
        _norm(spec.layer_norm, dec.layer_norm)
    return spec


def build_spec(model, symbols_src: Sequence[str], symbols_tgt: Sequence[str], add_source_eos: bool = True):
    """A ``ctranslate2.specs.TransformerSpec`` holding a static ``model``'s weights (fairseq semantics: post- or
    pre-norm, positions after ``padding_idx``, ``</s>`` as decoder start and source end).

    Args:
        model: a static :class:`hat.nn.Transformer`.
        symbols_src, symbols_tgt: the vocabularies, in id order.
        add_source_eos: append ``</s>`` to every source (fairseq's binarized sources end with it).

    Raises:
        HatError: a SubTransformer CTranslate2 cannot execute (:data:`EXECUTES`), or an activation it lacks.
    """
    _import_ct2()
    from ctranslate2.specs import common_spec, transformer_spec

    subnet, cfg = model.subnet, model.cfg
    why = ctranslate2_blockers(subnet)
    if why:
        raise HatError("CTranslate2 cannot execute this SubTransformer: " + "; ".join(why))
    if cfg.activation_fn not in ACTIVATIONS:
        raise HatError(f"CTranslate2 conversion supports activation {' or '.join(ACTIVATIONS)}, got "
                       f"{cfg.activation_fn}")
    activation = {"relu": common_spec.Activation.RELU, "gelu": common_spec.Activation.GELU}[cfg.activation_fn]
    spec = transformer_spec.TransformerSpec(
        _encoder_spec(model, subnet.encoder_self_attention_heads[0], activation),
        _decoder_spec(model, subnet.decoder_self_attention_heads[0], activation))
    spec.register_source_vocabulary(list(symbols_src))
    spec.register_target_vocabulary(list(symbols_tgt))
    spec.config.decoder_start_token = spec.config.eos_token
    spec.config.add_source_eos = add_source_eos
    return spec


def convert_spec(spec, out_dir: str | os.PathLike, quantization: Optional[str] = None) -> Path:
    """Validate ``spec``, optionally quantize it, and write the CTranslate2 model files (``model.bin``,
    ``config.json``, vocabularies) to ``out_dir`` (created; files there of the same names are replaced).

    Raises:
        HatError: an unknown ``quantization``.
    """
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise HatError(f"CTranslate2 quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    Converter = require("ctranslate2.converters.converter", "CTranslate2 export", pip="ctranslate2",
                        extra="ctranslate2").Converter

    class SpecConverter(Converter):
        """CTranslate2's ``Converter`` with the load step returning our spec (validate/quantize/save shared)."""

        def _load(self):
            return spec

    return Path(SpecConverter().convert(str(out_dir), quantization=quantization, force=True))


def export_ctranslate2(model, out_dir: str | os.PathLike, src_dict_path: str | os.PathLike,
                       tgt_dict_path: str | os.PathLike, quantization: Optional[str] = None) -> Path:
    """Write a CTranslate2 model directory for a static ``model`` (or a SuperTransformer's active SubTransformer).

    Args:
        model: a :class:`hat.nn.Transformer` that CTranslate2 can execute (:func:`ctranslate2_blockers` is empty).
        out_dir: output folder (created; its model files are replaced).
        src_dict_path, tgt_dict_path: the fairseq dictionaries the model was trained with.
        quantization: stored weight type (None = float32; CTranslate2 can also quantize at load time with
            ``compute_type="int8"``).

    Raises:
        HatError: ctranslate2 missing, or a model it cannot execute (one line naming the gene and its value).
    """
    from hat.runtime.vocab import Vocabulary

    if hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    spec = build_spec(model.eval(), Vocabulary.load(src_dict_path).symbols, Vocabulary.load(tgt_dict_path).symbols)
    return convert_spec(spec, out_dir, quantization)


def latency_symbols(vocab_size: int) -> list[str]:
    """A vocabulary of ``vocab_size`` distinct symbols with fairseq's four specials first (random-init latency
    models: the ids matter, not the words)."""
    return ["<s>", "<pad>", "</s>", "<unk>"] + [f"w{i}" for i in range(4, vocab_size)]
