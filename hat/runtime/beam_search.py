"""Backend-independent beam search in numpy, a line-by-line port of fairseq 0.12's ``SequenceGenerator._generate``.

The model is reached only through a step callback, so the PyTorch generator (:mod:`hat.generate`, incremental
state) and the ONNX runtime (:mod:`hat.runtime.onnx`, explicit K/V cache) share one search and produce identical
hypotheses given identical log-probabilities.

fairseq semantics kept exactly: ``max_len = min(int(max_len_a * src_len + max_len_b), max_len - 1)`` with ``src_len``
the padded batch width; pad is never selected; ``unk_penalty`` is subtracted from ``<unk>``; before ``min_len`` EOS is
forbidden and at ``max_len`` only EOS is allowed; step 0 expands only the first beam; each step takes the top
``2 * beam`` candidates of (cumulative score + log-prob) over beam x vocab, finalizes EOS candidates that rank within
the top ``beam`` (score = cumulative log-prob / (length incl. EOS) ** lenpen), continues with the best ``beam``
non-EOS candidates, and drops a sentence from the batch once it has ``beam`` finalized hypotheses.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

# step_fn(tokens[n, step + 1] int64, step, reorder[n] int64 | None, bias[V] float32, k) -> (values[n, k'], ids[n, k'])
# ``reorder`` (when not None) maps each new row to the row of the previous call whose state it continues; the callee
# must reorder its caches/encoder outputs with it *before* computing this step (rows may also be dropped). The callee
# returns, per row, the k' = min(k, V) best ``log_softmax(logits) + bias`` and their token ids, best first, ties by
# lower id (NaN log-probs count as -inf): a backend may compute them inside its graph (hat's ONNX step does), or
# from full log-probs with :func:`row_candidates`.
StepFn = Callable[[np.ndarray, int, Optional[np.ndarray], np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class Hypothesis:
    """One finished hypothesis (fairseq's finalized dict).

    Attributes:
        tokens: target token ids, ending with EOS.
        score: length-normalized sum of log-probs (natural log; fairseq-generate prints ``score / ln 2``).
        positional_scores: per-token log-probs, EOS included.
    """

    tokens: np.ndarray
    score: float
    positional_scores: np.ndarray


# Up to this k, top-k is k rounds of argmax (each a vectorized pass that returns the first maximum, i.e. ties by
# lower index): ~50x faster than np.argpartition for the k = 2 * beam <= 64 of beam search over a 10^4-word vocab.
ARGMAX_TOPK_MAX_K = 64


def topk_desc(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k (values descending; ties broken by lower index first, deterministically)."""
    n = x.shape[1]
    if k < n and k <= ARGMAX_TOPK_MAX_K:
        vals, idx = _topk_by_argmax(x, k)
        # A row that ran into -inf may pick a removed entry again: redo such rows exactly.
        _redo_rows(x, k, vals[:, -1] == -math.inf, vals, idx)
        return vals, idx
    return _topk_by_sort(x, k)


def _topk_by_argmax(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    work = np.array(x, copy=True)
    rows = np.arange(x.shape[0])
    idx = np.empty((x.shape[0], k), dtype=np.int64)
    vals = np.empty((x.shape[0], k), dtype=x.dtype)
    for j in range(k):
        a = work.argmax(axis=1)
        idx[:, j] = a
        vals[:, j] = work[rows, a]
        work[rows, a] = -math.inf
    return vals, idx


def _topk_by_sort(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[1]
    if k >= n:
        idx = np.argsort(-x, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(x, idx, 1), idx
    part = np.argpartition(-x, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(x, part, 1)
    # Order the k selected by (value desc, index asc).
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, 1)
    vals = np.take_along_axis(vals, order, 1)
    # argpartition picks arbitrary members of a tie at the k-th value; redo such rows with a full stable sort.
    kth = vals[:, -1:]
    _redo_rows(x, k, (x == kth).sum(1) > (vals == kth).sum(1), vals, idx)
    return vals, idx


def _redo_rows(x: np.ndarray, k: int, mask: np.ndarray, vals: np.ndarray, idx: np.ndarray) -> None:
    """Overwrite the ``mask`` rows of ``vals``/``idx`` with the exact top-k of a full stable sort (in place)."""
    if mask.any():
        rows = np.nonzero(mask)[0]
        full = np.argsort(-x[rows], axis=1, kind="stable")[:, :k]
        idx[rows] = full
        vals[rows] = np.take_along_axis(x[rows], full, 1)


def row_candidates(lprobs: np.ndarray, bias: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-row candidates a step function returns, from full log-probs ``[n, V]``: the ``min(k, V)`` best of
    ``lprobs + bias`` per row (NaN as -inf), best first, ties by lower id."""
    x = np.array(lprobs, dtype=np.float32, copy=True)
    x[np.isnan(x)] = -math.inf
    x += bias
    return topk_desc(x, min(k, x.shape[1]))


class BeamSearch:
    """fairseq beam search over a step callback.

    Args:
        beam_size: beam width (1 = greedy, the same as fairseq ``--beam 1``).
        pad, eos, unk: special token ids of the target dictionary.
        max_len_a, max_len_b: max target length ``a * src_len + b`` (fairseq defaults 0, 200).
        max_len: model limit (fairseq: ``max_decoder_positions()``); the effective bound is ``max_len - 1``.
        min_len: EOS is forbidden before this step (fairseq default 1).
        lenpen: length penalty; scores are divided by ``length ** lenpen``.
        unk_penalty: subtracted from the ``<unk>`` log-prob.
        normalize_scores: divide by length at all (fairseq ``--unnormalized`` turns it off).
    """

    def __init__(self, beam_size: int = 5, pad: int = 1, eos: int = 2, unk: int = 3, max_len_a: float = 0.0,
                 max_len_b: int = 200, max_len: int = 1024, min_len: int = 1, lenpen: float = 1.0,
                 unk_penalty: float = 0.0, normalize_scores: bool = True):
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        self.beam_size = beam_size
        self.pad, self.eos, self.unk = pad, eos, unk
        self.max_len_a, self.max_len_b, self.max_len = max_len_a, max_len_b, max_len
        self.min_len = min_len
        self.lenpen = lenpen
        self.unk_penalty = unk_penalty
        self.normalize_scores = normalize_scores

    def with_beam_size(self, beam_size: int) -> "BeamSearch":
        """A copy with another beam width (every other setting kept)."""
        other = copy.copy(self)
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        other.beam_size = beam_size
        return other

    def biases(self, vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What a step adds to the log-probs before its top-k (fairseq's masks): ``(normal, before min_len, at
        max_len)``: pad -inf, ``<unk>`` -``unk_penalty``; EOS -inf before ``min_len``; only EOS at ``max_len``."""
        normal = np.zeros(vocab, dtype=np.float32)
        normal[self.pad] = -math.inf
        if 0 <= self.unk < vocab:
            normal[self.unk] -= np.float32(self.unk_penalty)
        early = normal.copy()
        early[self.eos] = -math.inf
        last = np.full(vocab, -math.inf, dtype=np.float32)
        last[self.eos] = 0.0
        return normal, early, last

    def search(self, bsz: int, src_len: int, step_fn: StepFn, vocab: int) -> list[list[Hypothesis]]:
        """Run the search for ``bsz`` sentences whose padded source width is ``src_len``.

        The callee's state must already be expanded to ``bsz * beam_size`` rows (sentence-major: row
        ``i * beam + j`` is beam ``j`` of sentence ``i``); ``vocab`` is the target vocabulary's size.

        Returns:
            Per sentence, up to ``beam_size`` hypotheses sorted best first.
        """
        beam = self.beam_size
        max_len = min(int(self.max_len_a * src_len + self.max_len_b), self.max_len - 1)
        scores = np.zeros((bsz * beam, max_len + 1), dtype=np.float32)
        tokens = np.full((bsz * beam, max_len + 2), self.pad, dtype=np.int64)
        tokens[:, 0] = self.eos
        cands_to_ignore = np.zeros((bsz, beam), dtype=bool)
        finalized: list[list[Hypothesis]] = [[] for _ in range(bsz)]
        finished = [False] * bsz
        num_remaining = bsz
        cand_size = 2 * beam
        bbsz_offsets = (np.arange(bsz, dtype=np.int64) * beam)[:, None]
        cand_offsets = np.arange(cand_size, dtype=np.int64)
        reorder_state: Optional[np.ndarray] = None
        batch_idxs: Optional[np.ndarray] = None
        normal, early, last = self.biases(vocab)
        # built once per search and sliced per step (the batch only shrinks)
        beam_offsets = (np.arange(beam, dtype=np.int64) * vocab)[None, :, None]
        all_rows = np.arange(bsz)[:, None]  # rows as a column, for (row, column) fancy indexing

        for step in range(max_len + 1):
            if reorder_state is not None and batch_idxs is not None:
                # Rows of dropped sentences vanished: shift indices into the compacted previous batch.
                corr = batch_idxs - np.arange(batch_idxs.size)
                reorder_state = (reorder_state.reshape(-1, beam) + corr[:, None] * beam).reshape(-1)
            bias = last if step >= max_len else early if step < self.min_len else normal
            vals, ids = step_fn(tokens[:, :step + 1], step, reorder_state, bias, cand_size)

            # BeamSearch.step over each row's candidates: the best 2 x beam of (cumulative score + log-prob) over
            # beam x vocab are among the rows' own best 2 x beam (ties: lower beam x vocab index first)
            nb = 1 if step == 0 else beam  # all beams are identical at the start
            k = vals.shape[1]
            total = np.asarray(vals, dtype=np.float32).reshape(bsz, beam, k)[:, :nb]
            if step > 0:
                total = total + scores.reshape(bsz, beam, -1)[:, :, step - 1][:, :, None]
            flat_idx = (np.asarray(ids, dtype=np.int64).reshape(bsz, beam, k)[:, :nb]
                        + beam_offsets[:, :nb]).reshape(bsz, -1)
            total = total.reshape(bsz, -1)
            order = np.lexsort((flat_idx, -total), axis=1)[:, :min(cand_size, nb * vocab - 1)]
            rows = all_rows[:bsz]  # fancy indexing by (row, column): take_along_axis costs ~5x more
            cand_scores = total[rows, order]
            idx = flat_idx[rows, order]
            cand_beams = idx // vocab
            cand_indices = idx % vocab
            cand_bbsz_idx = cand_beams + bbsz_offsets

            eos_mask = (cand_indices == self.eos) & (cand_scores != -math.inf)
            top = eos_mask[:, :beam]
            top[cands_to_ignore] = False
            finalized_sents: list[int] = []
            if top.any():
                eos_bbsz_idx = cand_bbsz_idx[:, :beam][top]
                eos_scores = cand_scores[:, :beam][top]
                finalized_sents = self._finalize(step, eos_bbsz_idx, eos_scores, tokens, scores, finalized,
                                                 finished, max_len)
                num_remaining -= len(finalized_sents)
            if num_remaining == 0:
                break
            assert step < max_len, f"{step} < {max_len}"

            if finalized_sents:
                new_bsz = bsz - len(finalized_sents)
                batch_mask = np.ones(bsz, dtype=bool)
                batch_mask[finalized_sents] = False
                batch_idxs = np.nonzero(batch_mask)[0]
                eos_mask = eos_mask[batch_idxs]
                cand_beams = cand_beams[batch_idxs]
                bbsz_offsets = bbsz_offsets[:new_bsz]
                cand_bbsz_idx = cand_beams + bbsz_offsets
                cand_scores = cand_scores[batch_idxs]
                cand_indices = cand_indices[batch_idxs]
                cands_to_ignore = cands_to_ignore[batch_idxs]
                scores = scores.reshape(bsz, -1)[batch_idxs].reshape(new_bsz * beam, -1)
                tokens = tokens.reshape(bsz, -1)[batch_idxs].reshape(new_bsz * beam, -1)
                bsz = new_bsz
            else:
                batch_idxs = None

            # Values >= cand_size mark EOS/ignored candidates; the beam smallest are the next active hypotheses.
            eos_mask[:, :beam] |= cands_to_ignore  # fairseq: ~(~ignore & ~eos)
            active_mask = eos_mask.astype(np.int64) * cand_size + cand_offsets[:eos_mask.shape[1]]
            active_hypos = np.argsort(active_mask, axis=1, kind="stable")[:, :beam]
            rows = all_rows[:bsz]
            new_cands_to_ignore = active_mask[rows, active_hypos]
            cands_to_ignore = new_cands_to_ignore >= cand_size
            # fairseq's check that every sentence keeps an active hypothesis; a row's values are sorted, so its
            # first says it (the axis reduction of ``(~ignore).any(1).all()`` cost ~10 % of the bookkeeping)
            assert (new_cands_to_ignore[:, 0] < cand_size).all()

            active_bbsz_idx = cand_bbsz_idx[rows, active_hypos].reshape(-1)
            tokens[:, :step + 1] = tokens[active_bbsz_idx, :step + 1]
            tokens.reshape(bsz, beam, -1)[:, :, step + 1] = cand_indices[rows, active_hypos]
            if step > 0:
                scores[:, :step] = scores[active_bbsz_idx, :step]
            scores.reshape(bsz, beam, -1)[:, :, step] = cand_scores[rows, active_hypos]
            reorder_state = active_bbsz_idx

        # Stable sort keeps fairseq's insertion order among equal scores.
        return [sorted(f, key=lambda h: -h.score) for f in finalized]

    def _finalize(self, step, bbsz_idx, eos_scores, tokens, scores, finalized, finished, max_len) -> list[int]:
        """fairseq ``finalize_hypos``: store EOS-ending hypotheses; return newly finished batch positions."""
        beam = self.beam_size
        tokens_clone = tokens[bbsz_idx, 1:step + 2].copy()
        tokens_clone[:, step] = self.eos
        pos_scores = scores[bbsz_idx, :step + 1].copy()
        pos_scores[:, step] = eos_scores
        pos_scores[:, 1:] = pos_scores[:, 1:] - pos_scores[:, :-1]
        if self.normalize_scores:
            eos_scores = eos_scores / np.float32((step + 1) ** self.lenpen)
        # Map positions in the (possibly shrunk) batch back to original sentence indices.
        cum_unfin, prev = [], 0
        for f in finished:
            if f:
                prev += 1
            else:
                cum_unfin.append(prev)
        cum = np.asarray(cum_unfin, dtype=np.int64)
        unfin_idx = bbsz_idx // beam
        sent = unfin_idx + cum[unfin_idx]
        for i in range(bbsz_idx.size):
            if len(finalized[sent[i]]) < beam:
                finalized[sent[i]].append(Hypothesis(tokens_clone[i], float(eos_scores[i]), pos_scores[i]))
        newly = []
        for s, u in sorted(set(zip(sent.tolist(), unfin_idx.tolist()))):
            if not finished[s] and (len(finalized[s]) == beam or step == max_len):
                finished[s] = True
                newly.append(u)
        return newly


class GreedyMixin:
    """``greedy()`` for translators that own ``self.search`` (a :class:`BeamSearch`) and
    ``generate(src_tokens, src_lengths, search=None)``."""

    def greedy(self, src_tokens, src_lengths) -> list[Hypothesis]:
        """Greedy decoding (fairseq ``--beam 1``): the best hypothesis per sentence.

        Runs a separate ``BeamSearch(beam_size=1)``; the translator's own search is left untouched (safe to call
        from several threads).
        """
        return [h[0] for h in self.generate(src_tokens, src_lengths, search=self.search.with_beam_size(1))]
