"""Label-smoothed cross entropy, exactly fairseq's ``label_smoothed_cross_entropy`` criterion (0.12)."""

from __future__ import annotations

import torch


def label_smoothed_nll_loss(lprobs: torch.Tensor, target: torch.Tensor, epsilon: float,
                            ignore_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed label-smoothed loss and summed NLL over all non-ignored target tokens.

    Same formula as fairseq 0.12: the smoothing mass ``epsilon`` is spread over the ``V - 1`` wrong classes,
    ``loss = (1 - eps - eps_i) * nll + eps_i * sum_v(-lprobs_v)`` with ``eps_i = eps / (V - 1)``.

    Args:
        lprobs: log-probabilities ``[..., V]``.
        target: class ids ``[...]`` (same leading shape as ``lprobs``).
        epsilon: label smoothing (0 = plain NLL).
        ignore_index: target id contributing nothing (padding).

    Returns:
        ``(loss, nll_loss)``, 0-dim sums (natural log units).
    """
    if target.dim() == lprobs.dim() - 1:
        target = target.unsqueeze(-1)
    nll_loss = -lprobs.gather(dim=-1, index=target)
    smooth_loss = -lprobs.sum(dim=-1, keepdim=True)
    if ignore_index is not None:
        pad_mask = target.eq(ignore_index)
        nll_loss = nll_loss.masked_fill(pad_mask, 0.0)
        smooth_loss = smooth_loss.masked_fill(pad_mask, 0.0)
    nll_loss = nll_loss.sum()
    smooth_loss = smooth_loss.sum()
    eps_i = epsilon / (lprobs.size(-1) - 1)
    loss = (1.0 - epsilon - eps_i) * nll_loss + eps_i * smooth_loss
    return loss, nll_loss


def compute_loss(model, net_output, target: torch.Tensor, epsilon: float,
                 padding_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """fairseq's ``LabelSmoothedCrossEntropyCriterion.compute_loss``: log-softmax in fp32, pad ignored, sums."""
    lprobs = model.get_normalized_probs(net_output, log_probs=True)
    if lprobs.dtype != torch.float32:
        lprobs = lprobs.float()
    return label_smoothed_nll_loss(lprobs.reshape(-1, lprobs.size(-1)), target.reshape(-1), epsilon,
                                   ignore_index=padding_idx)
