"""Which SubTransformers one SuperTransformer update trains, and the losses whose gradients it accumulates.

Two sampling rules (``TrainConfig.subnet_sampling``):

* ``random`` (HAT, Wang et al. 2020, Sec. 3.2): one SubTransformer sampled uniformly from the space per update.
* ``sandwich`` (Yu & Huang 2019, slimmable networks; BigNAS, Yu et al. 2020): the largest, the smallest and
  ``sandwich_random`` sampled SubTransformers per update; their gradients are summed (each one's loss normalized
  by the update's target tokens, as fairseq does for one model), then one optimizer step.

In-place distillation (``TrainConfig.inplace_distill`` = w > 0, sandwich only; BigNAS): the largest SubTransformer
is trained on the labels; every other SubTransformer of the update minimizes
``(1 - w) * label-smoothed CE + w * CE(teacher, student)``, where the teacher distribution is the largest
SubTransformer's output on the same batch, *detached*: no gradient flows into the teacher through the target.

Determinism: the SubTransformers of update ``n`` come from ``random.Random(stable_seed("subnet", seed, n))`` alone,
so a resumed run trains exactly the same ones (the trainer seeds dropout per update as well).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Optional, Sequence

import torch

from hat.train.evaluate import move_batch
from hat.train.loss import label_smoothed_nll_loss

SAMPLING_MODES = ("random", "sandwich")


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from ``parts`` that is the same in every process and Python version (no ``hash()`` salt)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def subnet_rng(seed: int, update: int) -> random.Random:
    """The RNG that picks update ``update``'s SubTransformer(s) (identical on every rank and after resume)."""
    return random.Random(stable_seed("subnet", seed, update))


def update_subnets(space, seed: int, update: int, sampling: str = "random",
                   n_random: int = 1) -> list[tuple[str, Any]]:
    """The ``(role, SubnetConfig)`` pairs trained at ``update``, in training order.

    Args:
        space: the :class:`~hat.space.SearchSpace`.
        seed: the run's seed.
        update: the update number (0-based).
        sampling: ``"random"`` (one sampled SubTransformer, role ``"random"``) or ``"sandwich"`` (``"largest"``,
            ``"smallest"``, then ``n_random`` sampled ones with role ``"random"``).
        n_random: sandwich only: sampled SubTransformers besides the largest and the smallest.

    Returns:
        the list; with ``sandwich`` the largest comes first (it is the distillation teacher).
    """
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"subnet sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
    rng = subnet_rng(seed, update)
    if sampling == "random":
        return [("random", space.sample(rng))]
    return ([("largest", space.largest()), ("smallest", space.smallest())]
            + [("random", space.sample(rng)) for _ in range(n_random)])


def distill_loss(lprobs: torch.Tensor, teacher_lprobs: torch.Tensor, target: torch.Tensor,
                 padding_idx: Optional[int]) -> torch.Tensor:
    """Summed cross-entropy from the teacher's distribution to the student's over non-pad target positions:
    ``sum_t sum_v -q_t(v) * log p_t(v)`` (= KL(q || p) + H(q); H(q) has no gradient).

    Args:
        lprobs: the student's log-probabilities ``[..., V]``.
        teacher_lprobs: the teacher's log-probabilities, same shape; detached here, so the loss never moves the
            teacher through its target.
        target: ``[...]`` target ids (positions whose id is ``padding_idx`` contribute nothing).
        padding_idx: pad id (None: no position is ignored).

    Returns:
        a 0-dim sum (nats).
    """
    q = teacher_lprobs.detach().float().exp()
    ce = -(q * lprobs.float()).sum(dim=-1)
    if padding_idx is not None:
        ce = ce.masked_fill(target.eq(padding_idx), 0.0)
    return ce.sum()


# The positions of :func:`accumulate_gradients`' stats vector (one float64 tensor, so one all_reduce sums them all).
STATS = ("loss", "nll_loss", "ntokens", "nsentences", "distill_loss")
LOSS, NLL, NTOKENS, NSENTENCES, DISTILL = range(len(STATS))


def accumulate_gradients(model, samples: Sequence[dict], subnets: Sequence[tuple[str, Any]], *,
                         label_smoothing: float, padding_idx: int, device: torch.device,
                         inplace_distill: float = 0.0, amp_dtype: Optional[torch.dtype] = None,
                         scaler=None) -> torch.Tensor:
    """Forward and backward every batch of ``samples`` through every SubTransformer of ``subnets``; gradients of
    the summed losses accumulate in ``.grad`` (the caller zeroes them before and normalizes after).

    Per batch the SubTransformers run in order (the largest first under ``sandwich``), so only one teacher
    distribution is held at a time.

    Args:
        model: a SuperTransformer (``subnets`` roles/configs from :func:`update_subnets`), or a static Transformer
            with ``subnets == [("fixed", None)]``.
        samples: collated batches of one update (``update_freq`` of them).
        inplace_distill: weight ``w`` of the distillation term for every non-largest SubTransformer (0 = off).
        scaler: a ``GradScaler`` (fp16) or None.

    Returns:
        float64 ``[loss, nll_loss, ntokens, nsentences, distill_loss]``: ``loss`` and ``nll_loss`` are the
        label-smoothed / plain NLL sums on the labels, averaged over the update's SubTransformers (for logging:
        comparable to a one-SubTransformer update); ``ntokens``/``nsentences`` count each batch once;
        ``distill_loss`` is the summed distillation term of the students, averaged over them.
    """
    stats = torch.zeros(len(STATS), dtype=torch.float64, device=device)
    n_students = sum(1 for role, _ in subnets if role != "largest")
    for sample in samples:
        sample = move_batch(sample, device)
        net_input = sample["net_input"]
        target = sample["target"]
        teacher = None
        for role, sub in subnets:
            if sub is not None:
                model.set_active_subnet(sub)
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
                out = model(net_input["src_tokens"], net_input["src_lengths"], net_input["prev_output_tokens"])
            lprobs = model.get_normalized_probs(out, log_probs=True)
            if lprobs.dtype != torch.float32:
                lprobs = lprobs.float()
            lprobs = lprobs.reshape(-1, lprobs.size(-1))
            flat_target = target.reshape(-1)
            loss, nll = label_smoothed_nll_loss(lprobs, flat_target, label_smoothing, ignore_index=padding_idx)
            train_loss = loss
            if inplace_distill > 0:
                if role == "largest":
                    teacher = lprobs.detach()
                elif teacher is not None:
                    kd = distill_loss(lprobs, teacher, flat_target, padding_idx)
                    train_loss = (1.0 - inplace_distill) * loss + inplace_distill * kd
                    stats[DISTILL] += kd.detach().double()
            (scaler.scale(train_loss) if scaler is not None else train_loss).backward()
            stats[LOSS] += loss.detach().double()
            stats[NLL] += nll.detach().double()
        stats[NTOKENS] += float(sample["ntokens"])
        stats[NSENTENCES] += float(sample.get("nsentences", target.size(0)))
    stats[LOSS:NLL + 1] /= max(len(subnets), 1)
    stats[DISTILL] /= max(n_students, 1)
    return stats
