"""SuperTransformer / SubTransformer training, checkpoints and validation loss.

Public API (see docs/design.md, ``hat.train``):

- :class:`~hat.train.config.TrainConfig`, :func:`~hat.train.config.load_train_config`
- :class:`~hat.train.trainer.Trainer`, :func:`~hat.train.trainer.train`, :class:`~hat.train.trainer.TrainResult`
- factories :func:`~hat.train.build.build_model`, :func:`~hat.train.build.build_optimizer`; resume
  :func:`~hat.train.resume.restore`; logs in :mod:`hat.train.loggers`; :func:`~hat.train.data.ensure_data`
- :func:`~hat.checkpoints.load_model`, :func:`~hat.checkpoints.load_checkpoint`,
  :func:`~hat.checkpoints.save_checkpoint`
- :func:`~hat.train.evaluate.valid_loss`, :func:`~hat.train.evaluate.prepare_batches`
- :func:`~hat.train.loss.label_smoothed_nll_loss`; schedules in :mod:`hat.train.lr`;
  :func:`~hat.train.average.average_checkpoints`

Submodules are imported lazily by the names above so ``import hat.train`` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "config", "load_train_config": "config",
    "Trainer": "trainer", "train": "trainer", "TrainResult": "trainer",
    "load_model": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "valid_loss": "evaluate", "prepare_batches": "evaluate",
    "label_smoothed_nll_loss": "loss", "average_checkpoints": "average",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"hat.train.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'hat.train' has no attribute {name!r}")
