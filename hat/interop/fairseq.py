"""fairseq ``transformer`` checkpoints <-> :class:`hat.nn.Transformer` (no fairseq import needed).

Our parameter names are fairseq's, so the state dict maps 1:1. A fairseq transformer is a uniform SubTransformer
whose q/k/v width equals the embed dim, with encoder-decoder attention on the last encoder layer only; anything
else (per-layer genes, arbitrary attention, HAT's fixed qkv_dim) has no fairseq equivalent and raises HatError.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any, Optional

import torch

from hat.errors import HatError
from hat.interop.args import int_arg
from hat.nn.config import ModelConfig
from hat.nn.supertransformer import SuperTransformer
from hat.nn.transformer import Transformer
from hat.space import SubnetConfig

# fairseq options we cannot reproduce; loading a checkpoint that turns one on is an error, not a silent mismatch.
_UNSUPPORTED_TRUE = ("encoder_learned_pos", "decoder_learned_pos", "no_token_positional_embeddings", "adaptive_input",
                     "layernorm_embedding", "cross_self_attention", "no_cross_attention", "tie_adaptive_weights",
                     "merge_src_tgt_embed", "character_embeddings")


def load_checkpoint_dict(path: str | os.PathLike, trusted: bool = False) -> dict:
    """Load a checkpoint file (fairseq's or ours) onto the CPU.

    fairseq stores ``args`` as an ``argparse.Namespace``: it is allow-listed for ``torch.load(weights_only=True)``.

    Args:
        path: the ``.pt`` file.
        trusted: when the safe load fails (the file pickles other classes), retry with ``weights_only=False``,
            which can run arbitrary code: only for files you trust.

    Raises:
        HatError: missing file, or a safe load is impossible and ``trusted`` is False.
    """
    p = Path(path)
    if not p.is_file():
        raise HatError(f"{p}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError for disallowed globals; RuntimeError for corrupt files
        if not trusted:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise HatError(f"{p}: cannot load safely (weights_only=True): {first}. If you trust this file, load it "
                           f"with trusted=True") from None
    try:
        return torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:
        raise HatError(f"{p}: cannot load checkpoint: {e}") from None


def _model_args(ck: dict, where: str) -> dict:
    """fairseq model options as a dict, from ``args`` (fairseq < 0.10 style) or ``cfg['model']``."""
    args = ck.get("args")
    if args is None:
        cfg = ck.get("cfg")
        if isinstance(cfg, dict):
            args = cfg.get("model")
    if args is None:
        raise HatError(f"{where}: no fairseq 'args' or 'cfg.model' in the checkpoint")
    if isinstance(args, argparse.Namespace):
        return dict(vars(args))
    if isinstance(args, dict):
        return dict(args)
    raise HatError(f"{where}: unsupported fairseq model config of type {type(args).__name__}")


def _upgrade_state_dict(sd: dict) -> dict:
    """Map older fairseq key layouts to the current one (fused in_proj, embed_out, position buffers)."""
    out = {}
    for k, v in sd.items():
        if k.endswith("embed_positions._float_tensor") or k.endswith("embed_positions.weights"):
            continue  # sinusoidal positions are recomputed
        m = re.match(r"(.*\.(?:self_attn|encoder_attn))\.in_proj_(weight|bias)$", k)
        if m:  # fairseq < 0.9 fused q/k/v
            for name, part in zip(("q_proj", "k_proj", "v_proj"), v.chunk(3, dim=0)):
                out[f"{m.group(1)}.{name}.{m.group(2)}"] = part
            continue
        if k == "decoder.embed_out":
            k = "decoder.output_projection.weight"
        m = re.match(r"(.*layers\.\d+)\.layer_norms\.([01])\.(weight|bias)$", k)
        if m:  # fairseq < 0.7 encoder layer norms
            k = f"{m.group(1)}.{('self_attn_layer_norm', 'final_layer_norm')[int(m.group(2))]}.{m.group(3)}"
        out[k] = v
    return out


def _layer_count(sd: dict, prefix: str) -> int:
    idx = {int(m.group(1)) for k in sd for m in [re.match(rf"{prefix}\.layers\.(\d+)\.", k)] if m}
    if not idx or idx != set(range(max(idx) + 1)):
        raise HatError(f"checkpoint has no contiguous {prefix} layers (found {sorted(idx)})")
    return max(idx) + 1


def transformer_from_state(sd: dict, args: dict, where: str = "checkpoint") -> Transformer:
    """Build a :class:`Transformer` from a fairseq state dict and model options (dims read from the shapes)."""
    arch = args.get("arch") or args.get("_name") or ""
    if arch and not arch.startswith("transformer"):
        raise HatError(f"{where}: fairseq arch '{arch}' is not a transformer")
    if arch.startswith(("transformersuper", "transformer_lm")):
        raise HatError(f"{where}: fairseq arch '{arch}' is not supported (only encoder-decoder 'transformer*' "
                       f"architectures; for HAT's transformersuper checkpoints use hat.interop.hat_original.load)")
    bad = [k for k in _UNSUPPORTED_TRUE if args.get(k)]
    if args.get("adaptive_softmax_cutoff"):
        bad.append("adaptive_softmax_cutoff")
    if bad:
        raise HatError(f"{where}: fairseq options not supported: {', '.join(bad)}")
    sd = _upgrade_state_dict(sd)
    need = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
    missing = [k for k in need if k not in sd]
    if missing:
        raise HatError(f"{where}: state dict lacks {', '.join(missing)}")
    src_vocab, e = sd["encoder.embed_tokens.weight"].shape
    tgt_vocab, d = sd["decoder.embed_tokens.weight"].shape
    if e != d:
        raise HatError(f"{where}: encoder embed dim {e} != decoder embed dim {d}; one qkv_dim cannot express that")
    el, dl = _layer_count(sd, "encoder"), _layer_count(sd, "decoder")
    enc_heads = int_arg(args, "encoder_attention_heads", where, 8)
    dec_heads = int_arg(args, "decoder_attention_heads", where, 8)
    subnet = SubnetConfig(
        encoder_embed_dim=int(e), decoder_embed_dim=int(d), encoder_layer_num=el, decoder_layer_num=dl,
        encoder_ffn_embed_dim=[int(sd[f"encoder.layers.{i}.fc1.weight"].shape[0]) for i in range(el)],
        encoder_self_attention_heads=[enc_heads] * el,
        decoder_ffn_embed_dim=[int(sd[f"decoder.layers.{i}.fc1.weight"].shape[0]) for i in range(dl)],
        decoder_self_attention_heads=[dec_heads] * dl,
        decoder_ende_attention_heads=[dec_heads] * dl,
        decoder_arbitrary_ende_attn=[-1] * dl,
    )
    enc_nb = "encoder.layer_norm.weight" in sd
    dec_nb = "decoder.layer_norm.weight" in sd
    if enc_nb != dec_nb:
        raise HatError(f"{where}: pre-norm in only one of encoder/decoder is not supported")
    share_all = bool(args.get("share_all_embeddings", False))
    share_io = bool(args.get("share_decoder_input_output_embed", False)) or share_all
    if "decoder.output_projection.weight" not in sd:
        if not share_io:
            raise HatError(f"{where}: state dict lacks decoder.output_projection.weight")
        sd["decoder.output_projection.weight"] = sd["decoder.embed_tokens.weight"]
    cfg = ModelConfig(
        src_vocab_size=int(src_vocab), tgt_vocab_size=int(tgt_vocab),
        padding_idx=int_arg(args, "pad", where, 1, minimum=0), eos_idx=int_arg(args, "eos", where, 2, minimum=0),
        max_source_positions=int_arg(args, "max_source_positions", where, 1024),
        max_target_positions=int_arg(args, "max_target_positions", where, 1024),
        share_all_embeddings=share_all, share_decoder_input_output_embed=share_io, normalize_before=enc_nb,
        dropout=float(args.get("dropout", 0.1)), attention_dropout=float(args.get("attention_dropout", 0.0)),
        activation_dropout=float(args.get("activation_dropout", args.get("relu_dropout", 0.0)) or 0.0),
        activation_fn=str(args.get("activation_fn", "relu")),
        no_scale_embedding=bool(args.get("no_scale_embedding", False)),
    )
    from types import SimpleNamespace

    from hat.nn.build import check_declared_size
    check_declared_size(SimpleNamespace(qkv_dim=int(e)), cfg, subnet, sd, where)
    model = Transformer(subnet, cfg, qkv_dim=int(e))
    for name in ("encoder.version", "decoder.version"):
        sd.setdefault(name, torch.Tensor([3]))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as err:
        raise HatError(f"{where}: state dict does not match a fairseq transformer: {str(err)[:500]}") from None
    return model


def load_transformer(path: str | os.PathLike, trusted: bool = False) -> Transformer:
    """Load a fairseq ``transformer`` checkpoint (``args`` Namespace or ``cfg`` dict) as a :class:`Transformer`.

    Dims, layer counts and vocab sizes come from the tensor shapes; heads, norm placement, dropout, activation and
    embedding sharing from the options. ``qkv_dim`` is the embed dim (fairseq's attention width). The model is
    returned in train mode like any new module; call ``.eval()`` for inference.

    Raises:
        HatError: unreadable file, not a transformer, or a fairseq option we cannot reproduce.
    """
    ck = load_checkpoint_dict(path, trusted=trusted)
    if "model" not in ck:
        raise HatError(f"{path}: no 'model' state dict in the checkpoint")
    return transformer_from_state(ck["model"], _model_args(ck, str(path)), str(path))


def fairseq_compat_problems(subnet: SubnetConfig, qkv_dim: int) -> list[str]:
    """Reasons ``subnet`` (with ``qkv_dim``) is not expressible as a fairseq ``transformer`` (empty = it is)."""
    out = []
    diff = subnet.is_uniform()
    if diff:
        out.append(f"per-layer genes differ across layers: {', '.join(diff)}")
    if any(v != -1 for v in subnet.decoder_arbitrary_ende_attn):
        out.append(f"arbitrary encoder-decoder attention {subnet.decoder_arbitrary_ende_attn} (fairseq attends to "
                   f"the last encoder layer only: all -1)")
    if not (qkv_dim == subnet.encoder_embed_dim == subnet.decoder_embed_dim):
        out.append(f"qkv_dim {qkv_dim} must equal encoder_embed_dim {subnet.encoder_embed_dim} and "
                   f"decoder_embed_dim {subnet.decoder_embed_dim}")
    if set(subnet.decoder_ende_attention_heads) != set(subnet.decoder_self_attention_heads):
        out.append(f"decoder_ende_attention_heads {sorted(set(subnet.decoder_ende_attention_heads))} must equal "
                   f"decoder_self_attention_heads {sorted(set(subnet.decoder_self_attention_heads))}")
    return out


def _dict_lang(path: Optional[str | os.PathLike]) -> Optional[str]:
    if path is None:
        return None
    m = re.match(r"dict\.(.+)\.txt$", Path(path).name)
    return m.group(1) if m else None


def save_transformer(model: Transformer | SuperTransformer, path: str | os.PathLike,
                     src_dict_path: Optional[str | os.PathLike] = None,
                     tgt_dict_path: Optional[str | os.PathLike] = None,
                     extra_args: Optional[dict[str, Any]] = None) -> None:
    """Write ``model`` as a checkpoint that fairseq 0.12 loads (``fairseq-generate``, ``from_pretrained``).

    The file holds ``args`` (an ``argparse.Namespace``, arch ``transformer``, task ``translation``) and ``model``
    (fairseq key names), plus the bookkeeping keys fairseq's checkpoint upgrade expects. A SuperTransformer is
    saved as its active subnet.

    Args:
        model: the model.
        path: output file (written to a temp file, then renamed).
        src_dict_path, tgt_dict_path: fairseq ``dict.<lang>.txt`` files; their folder becomes ``args.data`` and
            the languages come from their names (fairseq-generate can override both on its command line).
        extra_args: more ``args`` fields (override the defaults written here).

    Raises:
        HatError: the architecture is not a fairseq transformer (names the differing genes).
    """
    if isinstance(model, SuperTransformer):
        model = model.get_active_subnet()
    _check_saveable(model)
    args = _fairseq_args(model, src_dict_path, tgt_dict_path)
    args.update(extra_args or {})
    state, seen = {}, {}
    for k, v in model.state_dict().items():
        # Keep tied weights as one tensor (fairseq's own files share storage between the 3 embedding keys).
        key = (v.data_ptr(), v.shape, v.dtype)
        if key not in seen:
            seen[key] = v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).clone()
        state[k] = seen[key]
    ck = {
        "args": argparse.Namespace(**args),
        "cfg": None,
        "model": state,
        "criterion": None,
        # fairseq's _upgrade_state_dict reads these when resuming; harmless for inference.
        "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": None}, "num_updates": 0}],
        "task_state": {},
        "extra_state": {"epoch": 1, "val_loss": None, "train_iterator": {"epoch": 1}},
        "last_optimizer_state": None,
    }
    from hat.io import save_torch
    save_torch(ck, path)


def _check_saveable(model: Transformer) -> None:
    """Raise HatError naming every gene fairseq's transformer cannot represent."""
    subnet, cfg = model.subnet, model.cfg
    problems = fairseq_compat_problems(subnet, model.qkv_dim)
    if cfg.hat_compat and (subnet.encoder_embed_dim, subnet.decoder_embed_dim) != (
            cfg.hat_super_encoder_embed_dim, cfg.hat_super_decoder_embed_dim):
        problems.append(f"HAT's positions (the {cfg.hat_super_encoder_embed_dim}-dim table, sliced) differ from "
                        f"fairseq's at width {subnet.encoder_embed_dim}/{subnet.decoder_embed_dim}")
    if problems:
        raise HatError(f"cannot save as a fairseq transformer: {'; '.join(problems)}")
    if cfg.share_all_embeddings and subnet.encoder_embed_dim != subnet.decoder_embed_dim:
        raise HatError("share_all_embeddings needs equal encoder and decoder embed dims in fairseq")


def _fairseq_args(model: Transformer, src_dict_path: Optional[str | os.PathLike],
                  tgt_dict_path: Optional[str | os.PathLike]) -> dict[str, Any]:
    """fairseq 0.12's ``args`` for a uniform ``transformer`` of ``model``'s sizes."""
    subnet, cfg = model.subnet, model.cfg
    e, d = subnet.encoder_embed_dim, subnet.decoder_embed_dim
    data_dir = str(Path(src_dict_path).parent) if src_dict_path is not None else ""
    args = dict(
        arch="transformer", _name="transformer", task="translation", data=data_dir,
        source_lang=_dict_lang(src_dict_path), target_lang=_dict_lang(tgt_dict_path),
        left_pad_source=True, left_pad_target=False, load_alignments=False,
        criterion="label_smoothed_cross_entropy", label_smoothing=0.1,
        pad=cfg.padding_idx, eos=cfg.eos_idx, unk=3, bos=0,
        encoder_embed_dim=e, decoder_embed_dim=d, decoder_output_dim=d, decoder_input_dim=d,
        encoder_ffn_embed_dim=subnet.encoder_ffn_embed_dim[0], decoder_ffn_embed_dim=subnet.decoder_ffn_embed_dim[0],
        encoder_layers=subnet.encoder_layer_num, decoder_layers=subnet.decoder_layer_num,
        encoder_attention_heads=subnet.encoder_self_attention_heads[0],
        decoder_attention_heads=subnet.decoder_self_attention_heads[0],
        encoder_normalize_before=cfg.normalize_before, decoder_normalize_before=cfg.normalize_before,
        encoder_learned_pos=False, decoder_learned_pos=False, encoder_embed_path=None, decoder_embed_path=None,
        share_all_embeddings=cfg.share_all_embeddings,
        share_decoder_input_output_embed=cfg.tie_output,
        dropout=cfg.dropout, attention_dropout=cfg.attention_dropout, activation_dropout=cfg.activation_dropout,
        activation_fn=cfg.activation_fn, no_scale_embedding=cfg.no_scale_embedding,
        max_source_positions=cfg.max_source_positions, max_target_positions=cfg.max_target_positions,
        adaptive_softmax_cutoff=None, adaptive_softmax_dropout=0, adaptive_input=False,
        no_token_positional_embeddings=False, layernorm_embedding=False, tie_adaptive_weights=False,
        cross_self_attention=False, no_cross_attention=False, merge_src_tgt_embed=False,
        checkpoint_activations=False, offload_activations=False,
        encoder_layers_to_keep=None, decoder_layers_to_keep=None, encoder_layerdrop=0, decoder_layerdrop=0,
        quant_noise_pq=0, quant_noise_pq_block_size=8, quant_noise_scalar=0,
    )
    return args
