"""Checkpoint files and the models in them: one module loads any model hat reads (ours, fairseq's, HAT's).

A hat checkpoint is a dict holding only tensors, dicts, lists, tuples, ints, floats, strings, bools and None
(``torch.load(weights_only=True)``-safe): ``model`` (state dict), ``space`` (``SearchSpace.to_dict()``),
``model_config`` (``asdict(ModelConfig)``), ``subnet`` (``SubnetConfig.to_dict()`` for a static Transformer, None for
the SuperTransformer), and the training state :mod:`hat.train.checkpoint` adds. Writes are atomic
(:func:`hat.io.save_torch`). Search, translation, export and training all load models through :func:`load_model`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import torch

from hat.errors import HatError
from hat.io import save_torch


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``)."""
    save_torch(state, path)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """``torch.load(path, weights_only=True)``, with a one-line HatError for missing or unreadable files."""
    p = Path(path)
    if not p.is_file():
        raise HatError(f"{p}: checkpoint not found")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors come in many types; all mean "not a checkpoint we can read"
        raise HatError(f"{p}: cannot read checkpoint ({describe_load_error(e)})") from None
    if not isinstance(ckpt, dict):
        raise HatError(f"{p}: not a checkpoint dict")
    return ckpt


def describe_load_error(e: BaseException) -> str:
    """One line on a ``torch.load`` failure: for a pickle that names something ``weights_only`` does not allow,
    which global it named (torch's own message spends lines on how to load it anyway); else ``Type: first line``
    (an empty file raises ``EOFError`` with no message)."""
    import re
    m = re.search(r"GLOBAL ([\w.]+)", str(e))
    if m:
        return (f"refused: its pickle references {m.group(1)}, which only a program may hold, not weights; nothing "
                f"was run")
    lines = str(e).strip().splitlines()
    detail = lines[0][:200] if lines else ("empty or truncated file" if isinstance(e, EOFError) else "no details")
    return f"{type(e).__name__}: {detail}"


def model_from_metadata(space_dict: dict, model_config: dict, subnet: Optional[dict],
                        state_dict: Optional[dict] = None, where: str = "checkpoint"):
    """SuperTransformer (``subnet`` None) or static Transformer from checkpoint metadata (weights not loaded).

    With ``state_dict``, a description larger than those weights is refused before anything is allocated
    (:func:`hat.nn.build.check_declared_size`).
    """
    from hat.config import from_dict
    from hat.nn import ModelConfig, network
    from hat.nn.build import check_declared_size
    from hat.space import SearchSpace, SubnetConfig

    space = from_dict(SearchSpace, space_dict, "checkpoint space")
    mcfg = from_dict(ModelConfig, model_config, "checkpoint model_config")
    sub = None if subnet is None else SubnetConfig.from_dict(subnet, "checkpoint subnet")
    if state_dict is not None:
        check_declared_size(space, mcfg, sub, state_dict, where)
    return network(space, mcfg, sub)


def _is_fairseq(ckpt: dict) -> bool:
    return ("args" in ckpt or "cfg" in ckpt) and "space" not in ckpt


def load_model(path: str | os.PathLike, map_location: Any = "cpu"):
    """Load a model for inference / search: ``(model, ckpt)``, model in eval mode on ``map_location``.

    Our checkpoints give a ``SuperTransformer`` (``ckpt["subnet"] is None``) or a static ``Transformer``; fairseq
    ``transformer`` checkpoints (a dict with ``args`` or ``cfg``) go through :func:`hat.interop.fairseq.load_transformer`;
    HAT's ``transformersuper`` checkpoints through :func:`hat.interop.hat_original.model_from_checkpoint` (a
    SuperTransformer, or for a HAT SubTransformer checkpoint that SubTransformer as a static ``Transformer``).

    Raises:
        HatError: missing/unreadable file, or a checkpoint that is neither ours nor fairseq's.
    """
    p = Path(path)
    try:
        ckpt = load_checkpoint(p, map_location)
    except HatError:
        if not p.is_file():
            raise
        ckpt = None  # fairseq stores args as an argparse.Namespace, which weights_only refuses
    if ckpt is None or _is_fairseq(ckpt):
        from hat.interop import hat_original
        if ckpt is None:
            # Restricted unpickler: tensors, argparse.Namespace and fairseq 0.8 meters only; refuses anything else.
            ckpt = hat_original.read_checkpoint(p)
        if hat_original.is_hat_checkpoint(ckpt):  # HAT's transformersuper (Super- or SubTransformer)
            return hat_original.model_from_checkpoint(ckpt, str(p)).to(map_location).eval(), ckpt
        from hat.interop import fairseq as fs
        if not _is_fairseq(ckpt):
            raise HatError(f"{p}: not a hat or fairseq checkpoint")
        model = fs.load_transformer(p)
        return model.to(map_location).eval(), ckpt
    missing = [k for k in ("model", "space", "model_config") if k not in ckpt]
    if missing:
        raise HatError(f"{p}: not a hat checkpoint (missing {', '.join(missing)})")
    if not isinstance(ckpt["model"], dict):
        raise HatError(f"{p}: not a hat checkpoint ('model' is not a state dict)")
    model = model_from_metadata(ckpt["space"], ckpt["model_config"], ckpt.get("subnet"), ckpt["model"], str(p))
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        raise HatError(f"{p}: weights do not fit the model described in the checkpoint "
                       f"({' '.join(str(e).split())[:200]})") from None
    return model.to(map_location).eval(), ckpt
