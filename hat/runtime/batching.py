"""Batching for translation, numpy only: fairseq-generate's sentence order and left-padded source collation."""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np

from hat.runtime.beam_search import Hypothesis


def collate_source(samples: Sequence, pad: int = 1, left_pad: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Pad source token sequences (each ending with EOS) into ``[B, S]`` int64, left-padded like fairseq's collate.

    Returns:
        (src_tokens ``[B, S]``, src_lengths ``[B]``), int64 arrays.
    """
    seqs = [np.asarray(s, dtype=np.int64) for s in samples]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    width = int(lengths.max()) if len(seqs) else 0
    out = np.full((len(seqs), width), pad, dtype=np.int64)
    for i, s in enumerate(seqs):
        if left_pad:
            out[i, width - len(s):] = s
        else:
            out[i, :len(s)] = s
    return out, lengths


def generation_order(src_sizes: Sequence[int], tgt_sizes: Optional[Sequence[int]] = None) -> np.ndarray:
    """fairseq ``LanguagePairDataset.ordered_indices`` without shuffling: by target size, then source size
    (stable sorts), so batches and their padding match ``fairseq-generate``."""
    idx = np.arange(len(src_sizes))
    if tgt_sizes is not None:
        idx = idx[np.argsort(np.asarray(tgt_sizes)[idx], kind="mergesort")]
    return idx[np.argsort(np.asarray(src_sizes)[idx], kind="mergesort")]


def iter_batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive chunks of ``order`` of at most ``batch_size`` ids."""
    for i in range(0, len(order), batch_size):
        yield order[i:i + batch_size]


def translate_dataset(generator, sources: Sequence, batch_size: int = 16, tgt_sizes: Optional[Sequence[int]] = None,
                      pad: int = 1, progress: bool = False) -> list[Hypothesis]:
    """Translate every source sentence and return the best hypothesis per sentence, in input order.

    Args:
        generator: anything with ``generate(src_tokens, src_lengths) -> list[list[Hypothesis]]`` taking int64 numpy
            arrays (:class:`hat.generate.SequenceGenerator`, :class:`hat.runtime.OnnxTranslator`).
        sources: token id sequences (lists, numpy arrays or tensors), each ending with EOS.
        batch_size: sentences per batch.
        tgt_sizes: target lengths, only to reproduce fairseq-generate's batch composition.
        pad: padding id.
        progress: show a tqdm bar.
    """
    sizes = [len(s) for s in sources]
    order = generation_order(sizes, tgt_sizes)
    best: list[Optional[Hypothesis]] = [None] * len(sources)
    batches = list(iter_batches(order, batch_size))
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, desc="translate", unit="batch")
    for ids in batches:
        src_tokens, src_lengths = collate_source([sources[i] for i in ids], pad=pad)
        hypos = generator.generate(src_tokens, src_lengths)
        for i, h in zip(ids, hypos):
            best[i] = h[0]
    return best  # type: ignore[return-value]
