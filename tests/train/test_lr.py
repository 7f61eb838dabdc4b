import math

import pytest

from hat.train.lr import CosineSchedule, InverseSqrtSchedule


@pytest.mark.parametrize("init", [1e-7, 0.0])
def test_inverse_sqrt_fairseq_values(init):
    s = InverseSqrtSchedule(lr=5e-4, warmup_updates=4000, warmup_init_lr=init)
    assert s(0) == pytest.approx(init)
    assert s(2000) == pytest.approx(init + (5e-4 - init) / 2)
    assert s(4000) == pytest.approx(5e-4)
    assert s(16000) == pytest.approx(2.5e-4)
    assert s(40000) == pytest.approx(5e-4 * math.sqrt(4000 / 40000))


def test_inverse_sqrt_negative_init_means_zero():
    assert InverseSqrtSchedule(1e-3, 10, -1)(0) == 0.0
    assert InverseSqrtSchedule(1e-3, 0, -1)(0) == pytest.approx(1e-3)


def test_cosine_hat_settings():
    # HAT WMT: warmup 1e-7 -> 1e-3 over 10k, then half cosine to 1e-7 at max_update 40k.
    s = CosineSchedule(lr=1e-3, warmup_updates=10000, warmup_init_lr=1e-7, min_lr=1e-7, period_updates=30000)
    assert s(0) == pytest.approx(1e-7)
    assert s(10000) == pytest.approx(1e-3)
    assert s(25000) == pytest.approx((1e-3 + 1e-7) / 2)
    assert s(39999) == pytest.approx(1e-7, abs=1e-9)
    assert all(s(u) >= s(u + 1000) for u in range(10000, 39000, 1000))
