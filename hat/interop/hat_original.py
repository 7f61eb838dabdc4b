"""HAT's own checkpoints (``transformersuper`` SuperTransformers and SubTransformers) as hat models, without fairseq.

HAT (mit-han-lab/hardware-aware-transformers, a fork of fairseq 0.8) saves ``{"args": argparse.Namespace, "model":
state dict, "optimizer_history", "extra_state" (with pickled ``fairseq.meters`` objects), "last_optimizer_state"}``.
A *SubTransformer* checkpoint has the same super-shaped weights; its ``args`` add ``train_subtransformer=True`` and
the ``*_subtransformer`` genes.

Reading: torch's restricted (``weights_only``) unpickler, allowing in addition only ``argparse.Namespace`` and
stand-ins for fairseq 0.8's meter classes (their state is kept as plain attributes). Any other class or function in
the pickle is refused before anything is built, so a malicious file runs nothing (:class:`HatError`).

Converting: the fused ``in_proj_weight [3*qkv_dim, D]`` is split into q/k/v, the position buffers are dropped, the
output projection is the tied embedding, and the model is built with ``ModelConfig.hat_compat`` (HAT's position
table, arbitrary attention over the super layer list, fairseq-0.8 decoder self-attention mask), so hat's own
:class:`~hat.nn.SuperTransformer` computes what HAT's computes; the fixtures in
``../shared/fixtures/hat_supertransformer_tiny*`` check it to float32 rounding.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any, Optional

import torch

from hat.interop.args import int_arg

from hat.errors import HatError
from hat.hat_yaml import SUBNET_KEYS
from hat.nn.config import ModelConfig
from hat.nn.supertransformer import SuperTransformer
from hat.nn.transformer import Transformer
from hat.space import SearchSpace, SubnetConfig

HAT_ARCH_PREFIX = "transformersuper"
# fairseq 0.8 options HAT's model does not implement differently from us only when off.
_UNSUPPORTED_TRUE = ("encoder_normalize_before", "decoder_normalize_before", "encoder_learned_pos",
                     "decoder_learned_pos", "no_token_positional_embeddings", "adaptive_input",
                     "vocab_original_scaling")


class _Meter:
    """Stand-in for a pickled ``fairseq.meters`` object: keeps its state as attributes, has no behaviour."""


class AverageMeter(_Meter):
    """Stand-in for ``fairseq.meters.AverageMeter``."""


class TimeMeter(_Meter):
    """Stand-in for ``fairseq.meters.TimeMeter``."""


class StopwatchMeter(_Meter):
    """Stand-in for ``fairseq.meters.StopwatchMeter``."""


_ALLOWED = [argparse.Namespace] + [(c, f"fairseq.meters.{c.__name__}") for c in (AverageMeter, TimeMeter,
                                                                                StopwatchMeter)]


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Unpickle a HAT (or fairseq 0.8) checkpoint with the restricted unpickler described in the module docstring.

    Raises:
        HatError: missing file, not a checkpoint, or the pickle names a class/function outside the allow-list
            (nothing from the file is executed).
    """
    p = Path(path)
    if not p.is_file():
        raise HatError(f"{p}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(_ALLOWED):
            ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for refused globals; RuntimeError/EOFError for corrupt files
        msg = str(e)
        m = re.search(r"GLOBAL ([\w.]+)", msg)  # torch: "Unsupported global: GLOBAL x.y" / "unsupported GLOBAL x.y"
        if m:
            raise HatError(f"{p}: refused to load: the pickle references '{m.group(1)}', which a HAT checkpoint "
                           f"does not contain (only tensors, argparse.Namespace and fairseq meters are allowed; "
                           f"nothing was run)") from None
        first = msg.strip().splitlines()[0][:200] if msg.strip() else type(e).__name__
        raise HatError(f"{p}: cannot read checkpoint ({type(e).__name__}: {first})") from None
    if not isinstance(ck, dict):
        raise HatError(f"{p}: not a checkpoint dict")
    return ck


def _args(ck: dict) -> Optional[dict]:
    a = ck.get("args")
    if isinstance(a, argparse.Namespace):
        return dict(vars(a))
    return dict(a) if isinstance(a, dict) else None


def is_hat_checkpoint(ck: dict) -> bool:
    """True for a checkpoint dict written by HAT (``args.arch`` is a ``transformersuper*`` architecture)."""
    a = _args(ck)
    return a is not None and str(a.get("arch", "")).startswith(HAT_ARCH_PREFIX)


def is_subtransformer_checkpoint(ck: dict) -> bool:
    """True for a HAT SubTransformer checkpoint (``train_subtransformer`` with the ``*_subtransformer`` genes)."""
    a = _args(ck) or {}
    return bool(a.get("train_subtransformer")) and a.get("encoder_embed_dim_subtransformer") is not None


def subnet_from_args(args: dict, where: str = "checkpoint") -> SubnetConfig:
    """The SubTransformer of a HAT SubTransformer checkpoint's ``args`` (HAT ``utils.get_subtransformer_config``)."""
    return SubnetConfig.from_hat({flag: args.get(flag.replace("-", "_")) for flag in SUBNET_KEYS.values()},
                           f"{where}: args")


def _dims(args: dict, where: str) -> dict[str, int]:
    need = ("encoder_embed_dim", "decoder_embed_dim", "encoder_ffn_embed_dim", "decoder_ffn_embed_dim",
            "encoder_layers", "decoder_layers", "encoder_attention_heads", "decoder_attention_heads")
    missing = [k for k in need if args.get(k) is None]
    if missing:
        raise HatError(f"{where}: HAT args lack {', '.join(missing)}")
    d = {k: int_arg(args, k, where) for k in need}
    # HAT MHA:46-49: qkv_dim defaults to the embed dim.
    d["qkv_dim"] = int_arg(args, "qkv_dim" if args.get("qkv_dim") else "encoder_embed_dim", where)
    return d


def space_from_args(args: dict, subtransformer: bool = False, where: str = "checkpoint") -> SearchSpace:
    """The search space of a HAT SuperTransformer checkpoint (its ``*_choice`` args, which must fit the super dims).

    A SubTransformer checkpoint's ``*_choice`` args are parser defaults unrelated to its weights (fixture README),
    so with ``subtransformer`` the space is just the super dims (one choice per gene).
    """
    d = _dims(args, where)
    sup = {"encoder_embed_dim": d["encoder_embed_dim"], "decoder_embed_dim": d["decoder_embed_dim"],
           "encoder_ffn_embed_dim": d["encoder_ffn_embed_dim"], "decoder_ffn_embed_dim": d["decoder_ffn_embed_dim"],
           "encoder_layer_num": d["encoder_layers"], "decoder_layer_num": d["decoder_layers"],
           "encoder_self_attention_heads": d["encoder_attention_heads"],
           "decoder_self_attention_heads": d["decoder_attention_heads"],
           "decoder_ende_attention_heads": d["decoder_attention_heads"], "decoder_arbitrary_ende_attn": -1}
    choice_arg = {"encoder_embed_dim": "encoder_embed_choice", "decoder_embed_dim": "decoder_embed_choice"}
    genes: dict[str, Any] = {}
    for gene, top in sup.items():
        choices = None if subtransformer else args.get(choice_arg.get(gene, f"{gene}_choice"))
        if not choices:
            genes[gene] = [top]
            continue
        choices = [int(c) for c in (choices if isinstance(choices, (list, tuple)) else [choices])]
        if gene in ("encoder_embed_dim", "decoder_embed_dim", "encoder_ffn_embed_dim", "decoder_ffn_embed_dim",
                    "encoder_layer_num", "decoder_layer_num") and max(choices) > top:
            raise HatError(f"{where}: args {choice_arg.get(gene, gene + '_choice')} {choices} exceed the "
                           f"SuperTransformer's {top}")
        genes[gene] = choices
    name = Path(str(args.get("configs") or "hat_space")).stem
    try:
        return SearchSpace(name=name, qkv_dim=d["qkv_dim"], description=f"HAT SuperTransformer space ({where})",
                           **genes)
    except (ValueError, TypeError) as e:
        raise HatError(f"{where}: HAT search space from the args is invalid: {e}") from None


def model_config_from_args(args: dict, vocab_size: int, where: str = "checkpoint") -> ModelConfig:
    """hat's :class:`ModelConfig` for a HAT checkpoint (``hat_compat`` on, super dims from the args)."""
    bad = [k for k in _UNSUPPORTED_TRUE if args.get(k)]
    if bad:
        raise HatError(f"{where}: HAT options not supported: {', '.join(bad)}")
    if str(args.get("activation_fn", "relu")) not in ("relu", "gelu", "gelu_accurate", "gelu_fast", "tanh", "linear"):
        raise HatError(f"{where}: activation_fn {args.get('activation_fn')!r} not supported")
    d = _dims(args, where)
    share_all = bool(args.get("share_all_embeddings", False))
    return ModelConfig(
        src_vocab_size=vocab_size, tgt_vocab_size=vocab_size, padding_idx=1, eos_idx=2,
        max_source_positions=int_arg(args, "max_source_positions", where, 1024),
        max_target_positions=int_arg(args, "max_target_positions", where, 1024),
        share_all_embeddings=share_all,
        share_decoder_input_output_embed=share_all or bool(args.get("share_decoder_input_output_embed", False)),
        normalize_before=False, dropout=float(args.get("dropout", 0.1)),
        attention_dropout=float(args.get("attention_dropout", 0.0)),
        activation_dropout=float(args.get("activation_dropout") or args.get("relu_dropout") or 0.0),
        activation_fn=str(args.get("activation_fn", "relu")),
        hat_compat=True, hat_super_encoder_embed_dim=d["encoder_embed_dim"],
        hat_super_decoder_embed_dim=d["decoder_embed_dim"], hat_super_encoder_layer_num=d["encoder_layers"],
    )


def _expected_shapes(args: dict, sd: dict, where: str) -> dict[str, tuple]:
    """The HAT state-dict key -> shape that ``args`` imply (vocab sizes from the embedding rows)."""
    d = _dims(args, where)
    from hat.nn.build import layers_held
    for side in ("encoder", "decoder"):
        if d[f"{side}_layers"] > layers_held(sd, side):
            raise HatError(f"{where}: args give {side}_layers {d[f'{side}_layers']:,} but the state dict holds "
                           f"{layers_held(sd, side)} {side} layers")
    e, dd, q = d["encoder_embed_dim"], d["decoder_embed_dim"], d["qkv_dim"]
    out: dict[str, tuple] = {}
    for side, dim in (("encoder", e), ("decoder", dd)):
        key = f"{side}.embed_tokens.weight"
        if key not in sd:
            raise HatError(f"{where}: state dict lacks {key}")
        out[key] = (int(sd[key].shape[0]), dim)
    for side, dim, ffn, n in (("encoder", e, d["encoder_ffn_embed_dim"], d["encoder_layers"]),
                              ("decoder", dd, d["decoder_ffn_embed_dim"], d["decoder_layers"])):
        for i in range(n):
            p = f"{side}.layers.{i}"
            attns = [("self_attn", dim)] + ([("encoder_attn", e)] if side == "decoder" else [])
            for a, kdim in attns:
                if a == "encoder_attn" and kdim != dim:  # HAT MHA:53: separate projections when widths differ
                    out.update({f"{p}.{a}.q_proj_weight": (q, dim), f"{p}.{a}.k_proj_weight": (q, kdim),
                                f"{p}.{a}.v_proj_weight": (q, kdim)})
                else:
                    out[f"{p}.{a}.in_proj_weight"] = (3 * q, dim)
                out.update({f"{p}.{a}.in_proj_bias": (3 * q,), f"{p}.{a}.out_proj.weight": (dim, q),
                            f"{p}.{a}.out_proj.bias": (dim,), f"{p}.{a}_layer_norm.weight": (dim,),
                            f"{p}.{a}_layer_norm.bias": (dim,)})
            out.update({f"{p}.fc1.weight": (ffn, dim), f"{p}.fc1.bias": (ffn,), f"{p}.fc2.weight": (dim, ffn),
                        f"{p}.fc2.bias": (dim,), f"{p}.final_layer_norm.weight": (dim,),
                        f"{p}.final_layer_norm.bias": (dim,)})
    if not (args.get("share_all_embeddings") or args.get("share_decoder_input_output_embed")):
        out["decoder.embed_out"] = (out["decoder.embed_tokens.weight"][0], dd)
    return out


def _fmt(shape) -> str:
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def check_state_dict(args: dict, sd: dict, where: str = "checkpoint") -> None:
    """One-line HatError naming the first key whose shape differs from what ``args`` imply (or is missing/extra)."""
    want = _expected_shapes(args, sd, where)
    for key, shape in want.items():
        if key not in sd:
            raise HatError(f"{where}: state dict lacks {key} (args give shape {_fmt(shape)})")
        if tuple(sd[key].shape) != tuple(shape):
            raise HatError(f"{where}: {key} has shape {_fmt(sd[key].shape)} in the state dict but the args give "
                           f"{_fmt(shape)}")
    ignored = re.compile(r"^(encoder|decoder)\.(version|embed_positions\._float_tensor|embed_positions\.weights)$")
    extra = [k for k in sd if k not in want and not ignored.match(k)]
    if extra:
        raise HatError(f"{where}: state dict key {extra[0]} (shape {_fmt(sd[extra[0]].shape)}) is not part of the "
                       f"model the args describe")


def _convert_state_dict(sd: dict, qkv_dim: int) -> dict:
    """HAT key layout -> hat's (split fused q/k/v, drop position buffers, tied/untied output projection)."""
    out = {}
    for k, v in sd.items():
        if ".embed_positions." in k:
            continue  # HAT's _float_tensor is uninitialised memory; the table is recomputed
        m = re.match(r"(.*\.(?:self_attn|encoder_attn))\.in_proj_(weight|bias)$", k)
        if m:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), v.split(qkv_dim, dim=0)):
                out[f"{m.group(1)}.{name}.{m.group(2)}"] = part
            continue
        m = re.match(r"(.*\.encoder_attn)\.([qkv])_proj_weight$", k)
        if m:
            out[f"{m.group(1)}.{m.group(2)}_proj.weight"] = v
            continue
        out["decoder.output_projection.weight" if k == "decoder.embed_out" else k] = v
    if "decoder.output_projection.weight" not in out:
        out["decoder.output_projection.weight"] = out["decoder.embed_tokens.weight"]
    return out


def _load_sliced(model: torch.nn.Module, sd: dict, where: str) -> None:
    """Copy ``sd`` into ``model``, each tensor through its leading slice (HAT's weights may be wider than a space's
    largest choice; HAT only ever uses leading slices)."""
    mine = model.state_dict()
    missing = [k for k in mine if k not in sd]
    if missing:
        raise HatError(f"{where}: converted state dict lacks {missing[0]}")
    with torch.no_grad():
        for name, dst in mine.items():
            src = sd[name]
            if any(s < n for s, n in zip(src.shape, dst.shape)) or src.dim() != dst.dim():
                raise HatError(f"{where}: {name} has shape {_fmt(src.shape)}, the model needs {_fmt(dst.shape)}")
            dst.copy_(src[tuple(slice(0, n) for n in dst.shape)].to(dst.dtype))


def supertransformer_from_checkpoint(ck: dict, where: str = "checkpoint") -> SuperTransformer:
    """Build hat's :class:`SuperTransformer` (``hat_compat``) from a HAT checkpoint dict, in eval mode.

    For a SubTransformer checkpoint the space is the super dims plus its SubTransformer, which is made active.

    Raises:
        HatError: not a HAT checkpoint, unsupported options, or args that do not match the state dict.
    """
    if not is_hat_checkpoint(ck):
        raise HatError(f"{where}: not a HAT checkpoint (args.arch is not {HAT_ARCH_PREFIX}*)")
    if not isinstance(ck.get("model"), dict):
        raise HatError(f"{where}: no 'model' state dict in the checkpoint")
    args, sd = _args(ck), ck["model"]
    check_state_dict(args, sd, where)
    sub = subnet_from_args(args, where) if is_subtransformer_checkpoint(ck) else None
    space = space_from_args(args, subtransformer=sub is not None, where=where)
    cfg = model_config_from_args(args, int(sd["decoder.embed_tokens.weight"].shape[0]), where)
    from hat.nn.build import check_declared_size
    check_declared_size(space, cfg, None, sd, where)
    model = SuperTransformer(space, cfg)
    _load_sliced(model, _convert_state_dict(sd, space.qkv_dim), where)
    if sub is not None:
        model.set_active_subnet(sub)
    return model.eval()


def model_from_checkpoint(ck: dict, where: str = "checkpoint") -> SuperTransformer | Transformer:
    """What a HAT checkpoint holds: a SuperTransformer checkpoint -> :class:`SuperTransformer`; a SubTransformer
    checkpoint -> that SubTransformer as a standalone :class:`Transformer` (both ``hat_compat``, eval mode)."""
    model = supertransformer_from_checkpoint(ck, where)
    if is_subtransformer_checkpoint(ck):
        return model.get_active_subnet().eval()
    return model


def load_supernet(path: str | os.PathLike) -> SuperTransformer:
    """A HAT checkpoint file as hat's :class:`SuperTransformer` (``hat_compat``, eval mode)."""
    return supertransformer_from_checkpoint(read_checkpoint(path), str(path))


def load(checkpoint: str | os.PathLike, subnet: Optional[str | os.PathLike | SubnetConfig] = None) -> Transformer:
    """Load a HAT checkpoint as the standalone SubTransformer that HAT would run.

    Same call contract as :func:`hat.interop.fairseq.load_transformer`: ``model(src_tokens, src_lengths,
    prev_output_tokens)`` returns ``(logits, extra)``; ``model.get_normalized_probs(out)`` gives HAT's lprobs.

    Args:
        checkpoint: HAT's SuperTransformer or SubTransformer ``.pt``.
        subnet: a HAT SubTransformer YAML (``HAT_*.yml``; hat's own subnet YAML works too) or a
            :class:`SubnetConfig`. May be omitted only for a SubTransformer checkpoint (its args name it); when
            given it wins, as with HAT's ``generate.py --configs``.

    Returns:
        A :class:`Transformer` with ``cfg.hat_compat`` set, in eval mode.

    Raises:
        HatError: unreadable or refused file, not a HAT checkpoint, args/state-dict mismatch, no subnet for a
            SuperTransformer checkpoint, or a subnet that does not fit the SuperTransformer.
    """
    ck = read_checkpoint(checkpoint)
    model = supertransformer_from_checkpoint(ck, str(checkpoint))
    if subnet is None:
        if not is_subtransformer_checkpoint(ck):
            raise HatError(f"{checkpoint} is a HAT SuperTransformer checkpoint: pass subnet= (a HAT SubTransformer "
                           f"YAML or a SubnetConfig)")
        return model.get_active_subnet().eval()
    if not isinstance(subnet, SubnetConfig):
        subnet = SubnetConfig.load_yaml(subnet)
    return model.get_active_subnet(subnet).eval()
