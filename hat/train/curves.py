"""Validation curves of a training's ``train_log.jsonl``, and whether they have flattened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def valid_rows(train_log: Path) -> list[dict]:
    """The validation records of a training's ``train_log.jsonl``, in order."""
    rows = [json.loads(x) for x in Path(train_log).read_text().splitlines() if x.strip()]
    return [r for r in rows if r.get("type") == "valid"]


def valid_curve(train_log: Path) -> list[tuple[int, float]]:
    """``[(update, validation NLL), ...]`` of a training's ``train_log.jsonl``."""
    return [(r["update"], r["nll_loss"]) for r in valid_rows(train_log)]


def updates_per_epoch(train_log: Path) -> int:
    """Updates in one epoch: the last update logged in epoch 1 (validation runs at every epoch's end)."""
    return max(r["update"] for r in valid_rows(train_log) if r.get("epoch") == 1)


def per_epoch_gain(curve: list, epoch_updates: int) -> float:
    """Relative NLL improvement per epoch between the last point and the latest point at least one epoch before it
    (a run that stopped mid-epoch adds an off-epoch point; measuring over >= 1 epoch keeps that from deciding)."""
    u1, b = curve[-1]
    earlier = [(u, v) for u, v in curve[:-1] if u <= u1 - epoch_updates] or curve[:1]
    u0, a = earlier[-1]
    return (a - b) / a * epoch_updates / max(1, u1 - u0)


def flattening_note(curve: list, flat_gain: float, epoch_updates: int, name: str = "Transformer-largest") -> str:
    """One line on whether a validation curve ``[(update, nll), ...]`` has flattened (improving by less than
    ``flat_gain`` per epoch of ``epoch_updates`` updates)."""
    if len(curve) < 2:
        return "validation curve: fewer than 2 points"
    gain = per_epoch_gain(curve, epoch_updates)
    verdict = "flattened" if gain < flat_gain else "NOT flattened: consider more updates before seeds 1-2"
    return (f"{name} validation NLL {curve[-1][1]:.3f} @ {curve[-1][0]} updates, "
            f"{100 * gain:.1f}% better per epoch: {verdict}")


def train_until_flat(train_log: Path, extend: Callable[[int], None], step: int, max_updates: int, flat_gain: float,
                     log: Callable[[str], None] = print) -> dict:
    """Extend a training by ``step`` updates at a time (``extend(total_updates)`` continues it) until its validation
    NLL improves by less than ``flat_gain`` per epoch, or ``max_updates`` is reached. Decided on validation loss only.

    Returns:
        ``{"updates", "flattened", "steps": [{"update", "valid_nll_loss", "gain_per_epoch"}], "curve", "rule"}``.
    """
    rule, seen = f"validation NLL better by < {flat_gain:g} per epoch", []
    while True:
        curve = valid_curve(train_log) if Path(train_log).is_file() else []
        n = curve[-1][0] if curve else 0  # a training validates at its last update
        gain = per_epoch_gain(curve, updates_per_epoch(train_log)) if len(curve) >= 2 else None
        if curve:
            seen.append({"update": n, "valid_nll_loss": curve[-1][1], "gain_per_epoch": gain})
            log(f"updates: NLL {curve[-1][1]:.3f} @ {n}, "
                f"{'-' if gain is None else format(100 * gain, '.2f')}% better per epoch (flat below "
                f"{100 * flat_gain:g}%)")
        flat = gain is not None and gain < flat_gain
        if flat or n >= max_updates:
            return {"updates": n, "flattened": flat, "steps": seen, "curve": curve, "rule": rule}
        extend(min(max_updates, n + step))
