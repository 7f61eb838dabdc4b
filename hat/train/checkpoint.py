"""Checkpoint files: atomic writes, ``torch.load(weights_only=True)``-safe contents, model reconstruction.

A checkpoint is a dict (see docs/design.md) holding only tensors, dicts, lists, tuples, ints, floats, strings, bools
and None:

``model`` (state dict), ``space`` (``SearchSpace.to_dict()``), ``model_config`` (``asdict(ModelConfig)``),
``subnet`` (``SubnetConfig.to_dict()`` for a static Transformer, None for the SuperTransformer), ``optimizer``,
``scheduler``, ``update``, ``epoch``, ``rng``, ``train_config`` and, from the trainer, ``iterator`` (``{epoch,
position, end_of_epoch}``: where in the epoch's batch list to resume), ``best_valid_loss``, ``scaler``, ``version``.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Optional

import torch

from hat.errors import HatError
from hat.io import atomic_path, save_torch

CHECKPOINT_VERSION = 1


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
    """``Type: first line`` of a ``torch.load`` failure (an empty file raises ``EOFError`` with no message)."""
    lines = str(e).strip().splitlines()
    detail = lines[0][:200] if lines else ("empty or truncated file" if isinstance(e, EOFError) else "no details")
    return f"{type(e).__name__}: {detail}"


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


# ----- models -----
def model_from_metadata(space_dict: dict, model_config: dict, subnet: Optional[dict]):
    """SuperTransformer (``subnet`` None) or static Transformer from checkpoint metadata (weights not loaded)."""
    from hat.config import from_dict
    from hat.nn import ModelConfig
    from hat.space import SearchSpace, SubnetConfig
    from hat.train.build import network

    space = from_dict(SearchSpace, space_dict, "checkpoint space")
    mcfg = from_dict(ModelConfig, model_config, "checkpoint model_config")
    return network(space, mcfg, None if subnet is None else SubnetConfig.from_dict(subnet, "checkpoint subnet"))


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
    model = model_from_metadata(ckpt["space"], ckpt["model_config"], ckpt.get("subnet"))
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        raise HatError(f"{p}: weights do not fit the model described in the checkpoint "
                       f"({' '.join(str(e).split())[:200]})") from None
    return model.to(map_location).eval(), ckpt
