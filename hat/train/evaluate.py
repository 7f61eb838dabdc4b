"""Validation loss: teacher-forced NLL per target token (the search's fitness)."""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

import torch

from hat.train.loss import compute_loss


def move_batch(batch: dict, device: torch.device | str) -> dict:
    """A collated batch with every tensor moved to ``device`` (nested ``net_input`` included)."""
    def mv(v):
        if isinstance(v, torch.Tensor):
            return v.to(device, non_blocking=True)
        if isinstance(v, dict):
            return {k: mv(x) for k, x in v.items()}
        return v
    return mv(batch)


def prepare_batches(dataset, max_tokens: int = 4096, max_batches: int = 0,
                    device: torch.device | str = "cpu", num_shards: int = 1, shard_id: int = 0) -> list[dict]:
    """Collate ``dataset`` (a ``LanguagePairDataset``) once into batches of at most ``max_tokens`` tokens, in a fixed
    order, already on ``device``. Reuse the list across many :func:`valid_loss` calls (the search does).

    Args:
        max_batches: keep only the first N batches (0 = all); the subset is the same on every call.
    """
    from hat.data import batch_by_tokens

    batches = batch_by_tokens(dataset, max_tokens, seed=0, epoch=1, shuffle=False,
                              num_shards=num_shards, shard_id=shard_id)
    if max_batches:
        batches = batches[:max_batches]
    return [move_batch(dataset.batch(idx), device) for idx in batches]


def _model_device(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def valid_sums(model: torch.nn.Module, batches: Iterable[dict], label_smoothing: float = 0.0,
               padding_idx: Optional[int] = None, amp_dtype: Optional[torch.dtype] = None) -> tuple[float, float, int]:
    """``(loss_sum, nll_sum, ntokens)`` over ``batches`` (for sharded validation the caller all-reduces the sums)."""
    if padding_idx is None:
        padding_idx = getattr(getattr(model, "cfg", None), "padding_idx", 1)
    device = _model_device(model)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    nll_sum = torch.zeros((), dtype=torch.float64, device=device)
    ntokens = 0
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16,
                                                    enabled=amp_dtype is not None):
            for batch in batches:
                batch = move_batch(batch, device)
                net_input = batch["net_input"]
                out = model(net_input["src_tokens"], net_input["src_lengths"], net_input["prev_output_tokens"])
                loss, nll = compute_loss(model, out, batch["target"], label_smoothing, padding_idx)
                loss_sum += loss.double()
                nll_sum += nll.double()
                ntokens += int(batch["ntokens"]) if "ntokens" in batch else int(batch["target"].ne(padding_idx).sum())
    finally:
        model.train(was_training)
    return float(loss_sum), float(nll_sum), ntokens


def valid_loss(model: torch.nn.Module, dataset_or_batches: Any, max_tokens: int = 4096, max_batches: int = 0,
               label_smoothing: float = 0.0, amp_dtype: Optional[torch.dtype] = None) -> float:
    """Mean loss per target token (natural log), no grad, model in eval mode (its mode is restored after).

    Args:
        model: SuperTransformer (with the subnet to score set active) or Transformer.
        dataset_or_batches: a ``LanguagePairDataset`` (batched here with ``max_tokens``; pass a list from
            :func:`prepare_batches` instead when calling repeatedly), or an iterable of collated batch dicts.
        max_batches: score only the first N batches (0 = all).
        label_smoothing: 0 (default) gives plain NLL per token; > 0 the label-smoothed training loss per token.
        amp_dtype: e.g. ``torch.bfloat16`` to evaluate under autocast.

    Returns:
        loss per token in nats (``math.inf`` if there are no target tokens).
    """
    from hat.data import LanguagePairDataset

    if isinstance(dataset_or_batches, LanguagePairDataset):
        batches = prepare_batches(dataset_or_batches, max_tokens, max_batches, _model_device(model))
    else:
        batches = dataset_or_batches
        if max_batches:
            batches = list(batches)[:max_batches]
    loss_sum, nll_sum, ntokens = valid_sums(model, batches, label_smoothing, amp_dtype=amp_dtype)
    if ntokens == 0:
        return math.inf
    return (loss_sum if label_smoothing > 0 else nll_sum) / ntokens
