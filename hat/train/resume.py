"""Resume a training run from its save directory: check that the checkpoint belongs to this run, then restore the
model, optimizer, scaler, RNG and position in the data (see :mod:`hat.train.checkpoint` for the format)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from hat.errors import HatError
from hat.train import checkpoint as ckpt_io
from hat.train.config import TrainConfig

__all__ = ["ResumeState", "restore"]

# The batch list (hence the saved position in it) depends on these; resuming with others would skip or repeat data
# silently.
SAME_ON_RESUME = ("max_tokens", "update_freq", "seed", "train_subset", "subnet_sampling", "sandwich_random",
                  "inplace_distill")


@dataclass
class ResumeState:
    """Where a resumed run continues."""

    path: Path                       # the checkpoint restored
    update: int                      # updates done
    epoch: int                       # epoch to continue in
    position: int                    # batches of that epoch already consumed (this rank's shard)
    best_valid_loss: Optional[float]


def restore(save_dir: str | Path, cfg: TrainConfig, space, subnet, model: torch.nn.Module,
            optimizer: torch.optim.Optimizer, scaler: Optional[Any] = None, world_size: int = 1,
            warn: Optional[Callable[[str], None]] = None) -> Optional[ResumeState]:
    """Load ``<save_dir>/checkpoint_last.pt`` (or the newest readable checkpoint when it is torn) into ``model``,
    ``optimizer`` and ``scaler``, and set the global RNG state saved with it.

    Args:
        save_dir: the run's directory.
        cfg, space, subnet, world_size: this run's settings; they must match the checkpoint's.
        model, optimizer, scaler: restored in place.
        warn: told (one line) when there is nothing to resume or a fallback checkpoint is used.

    Returns:
        Where to continue, or None when ``save_dir`` has no ``checkpoint_last.pt`` (a fresh start).

    Raises:
        HatError: no readable checkpoint, or it was trained with another subnet, space, data order or world size.
    """
    path = Path(save_dir) / "checkpoint_last.pt"
    if not path.exists():
        if warn is not None:
            warn(f"no {path}; starting from scratch")
        return None
    path, ck = ckpt_io.load_resume_checkpoint(save_dir, warn=warn)
    want_subnet = subnet.to_dict() if subnet is not None else None
    if ck.get("subnet") != want_subnet:
        raise HatError(f"{path} was trained with subnet {ck.get('subnet')}, this config trains {want_subnet}")
    if ck.get("space") != space.to_dict():
        raise HatError(f"{path} was trained on another search space than {space.name}")
    old_cfg = ck.get("train_config") or {}
    for k in SAME_ON_RESUME:
        if k in old_cfg and old_cfg[k] != getattr(cfg, k):
            raise HatError(f"{path}: {k} was {old_cfg[k]}, now {getattr(cfg, k)}; resume needs the same "
                           f"value (or start a new run in another --save-dir)")
    old_world = (ck.get("iterator") or {}).get("world_size", world_size)
    if old_world != world_size:
        raise HatError(f"{path}: trained with {old_world} processes, now {world_size}; resume needs the "
                       f"same number (data shards differ)")
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    if scaler is not None and ck.get("scaler"):
        scaler.load_state_dict(ck["scaler"])
    it = ck.get("iterator") or {"epoch": int(ck["epoch"]), "position": 0}
    if "rng" in ck:
        ckpt_io.set_rng_state(ck["rng"])
    return ResumeState(path, int(ck["update"]), int(it["epoch"]), int(it["position"]), ck.get("best_valid_loss"))
