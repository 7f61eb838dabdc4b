"""Training checkpoints: resume, RNG state, pruning (the file format and model loading are :mod:`hat.checkpoints`').

Beyond :mod:`hat.checkpoints`' keys a training checkpoint holds ``optimizer``, ``scheduler``, ``update``,
``epoch``, ``rng``, ``train_config`` and, from the trainer, ``iterator`` (``{epoch, position, end_of_epoch}``: where
in the epoch's batch list to resume), ``best_valid_loss``, ``scaler``, ``version``.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Optional

import torch

from hat.checkpoints import load_checkpoint
from hat.errors import HatError
from hat.io import atomic_path

CHECKPOINT_VERSION = 1


def load_resume_checkpoint(save_dir: str | os.PathLike, map_location: Any = "cpu",
                           warn=None) -> tuple[Path, dict]:
    """``checkpoint_last.pt`` of ``save_dir``; when it is unreadable (empty, truncated), the newest readable
    epoch or update checkpoint instead, saying so through ``warn`` (one line).

    Raises:
        HatError: ``checkpoint_last.pt`` is unreadable and no other checkpoint can be read either.
    """
    last = Path(save_dir) / "checkpoint_last.pt"
    try:
        return last, load_checkpoint(last, map_location)
    except HatError as e:
        first_error = str(e)
    found = []
    for cand in epoch_checkpoints(save_dir) + update_checkpoints(save_dir):
        try:
            ck = load_checkpoint(cand, map_location)
        except HatError:
            continue
        found.append((int(ck.get("update", 0)), cand.name, cand, ck))
    if not found:
        raise HatError(f"{first_error}; no other readable checkpoint in {save_dir} to resume from") from None
    _, _, path, ck = max(found, key=lambda t: (t[0], t[1]))
    if warn is not None:
        warn(f"{first_error}; resuming from {path.name} (update {int(ck.get('update', 0))}) instead")
    return path, ck


def copy_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Atomic, fsync'd file copy (hard links would let a later in-place write change both)."""
    import shutil
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


# ----- RNG state (as tensors / lists so weights_only loading works) -----
def get_rng_state(py_rng: Optional[random.Random] = None) -> dict:
    """Torch CPU (and CUDA) generator states as uint8 tensors; a Python Random's state as nested lists."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if py_rng is not None:
        version, internal, gauss = py_rng.getstate()
        state["python"] = [version, list(internal), gauss]
    return state


def set_rng_state(state: dict, py_rng: Optional[random.Random] = None) -> None:
    """Inverse of :func:`get_rng_state` (missing entries are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if "python" in state and py_rng is not None:
        version, internal, gauss = state["python"]
        py_rng.setstate((version, tuple(internal), gauss))


# ----- file names (fairseq's) -----
_EPOCH_RE = re.compile(r"^checkpoint(\d+)\.pt$")
_UPDATE_RE = re.compile(r"^checkpoint_(\d+)_(\d+)\.pt$")


def epoch_checkpoints(save_dir: str | os.PathLike) -> list[Path]:
    """``checkpoint<epoch>.pt`` files, newest (highest epoch) first."""
    d = Path(save_dir)
    found = [(int(m.group(1)), p) for p in d.glob("checkpoint*.pt") if (m := _EPOCH_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def update_checkpoints(save_dir: str | os.PathLike) -> list[Path]:
    """``checkpoint_<epoch>_<update>.pt`` files, newest (highest update) first."""
    d = Path(save_dir)
    found = [(int(m.group(2)), p) for p in d.glob("checkpoint_*_*.pt") if (m := _UPDATE_RE.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def prune_checkpoints(save_dir: str | os.PathLike, keep_last: int, keep_last_epochs: int) -> None:
    """Delete all but the newest ``keep_last`` update checkpoints and ``keep_last_epochs`` epoch checkpoints."""
    for files, keep in ((update_checkpoints(save_dir), keep_last), (epoch_checkpoints(save_dir), keep_last_epochs)):
        if keep >= 0:
            for p in files[keep:]:
                p.unlink(missing_ok=True)


