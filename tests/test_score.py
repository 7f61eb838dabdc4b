"""hat.score.paired_bootstrap: SacreBLEU's paired bootstrap, deterministic, with one-line errors."""

from __future__ import annotations

import random

import pytest

from hat.errors import HatError
from hat.score import paired_bootstrap, sacrebleu_corpus

WORDS = "a man in an orange hat is looking at something while two dogs run across the white fence".split()


def _corpus(n=200, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))) for _ in range(n)]


def _noisy(refs, p_drop, seed):
    rng = random.Random(seed)
    return [" ".join(w for w in r.split() if rng.random() > p_drop) or "a" for r in refs]


def test_a_clearly_better_system_is_significant_and_scores_match_sacrebleu():
    refs = _corpus()
    worse, better = _noisy(refs, 0.5, 1), _noisy(refs, 0.1, 2)
    res = paired_bootstrap(worse, better, refs, n_samples=200)
    assert res["bleu_a"] == round(sacrebleu_corpus(worse, refs)[0], 2)
    assert res["bleu_b"] == round(sacrebleu_corpus(better, refs)[0], 2)
    assert res["delta_bleu"] > 10 and res["p_value"] < 0.01 and res["ci_a"] > 0 and res["n_samples"] == 200
    assert paired_bootstrap(worse, better, refs, n_samples=200) == res  # fixed resampling seed: repeatable


def test_two_equally_noisy_systems_are_not_significant():
    refs = _corpus()
    res = paired_bootstrap(_noisy(refs, 0.3, 1), _noisy(refs, 0.3, 2), refs, n_samples=200)
    assert abs(res["delta_bleu"]) < 5 and res["p_value"] > 0.05


def test_length_mismatch_is_a_hat_error():
    refs = _corpus(10)
    with pytest.raises(HatError):
        paired_bootstrap(refs[:9], refs, refs)


def test_loop_share_counts_sentences_with_a_4gram_repeated_three_times():
    from hat.score import has_loop, loop_share
    loop = "a man in a white shirt and a white shirt and a white shirt and a white shirt ."
    assert has_loop(loop)
    assert not has_loop("a white shirt and a white shirt and a hat .")  # twice only
    assert not has_loop("a dog runs .")
    assert loop_share([loop, "a dog runs .", "two men talk .", loop]) == 0.5
    assert loop_share([]) == 0.0
