"""What a training run is built from, each testable on its own: the device, the model (with seeded initial weights,
optionally extracted from a SuperTransformer) and the optimizer with its learning-rate schedule and AMP scaler.
:class:`hat.train.trainer.Trainer` calls these in this order."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from hat.distributed import local_device
from hat.errors import ConfigError, HatError
from hat.nn import network
from hat.train.config import TrainConfig
from hat.train.lr import build_schedule

__all__ = ["BuiltModel", "Optimization", "build_model", "build_optimizer", "model_config_for", "resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (this rank's GPU) or ``auto`` (CUDA when available) as a device.

    Raises:
        HatError: ``cuda`` requested but not available.
    """
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise HatError("device cuda requested but CUDA is not available")
        return local_device(True)
    return torch.device("cpu")


def model_config_for(cfg: TrainConfig, src_dict, tgt_dict):
    """``cfg.model`` completed with the vocabulary sizes and special indices of the dictionaries.

    Raises:
        ConfigError: ``cfg.model`` sets a field that comes from the dictionaries, or an unknown one.
    """
    from hat.config import from_dict
    from hat.nn import ModelConfig

    model_kw = dict(cfg.model)
    for k in ("src_vocab_size", "tgt_vocab_size", "padding_idx", "eos_idx"):
        if k in model_kw:
            raise ConfigError(f"model.{k} comes from the dictionaries; remove it from the config")
    model_kw.update(src_vocab_size=len(src_dict), tgt_vocab_size=len(tgt_dict), padding_idx=tgt_dict.pad(),
                    eos_idx=tgt_dict.eos())
    return from_dict(ModelConfig, model_kw, "model")


@dataclass
class BuiltModel:
    """What :func:`build_model` returns."""

    model: torch.nn.Module
    # The config the model computes with (HAT-compatible fields copied from an init_from_supernet checkpoint).
    model_cfg: Any
    subnet: Optional[Any]  # the fixed SubnetConfig trained, None for a SuperTransformer


def build_model(cfg: TrainConfig, space, model_cfg) -> BuiltModel:
    """The model ``cfg`` trains, on the CPU: a SuperTransformer, or the fixed SubTransformer ``cfg.subnet``
    (initialised from ``cfg.init_from_supernet`` when set). Initial weights come from ``torch.manual_seed(cfg.seed)``,
    so they are identical on every rank and in every run.

    Raises:
        HatError: the subnet is outside ``space``, or the supernet checkpoint does not fit it.
    """
    from hat.space import SubnetConfig

    torch.manual_seed(cfg.seed)
    if not cfg.subnet:
        return BuiltModel(network(space, model_cfg), model_cfg, None)
    subnet = SubnetConfig.load_yaml(cfg.subnet)
    space.check(subnet, f"subnet {cfg.subnet}")
    model = network(space, model_cfg, subnet)
    if cfg.init_from_supernet:
        return _init_from_supernet(cfg, space, BuiltModel(model, model_cfg, subnet))
    return BuiltModel(model, model_cfg, subnet)


def _init_from_supernet(cfg: TrainConfig, space, built: BuiltModel) -> BuiltModel:
    from hat.checkpoints import load_model

    path = cfg.init_from_supernet
    sup, ck = load_model(path)
    if ck.get("subnet") is not None or not hasattr(sup, "get_active_subnet"):
        raise HatError(f"{path}: init_from_supernet needs a SuperTransformer checkpoint")
    sup.space.check(built.subnet, f"subnet {cfg.subnet} (supernet {path})")
    if sup.space.qkv_dim != space.qkv_dim:
        raise HatError(f"{path}: supernet qkv_dim {sup.space.qkv_dim} differs from space {space.name}'s "
                       f"{space.qkv_dim}")
    model, model_cfg = built.model, built.model_cfg
    if sup.cfg.hat_compat:  # HAT's SuperTransformer: keep computing with HAT's semantics (hat.nn.ModelConfig)
        model_cfg = dataclasses.replace(model_cfg, **{
            k: getattr(sup.cfg, k) for k in ("hat_compat", "hat_super_encoder_embed_dim",
                                             "hat_super_decoder_embed_dim", "hat_super_encoder_layer_num")})
        model = network(space, model_cfg, built.subnet)
    sd = sup.get_active_subnet(built.subnet).state_dict()
    mine = model.state_dict()
    bad = [k for k in mine if k not in sd or sd[k].shape != mine[k].shape]
    if bad:
        raise HatError(f"{path}: supernet weights do not fit this model (vocabulary differs?): {bad[0]}")
    model.load_state_dict(sd)
    return BuiltModel(model, model_cfg, built.subnet)


@dataclass
class Optimization:
    """What :func:`build_optimizer` returns."""

    optimizer: torch.optim.Optimizer
    schedule: Callable[[int], float]  # update -> learning rate (hat.train.lr)
    amp_dtype: Optional[torch.dtype]  # autocast dtype, None without AMP
    scaler: Optional[Any]             # torch.amp.GradScaler for fp16, else None


def build_optimizer(cfg: TrainConfig, params: list[torch.nn.Parameter]) -> Optimization:
    """Adam over ``params`` with ``cfg``'s betas, eps and weight decay, its learning-rate schedule and AMP settings
    (the learning rate is set by the schedule before every update)."""
    optimizer = torch.optim.Adam(params, lr=cfg.warmup_init_lr if cfg.warmup_init_lr >= 0 else 0.0,
                                 betas=tuple(cfg.adam_betas), eps=cfg.adam_eps, weight_decay=cfg.weight_decay)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    return Optimization(optimizer, build_schedule(cfg), amp_dtype, scaler)
