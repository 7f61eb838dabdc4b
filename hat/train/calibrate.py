"""CPU time per update of a training recipe, so that recipes compared with each other get equal CPU time."""

from __future__ import annotations

import statistics
import time

from hat.train.config import TrainConfig


def cpu_seconds_per_update(cfg: TrainConfig, updates: int = 10, warmup: int = 2) -> dict:
    """Process CPU seconds of ``updates`` updates of ``cfg`` (after ``warmup``), on the first epoch's batches in
    order, so two recipes are timed on the same batches. Process time, not wall time: robust to other processes on
    the machine. Nothing is saved.

    Returns:
        ``{"cpu_seconds_per_update": mean, "samples": [seconds, ...]}``.
    """
    from hat.train.trainer import Trainer
    t = Trainer(cfg, progress=False)
    try:
        batches = t.epoch_batches(1)
        times = []
        for i in range(updates + warmup):
            t0 = time.process_time()
            t.train_step([t.train_data.batch(batches[i])])
            if i >= warmup:
                times.append(time.process_time() - t0)
    finally:
        t.close()
    return {"cpu_seconds_per_update": statistics.fmean(times), "samples": times}


def updates_for_cpu_time(configs: dict[str, TrainConfig], cpu_minutes: float, timed_updates: int = 10) -> dict:
    """Per recipe (``{name: TrainConfig}``): :func:`cpu_seconds_per_update` and the ``updates`` that fill
    ``cpu_minutes`` of CPU time, so recipes compared with each other get equal CPU time."""
    out = {name: cpu_seconds_per_update(cfg, timed_updates) for name, cfg in configs.items()}
    for m in out.values():
        m["updates"] = max(1, int(cpu_minutes * 60 / m["cpu_seconds_per_update"]))
    return out
