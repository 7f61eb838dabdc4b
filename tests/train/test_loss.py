import math

import pytest
import torch

from hat.train.loss import label_smoothed_nll_loss


def _reference(lprobs, target, eps, pad):
    """Token-by-token fairseq 0.12 formula (smoothing over the V-1 wrong classes)."""
    V = lprobs.size(-1)
    eps_i = eps / (V - 1)
    loss = nll = 0.0
    for lp, t in zip(lprobs.tolist(), target.tolist()):
        if t == pad:
            continue
        nll += -lp[t]
        loss += (1 - eps - eps_i) * -lp[t] + eps_i * -sum(lp)
    return loss, nll


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_matches_fairseq_formula(eps):
    g = torch.Generator().manual_seed(0)
    lprobs = torch.log_softmax(torch.randn(20, 11, generator=g, dtype=torch.float64), -1)
    target = torch.randint(0, 11, (20,), generator=g)
    target[[3, 7]] = 1
    loss, nll = label_smoothed_nll_loss(lprobs, target, eps, ignore_index=1)
    ref_loss, ref_nll = _reference(lprobs, target, eps, pad=1)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-12)
    assert nll.item() == pytest.approx(ref_nll, rel=1e-12)


def test_zero_smoothing_is_nll_and_pad_ignored():
    g = torch.Generator().manual_seed(1)
    lprobs = torch.log_softmax(torch.randn(2, 5, 7, generator=g), -1)
    target = torch.randint(2, 7, (2, 5), generator=g)
    target[0, -2:] = 1
    loss, nll = label_smoothed_nll_loss(lprobs.view(-1, 7), target.view(-1), 0.0, ignore_index=1)
    ref = torch.nn.functional.nll_loss(lprobs.view(-1, 7), target.view(-1), ignore_index=1, reduction="sum")
    assert torch.allclose(loss, ref) and torch.allclose(nll, ref)
    # uniform prediction: nll = log V per token
    uni = torch.full((4, 7), -math.log(7))
    _, nll = label_smoothed_nll_loss(uni, torch.tensor([2, 3, 1, 4]), 0.1, ignore_index=1)
    assert nll.item() == pytest.approx(3 * math.log(7), rel=1e-6)
