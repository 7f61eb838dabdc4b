"""The numpy beam search core against exhaustive search and fairseq invariants (toy log-prob tables, no model)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hat.runtime.beam_search import BeamSearch, row_candidates, topk_desc

PAD, EOS, UNK = 1, 2, 3


def candidates(lprobs_fn):
    """A step function of the search's contract from one that returns full log-probs ``[n, V]``."""
    return lambda tokens, step, reorder, bias, k: row_candidates(lprobs_fn(tokens, step, reorder), bias, k)


def toy_step_fn(vocab: int, seed: int, n_sent: int, beam: int):
    """Log-probs that depend on (sentence, prefix) only, like a real decoder; tracks the reorder contract."""
    rows = [i for i in range(n_sent) for _ in range(beam)]  # row -> sentence id

    def lprobs_for(sent: int, prefix: tuple) -> np.ndarray:
        r = np.random.default_rng(hash((seed, sent, prefix)) % (2**32))
        x = r.normal(size=vocab).astype(np.float32) * 2
        return x - np.log(np.exp(x.astype(np.float64)).sum()).astype(np.float32)

    def step_fn(tokens, step, reorder):
        nonlocal rows
        if reorder is not None:
            rows = [rows[i] for i in reorder]
        assert len(rows) == tokens.shape[0]
        return np.stack([lprobs_for(s, tuple(t[1:].tolist())) for s, t in zip(rows, tokens)])

    return candidates(step_fn), lprobs_for


def exhaustive_best(lprobs_for, sent, vocab, max_len, lenpen=1.0):
    best = (-math.inf, None)
    allowed = [t for t in range(vocab) if t not in (PAD, EOS)]
    for n in range(1, max_len + 1):  # n non-EOS tokens, then EOS (min_len = 1)
        for seq in itertools.product(allowed, repeat=n):
            s = sum(lprobs_for(sent, seq[:i])[seq[i]] for i in range(n)) + lprobs_for(sent, seq)[EOS]
            s /= (n + 1) ** lenpen
            if s > best[0]:
                best = (s, seq + (EOS,))
    return best


@pytest.mark.parametrize("lenpen", [1.0, 0.6])
def test_wide_beam_equals_exhaustive(lenpen):
    # 10 usable first tokens (pad and EOS excluded at step 0) all fit in the beam; max_len 1 then forces EOS, so the
    # beam sees every complete hypothesis. (fairseq needs vocab - 1 >= beam, so wider exhaustive cases are impossible.)
    vocab, beam, n_sent, max_len = 12, 10, 3, 1
    step_fn, lp = toy_step_fn(vocab, 0, n_sent, beam)
    bs = BeamSearch(beam_size=beam, pad=PAD, eos=EOS, unk=UNK, max_len_b=max_len, lenpen=lenpen)
    out = bs.search(n_sent, src_len=5, step_fn=step_fn, vocab=vocab)
    for s in range(n_sent):
        score, seq = exhaustive_best(lp, s, vocab, max_len, lenpen)
        assert tuple(out[s][0].tokens.tolist()) == seq
        assert out[s][0].score == pytest.approx(score, rel=1e-5)


@pytest.mark.parametrize("beam", [1, 3])
def test_batch_invariance_and_score_bookkeeping(beam):
    vocab, n_sent = 30, 5
    step_fn, lp = toy_step_fn(vocab, 1, n_sent, beam)
    bs = BeamSearch(beam_size=beam, pad=PAD, eos=EOS, unk=UNK, max_len_b=12, lenpen=1.0)
    batched = bs.search(n_sent, 7, step_fn, vocab)
    for s in range(n_sent):
        # One sentence alone: same hypotheses as in the batch (sentences finish at different steps there).
        def single(tokens, step, reorder, s=s):
            return np.stack([lp(s, tuple(t[1:].tolist())) for t in tokens])
        alone = bs.search(1, 7, candidates(single), vocab)[0]
        assert [h.tokens.tolist() for h in alone] == [h.tokens.tolist() for h in batched[s]]
        assert len(batched[s]) == beam
        for h in batched[s]:
            assert h.tokens[-1] == EOS and PAD not in h.tokens.tolist()
            # positional scores are the model's log-probs of each token given its prefix
            seq = tuple(h.tokens.tolist())
            ref = [lp(s, seq[:i])[seq[i]] for i in range(len(seq))]
            np.testing.assert_allclose(h.positional_scores, ref, rtol=1e-4, atol=1e-4)
            assert h.score == pytest.approx(float(np.sum(h.positional_scores)) / len(seq), rel=1e-4)
        assert [h.score for h in batched[s]] == sorted((h.score for h in batched[s]), reverse=True)


def test_greedy_is_argmax():
    vocab = 25
    step_fn, lp = toy_step_fn(vocab, 2, 1, 1)
    out = BeamSearch(beam_size=1, pad=PAD, eos=EOS, unk=UNK, max_len_b=10).search(1, 4, step_fn, vocab)[0][0]
    seq = []
    for i in range(11):
        x = lp(0, tuple(seq)).copy()
        x[PAD] = -np.inf
        if i == 0:
            x[EOS] = -np.inf
        if i == 10:
            seq.append(EOS)
            break
        seq.append(int(np.argmax(x)))
        if seq[-1] == EOS:
            break
    assert out.tokens.tolist() == seq


def test_max_len_forces_eos_and_min_len():
    vocab = 8

    def step_fn(tokens, step, reorder):  # EOS is always the least likely token
        x = np.full((tokens.shape[0], vocab), -1.0, np.float32)
        x[:, EOS] = -20.0
        return x
    out = BeamSearch(beam_size=2, pad=PAD, eos=EOS, unk=UNK, max_len_a=1.0, max_len_b=2, min_len=1).search(
        2, 3, candidates(step_fn), vocab)
    for hyps in out:
        assert all(len(h.tokens) == 3 * 1 + 2 + 1 for h in hyps)  # max_len = a*3+b tokens, then EOS


def test_topk_ties_lowest_index_first():
    x = np.array([[0.0, 1.0, 1.0, 1.0, -np.inf, 1.0]], np.float32)
    v, i = topk_desc(x, 2)
    assert i.tolist() == [[1, 2]] and v.tolist() == [[1.0, 1.0]]


@pytest.mark.parametrize("rows,n,k", [(1, 50, 10), (7, 300, 10), (3, 40, 39), (4, 1000, 64)])
def test_topk_argmax_path_equals_stable_sort(rows, n, k):
    """The argmax-rounds top-k equals a full stable sort, with heavy ties and -inf entries."""
    r = np.random.default_rng(n + k)
    x = r.integers(-5, 5, size=(rows, n)).astype(np.float32)  # many ties
    x[r.random((rows, n)) < 0.3] = -np.inf
    x[0, :] = -np.inf  # a row with fewer than k finite values
    x[0, 3] = 1.0
    vals, idx = topk_desc(x, k)
    ref = np.argsort(-x, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_array_equal(vals, np.take_along_axis(x, ref, 1))
