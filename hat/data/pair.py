"""Language-pair dataset, fairseq-identical collation, token-bucketed batching and split loading."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

from hat.data.dictionary import Dictionary
from hat.data.indexed import MMapIndexedDataset, dataset_exists
from hat.errors import HatError


def collate_tokens(
    values: Sequence[torch.Tensor],
    pad_idx: int,
    eos_idx: Optional[int] = None,
    left_pad: bool = False,
    move_eos_to_beginning: bool = False,
) -> torch.Tensor:
    """Stack 1-D tensors into a padded ``[B, max_len]`` tensor (fairseq ``data_utils.collate_tokens``).

    With ``move_eos_to_beginning`` each row becomes ``[eos, x_0, ..., x_{n-2}]`` (teacher-forcing input).
    """
    size = max(v.size(0) for v in values)
    res = values[0].new_full((len(values), size), pad_idx)
    for i, v in enumerate(values):
        dst = res[i][size - len(v):] if left_pad else res[i][: len(v)]
        if move_eos_to_beginning:
            if len(v) == 0:
                continue
            dst[0] = v[-1] if eos_idx is None else eos_idx
            dst[1:] = v[:-1]
        else:
            dst.copy_(v)
    return res


def collate(
    samples: Sequence[dict],
    pad_idx: int = 1,
    eos_idx: int = 2,
    left_pad_source: bool = True,
    left_pad_target: bool = False,
) -> dict:
    """Collate ``{"id", "source", "target"}`` samples into a fairseq batch.

    Identical to fairseq's ``language_pair_dataset.collate`` (input feeding on): rows are sorted by source length
    (non-pad tokens) descending, stably, so equal lengths keep their input order.

    Returns:
        ``{"id": [B], "nsentences": int, "ntokens": int (target tokens, or source tokens without targets),
        "net_input": {"src_tokens": [B,S], "src_lengths": [B], "prev_output_tokens": [B,T]}, "target": [B,T]}``;
        ``{}`` for no samples. Without targets ``target`` is None and ``prev_output_tokens`` is absent.
    """
    if len(samples) == 0:
        return {}
    ids = torch.tensor([int(s["id"]) for s in samples], dtype=torch.long)
    src_tokens = collate_tokens([s["source"] for s in samples], pad_idx, eos_idx, left_pad=left_pad_source)
    src_lengths = torch.tensor([int(s["source"].ne(pad_idx).sum()) for s in samples], dtype=torch.long)
    src_lengths, sort_order = src_lengths.sort(descending=True, stable=True)
    ids = ids.index_select(0, sort_order)
    src_tokens = src_tokens.index_select(0, sort_order)
    net_input = {"src_tokens": src_tokens, "src_lengths": src_lengths}
    target = None
    if samples[0].get("target") is not None:
        tgts = [s["target"] for s in samples]
        target = collate_tokens(tgts, pad_idx, eos_idx, left_pad=left_pad_target).index_select(0, sort_order)
        ntokens = int(sum(int(t.ne(pad_idx).sum()) for t in tgts))
        prev = collate_tokens(tgts, pad_idx, eos_idx, left_pad=left_pad_target, move_eos_to_beginning=True)
        net_input["prev_output_tokens"] = prev.index_select(0, sort_order)
    else:
        ntokens = int(src_lengths.sum())
    return {"id": ids, "nsentences": len(samples), "ntokens": ntokens, "net_input": net_input, "target": target}


class LanguagePairDataset:
    """Pairs of source/target token sequences.

    Args:
        src: indexable of 1-D int64 tensors with a ``sizes`` array (e.g. :class:`MMapIndexedDataset`).
        tgt: same for the target side, or None (source only, e.g. for generation from raw input).
        src_dict: source :class:`Dictionary`.
        tgt_dict: target :class:`Dictionary` (None when ``tgt`` is None).
        left_pad_source: left-pad sources in batches (fairseq default True).
        left_pad_target: left-pad targets (fairseq default False).
    """

    def __init__(
        self,
        src,
        tgt,
        src_dict: Dictionary,
        tgt_dict: Optional[Dictionary] = None,
        left_pad_source: bool = True,
        left_pad_target: bool = False,
    ) -> None:
        if tgt is not None and len(src) != len(tgt):
            raise HatError(f"source and target have different numbers of sentences ({len(src)} vs {len(tgt)})")
        if tgt_dict is not None and (src_dict.pad() != tgt_dict.pad() or src_dict.eos() != tgt_dict.eos()):
            raise HatError("source and target dictionaries disagree on pad/eos indices")
        self.src, self.tgt = src, tgt
        self.src_dict, self.tgt_dict = src_dict, tgt_dict if tgt_dict is not None else src_dict
        self.left_pad_source, self.left_pad_target = left_pad_source, left_pad_target
        self.src_sizes = np.asarray(src.sizes, dtype=np.int64)
        self.tgt_sizes = np.asarray(tgt.sizes, dtype=np.int64) if tgt is not None else None

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, index: int) -> dict:
        return {
            "id": int(index),
            "source": self.src[index],
            "target": self.tgt[index] if self.tgt is not None else None,
        }

    def num_tokens_vec(self) -> np.ndarray:
        """Per example ``max(src_len, tgt_len)`` (fairseq's ``num_tokens``), int64."""
        if self.tgt_sizes is None:
            return self.src_sizes.copy()
        return np.maximum(self.src_sizes, self.tgt_sizes)

    def num_tokens(self, index: int) -> int:
        """``max(src_len, tgt_len)`` of one example."""
        if self.tgt_sizes is None:
            return int(self.src_sizes[index])
        return int(max(self.src_sizes[index], self.tgt_sizes[index]))

    def collater(self, samples: Sequence[dict]) -> dict:
        """:func:`collate` with this dataset's pad/eos and padding sides."""
        return collate(samples, self.src_dict.pad(), self.src_dict.eos(), self.left_pad_source, self.left_pad_target)

    def batch(self, indices: Sequence[int]) -> dict:
        """Collate the examples ``indices`` (e.g. one list from :func:`batch_by_tokens`)."""
        return self.collater([self[int(i)] for i in indices])


def _split_prefix(data_dir: Path, split: str, src: str, tgt: str, lang: str) -> Optional[Path]:
    for a, b in ((src, tgt), (tgt, src)):  # fairseq also accepts the reverse-direction file names
        p = data_dir / f"{split}.{a}-{b}.{lang}"
        if dataset_exists(p):
            return p
    return None


def load_split(
    data_dir: Union[str, os.PathLike],
    split: str,
    src: str,
    tgt: str,
    left_pad_source: bool = True,
    left_pad_target: bool = False,
) -> LanguagePairDataset:
    """Load a binarized split in fairseq's layout (``{split}.{src}-{tgt}.{lang}.bin/.idx``, ``dict.{lang}.txt``).

    Args:
        data_dir: the ``data-bin`` directory (``hat-preprocess`` or ``fairseq-preprocess`` output).
        split: ``train``, ``valid``, ``test``, ...
        src: source language code (``de``).
        tgt: target language code (``en``).

    Raises:
        HatError: missing directory/files, or a dictionary smaller than the largest token id in the data.
    """
    d = Path(data_dir)
    if not d.is_dir():
        raise HatError(f"{d}: data directory not found (run hat-preprocess first)")
    dicts = {}
    for lang in (src, tgt):
        p = d / f"dict.{lang}.txt"
        if not p.is_file():
            raise HatError(f"{p}: dictionary not found in data directory")
        dicts[lang] = Dictionary.load(p)
    datasets = {}
    for lang in (src, tgt):
        prefix = _split_prefix(d, split, src, tgt, lang)
        if prefix is None:
            raise HatError(f"{d}: no split '{split}' for {src}-{tgt} (expected {split}.{src}-{tgt}.{lang}.bin/.idx)")
        ds = MMapIndexedDataset(prefix)
        if ds.max_token_id >= len(dicts[lang]):
            raise HatError(
                f"{prefix}.bin: token id {ds.max_token_id} >= dictionary size {len(dicts[lang])} "
                f"(dict.{lang}.txt does not belong to this data)"
            )
        datasets[lang] = ds
    return LanguagePairDataset(datasets[src], datasets[tgt], dicts[src], dicts[tgt], left_pad_source, left_pad_target)


def batch_by_tokens(
    dataset: LanguagePairDataset,
    max_tokens: Optional[int],
    max_sentences: Optional[int] = None,
    seed: int = 1,
    epoch: int = 1,
    shuffle: bool = True,
    num_shards: int = 1,
    shard_id: int = 0,
    max_positions: Optional[tuple[int, int]] = None,
    skip_invalid: bool = True,
) -> list[list[int]]:
    """Group example indices into batches of similar length, as fairseq's ``batch_by_size``.

    Order: with ``shuffle`` the indices are first permuted (so equal lengths mix), then stably sorted by target
    length and then by source length (fairseq's ``ordered_indices``: source is the primary key). Batches are filled
    greedily while ``len(batch) * max(num_tokens) <= max_tokens`` (padded size, ``num_tokens = max(src, tgt)``)
    and ``len(batch) <= max_sentences``. With ``shuffle`` the batch order is then permuted. All randomness comes
    from ``numpy.random.default_rng([seed, epoch])``: same arguments, same batches.

    Sharding (DDP): batches ``shard_id::num_shards``; when the count is not divisible, the first batches are
    repeated at the end so every shard gets the same number of (non-empty) batches.

    Args:
        dataset: a :class:`LanguagePairDataset`.
        max_tokens: padded-token budget per batch (None: only ``max_sentences`` limits).
        max_sentences: sentences per batch limit (None: unlimited).
        seed: base seed.
        epoch: epoch number (1-based in fairseq; any int works).
        shuffle: shuffle ties and batch order (False: deterministic length order, for validation).
        num_shards: number of data-parallel workers.
        shard_id: this worker's rank in ``[0, num_shards)``.
        max_positions: ``(max_source_len, max_target_len)``; longer examples are invalid.
        skip_invalid: drop invalid examples (longer than ``max_positions`` or ``max_tokens``) as fairseq does
            for training; False raises HatError naming the first one.

    Returns:
        A list of batches, each a list of example indices.
    """
    _check_batching(max_tokens, max_sentences, num_shards, shard_id)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF])
    indices = _ordered_indices(dataset, rng, shuffle)
    num_tokens = dataset.num_tokens_vec()
    invalid = _invalid_mask(dataset, num_tokens, max_tokens, max_positions, skip_invalid)
    if invalid is not None:
        indices = indices[~invalid[indices]]
    batches = _fill_batches(indices, num_tokens, max_tokens, max_sentences)
    if shuffle:
        order = rng.permutation(len(batches))
        batches = [batches[j] for j in order]
    return _shard(batches, num_shards, shard_id)


def _check_batching(max_tokens: Optional[int], max_sentences: Optional[int], num_shards: int, shard_id: int) -> None:
    if max_tokens is None and max_sentences is None:
        raise HatError("batch_by_tokens: give max_tokens and/or max_sentences")
    if max_tokens is not None and max_tokens <= 0:
        raise HatError(f"batch_by_tokens: max_tokens must be positive, got {max_tokens}")
    if max_sentences is not None and max_sentences <= 0:
        raise HatError(f"batch_by_tokens: max_sentences must be positive, got {max_sentences}")
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise HatError(f"batch_by_tokens: bad shard {shard_id} of {num_shards}")


def _ordered_indices(dataset: LanguagePairDataset, rng: np.random.Generator, shuffle: bool) -> np.ndarray:
    """fairseq's ``ordered_indices``: (shuffled,) then stably by target length, then by source length."""
    n = len(dataset)
    indices = rng.permutation(n).astype(np.int64) if shuffle else np.arange(n, dtype=np.int64)
    if dataset.tgt_sizes is not None:
        indices = indices[np.argsort(dataset.tgt_sizes[indices], kind="mergesort")]
    return indices[np.argsort(dataset.src_sizes[indices], kind="mergesort")]


def _invalid_mask(
    dataset: LanguagePairDataset,
    num_tokens: np.ndarray,
    max_tokens: Optional[int],
    max_positions: Optional[tuple[int, int]],
    skip_invalid: bool,
) -> Optional[np.ndarray]:
    """Examples over ``max_tokens``/``max_positions`` (None when there are none); raises unless ``skip_invalid``."""
    src_sizes, tgt_sizes = dataset.src_sizes, dataset.tgt_sizes
    invalid = np.zeros(len(dataset), dtype=bool)
    if max_tokens is not None:
        invalid |= num_tokens > max_tokens
    if max_positions is not None:
        invalid |= src_sizes > max_positions[0]
        if tgt_sizes is not None:
            invalid |= tgt_sizes > max_positions[1]
    if not invalid.any():
        return None
    if not skip_invalid:
        bad = int(np.flatnonzero(invalid)[0])
        raise HatError(
            f"example {bad} (source {src_sizes[bad]} / target "
            f"{tgt_sizes[bad] if tgt_sizes is not None else '-'} tokens) exceeds max_tokens={max_tokens} "
            f"or max_positions={max_positions}"
        )
    return invalid


def _fill_batches(
    indices: np.ndarray, num_tokens: np.ndarray, max_tokens: Optional[int], max_sentences: Optional[int]
) -> list[list[int]]:
    """Greedy fill while ``len(batch) * longest <= max_tokens`` and ``len(batch) <= max_sentences``."""
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for i in indices.tolist():
        ntok = int(num_tokens[i])
        new_longest = max(longest, ntok)
        full = (max_sentences is not None and len(batch) + 1 > max_sentences) or (
            max_tokens is not None and (len(batch) + 1) * new_longest > max_tokens
        )
        if full and batch:
            batches.append(batch)
            batch, new_longest = [], ntok
        batch.append(i)
        longest = new_longest
    if batch:
        batches.append(batch)
    return batches


def _shard(batches: list[list[int]], num_shards: int, shard_id: int) -> list[list[int]]:
    """This worker's batches; the first ones repeat so every shard gets the same count."""
    if num_shards > 1 and batches:
        per_shard = -(-len(batches) // num_shards)
        total = per_shard * num_shards
        batches = [batches[j % len(batches)] for j in range(total)]
        batches = batches[shard_id::num_shards]
    return batches
