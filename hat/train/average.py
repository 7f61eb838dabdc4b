"""Checkpoint averaging with fairseq's semantics (``scripts/average_checkpoints.py``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Sequence

import torch

from hat.errors import HatError
from hat.checkpoints import load_checkpoint

_EPOCH_RE = re.compile(r"^checkpoint(\d+)\.pt$")
_UPDATE_RE = re.compile(r"^checkpoint_\d+_(\d+)\.pt$")


def last_n_checkpoints(directory: str | os.PathLike, n: int, by_update: bool = False,
                       upper_bound: Optional[int] = None) -> list[Path]:
    """The ``n`` newest ``checkpoint<epoch>.pt`` (or ``checkpoint_<epoch>_<update>.pt``) files, newest first.

    Raises:
        HatError: not a directory, ``n < 1``, or fewer than ``n`` matching files (as fairseq, which asserts).
    """
    d = Path(directory)
    if not d.is_dir():
        raise HatError(f"{d}: not a directory")
    if n < 1:
        raise HatError(f"number of checkpoints to average must be >= 1, got {n}")
    pat = _UPDATE_RE if by_update else _EPOCH_RE
    found = []
    for p in d.iterdir():
        m = pat.match(p.name)
        if m and (upper_bound is None or int(m.group(1)) <= upper_bound):
            found.append((int(m.group(1)), p))
    if len(found) < n:
        kind = "checkpoint_<epoch>_<update>.pt" if by_update else "checkpoint<epoch>.pt"
        raise HatError(f"{d}: found {len(found)} {kind} files, need {n}")
    return [p for _, p in sorted(found, reverse=True)[:n]]


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> dict:
    """Average the ``model`` state dicts of ``paths`` (accumulated in float64, cast back to each tensor's dtype).

    Returns the last checkpoint's dict (metadata of the newest, as fairseq) with the averaged ``model``; the
    optimizer state is dropped (it does not average meaningfully), so the result is for inference/fine-tuning.

    Raises:
        HatError: no paths, unreadable files, or checkpoints with different parameter names/shapes.
    """
    if not paths:
        raise HatError("no checkpoints to average")
    new_state: Optional[dict] = None
    sums: dict[str, torch.Tensor] = {}
    keys = None
    for path in paths:
        ck = load_checkpoint(path)
        if "model" not in ck:
            raise HatError(f"{path}: no 'model' state dict")
        model = ck["model"]
        if new_state is None:
            new_state = ck
        if keys is None:
            keys = list(model)
        elif list(model) != keys:
            raise HatError(f"{path}: parameters differ from {paths[0]} (different model?)")
        for k, v in model.items():
            if not isinstance(v, torch.Tensor):
                continue
            if k in sums and sums[k].shape != v.shape:
                raise HatError(f"{path}: {k} has shape {tuple(v.shape)}, {paths[0]} has {tuple(sums[k].shape)}")
            # fairseq averages floating tensors; integer buffers (counts) are summed and divided too, like fairseq.
            sums[k] = sums[k] + v.double() if k in sums else v.double().clone()
    assert new_state is not None
    avg = {}
    for k, v in new_state["model"].items():
        if k in sums:
            t = sums[k] / len(paths)
            avg[k] = t.to(v.dtype) if v.is_floating_point() else torch.div(sums[k], len(paths),
                                                                          rounding_mode="floor").to(v.dtype)
        else:
            avg[k] = v
    out = dict(new_state)
    out["model"] = avg
    for k in ("optimizer", "scaler"):
        out.pop(k, None)
    out["averaged_from"] = [str(p) for p in paths]
    return out
