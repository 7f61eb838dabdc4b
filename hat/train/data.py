"""Training data: binarize the raw corpus of a task config when its data directory is not built yet."""

from __future__ import annotations

from pathlib import Path

from hat.errors import HatError
from hat.train.config import TrainConfig

__all__ = ["ensure_data"]


def ensure_data(cfg: TrainConfig) -> None:
    """Binarize ``cfg.raw_dir`` into ``cfg.data`` with joint BPE unless ``cfg.data`` already has a dictionary.

    Raises:
        HatError: ``cfg.data`` missing and no (existing) ``raw_dir`` to build it from.
    """
    data = Path(cfg.data)
    if (data / f"dict.{cfg.src_lang}.txt").is_file():
        return
    if not cfg.raw_dir:
        raise HatError(f"data directory {data} has no dict.{cfg.src_lang}.txt (run hat-preprocess, or set raw_dir)")
    if not Path(cfg.raw_dir).is_dir():
        raise HatError(f"data directory {data} is missing and raw_dir {cfg.raw_dir} does not exist "
                       f"(pass --data DIR or --raw-dir DIR)")
    from hat.data.preprocess import PreprocessSettings, preprocess
    raw = Path(cfg.raw_dir)
    preprocess(PreprocessSettings(
        src=cfg.src_lang, tgt=cfg.tgt_lang, trainpref=str(raw / cfg.raw_trainpref), destdir=str(data),
        validpref=str(raw / cfg.raw_validpref), testpref=str(raw / cfg.raw_testpref) if cfg.raw_testpref else None,
        bpe="sentencepiece", bpe_vocab=cfg.bpe_vocab_size, joined_dictionary=True, seed=cfg.seed,
        threads=max(1, cfg.threads)))
