"""Learning-rate schedules with fairseq semantics, as pure functions of the update count.

The lr for update ``n`` (0-based: ``n`` updates already done) is ``schedule(n)``; being stateless, a resumed run gets
the same lr at the same update without any scheduler state.
"""

from __future__ import annotations

import math


class InverseSqrtSchedule:
    """fairseq ``inverse_sqrt``: linear warmup ``warmup_init_lr -> lr`` over ``warmup_updates``, then ``lr *
    sqrt(warmup_updates / n)``."""

    def __init__(self, lr: float, warmup_updates: int, warmup_init_lr: float = -1.0):
        # fairseq: a negative warmup_init_lr means 0 with warmup, else the peak lr.
        if warmup_init_lr < 0:
            warmup_init_lr = 0.0 if warmup_updates > 0 else lr
        self.lr, self.warmup_updates, self.warmup_init_lr = lr, warmup_updates, warmup_init_lr
        self.lr_step = (lr - warmup_init_lr) / warmup_updates if warmup_updates > 0 else 0.0
        self.decay_factor = lr * math.sqrt(max(warmup_updates, 1))

    def __call__(self, num_updates: int) -> float:
        if num_updates < self.warmup_updates:
            return self.warmup_init_lr + num_updates * self.lr_step
        return self.decay_factor / math.sqrt(max(num_updates, 1))

    def state_dict(self) -> dict:
        return {"name": "inverse_sqrt", "lr": self.lr, "warmup_updates": self.warmup_updates,
                "warmup_init_lr": self.warmup_init_lr}


class CosineSchedule:
    """fairseq ``cosine`` (t_mult 1, no shrink): linear warmup ``warmup_init_lr -> lr``, then ``min_lr + (lr -
    min_lr) * (1 + cos(pi * t / period)) / 2`` restarting every ``period`` updates (HAT: period = max_update -
    warmup_updates, so one half-cosine to ``min_lr``)."""

    def __init__(self, lr: float, warmup_updates: int, warmup_init_lr: float, min_lr: float, period_updates: int):
        if period_updates <= 0:
            raise ValueError("cosine schedule needs a positive period")
        if warmup_init_lr < 0:
            warmup_init_lr = min_lr
        self.lr, self.min_lr, self.warmup_updates, self.warmup_init_lr = lr, min_lr, warmup_updates, warmup_init_lr
        self.period = period_updates
        self.lr_step = (lr - warmup_init_lr) / warmup_updates if warmup_updates > 0 else 0.0

    def __call__(self, num_updates: int) -> float:
        if num_updates < self.warmup_updates:
            return self.warmup_init_lr + num_updates * self.lr_step
        t = num_updates - self.warmup_updates
        t_curr = t - self.period * (t // self.period)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * t_curr / self.period))

    def state_dict(self) -> dict:
        return {"name": "cosine", "lr": self.lr, "min_lr": self.min_lr, "warmup_updates": self.warmup_updates,
                "warmup_init_lr": self.warmup_init_lr, "period": self.period}


def build_schedule(cfg) -> InverseSqrtSchedule | CosineSchedule:
    """Schedule for a :class:`hat.train.config.TrainConfig`."""
    if cfg.lr_scheduler == "cosine":
        period = cfg.lr_period_updates if cfg.lr_period_updates > 0 else cfg.max_update - cfg.warmup_updates
        return CosineSchedule(cfg.lr, cfg.warmup_updates, cfg.warmup_init_lr, cfg.min_lr, period)
    return InverseSqrtSchedule(cfg.lr, cfg.warmup_updates, cfg.warmup_init_lr)
