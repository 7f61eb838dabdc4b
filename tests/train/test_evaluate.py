import math

import pytest
import torch

from hat.data import load_split
from hat.checkpoints import load_model
from hat.train.evaluate import prepare_batches, valid_loss


@pytest.fixture(scope="module")
def fairseq_model_and_valid(fairseq_fixture):
    model, _ = load_model(fairseq_fixture / "checkpoint_best.pt")
    return model, load_split(fairseq_fixture / "bin", "valid", "de", "en")


def test_valid_loss_dataset_equals_batches(fairseq_model_and_valid):
    model, valid = fairseq_model_and_valid
    model.train()
    a = valid_loss(model, valid, max_tokens=2000, max_batches=2)
    batches = prepare_batches(valid, max_tokens=2000, max_batches=2)
    b = valid_loss(model, batches)
    assert a == pytest.approx(b, rel=1e-12)
    assert model.training  # mode restored
    assert 1.0 < a < math.log(len(valid.tgt_dict))  # the trained fixture model beats uniform
    smoothed = valid_loss(model, batches, label_smoothing=0.1)
    assert smoothed > a


def test_valid_loss_matches_fairseq_reference(fairseq_fixture, fairseq_model_and_valid):
    """NLL from fairseq's own log-probs on valid ids [3,1,2,0] equals ours on the same batch."""
    import numpy as np
    model, valid = fairseq_model_and_valid
    ref = np.load(fairseq_fixture / "reference_valid_first4.npz")
    target = torch.from_numpy(ref["target"])
    lp = torch.from_numpy(ref["log_probs"]).double()
    mask = target.ne(1)
    ref_nll = float(-(lp.gather(-1, target.unsqueeze(-1)).squeeze(-1))[mask].sum() / mask.sum())
    batch = valid.batch([3, 1, 2, 0])
    assert valid_loss(model, [batch]) == pytest.approx(ref_nll, rel=1e-4)


def test_supernet_subnets_differ(fairseq_fixture, tiny_space):
    from hat.nn import ModelConfig, SuperTransformer
    valid = load_split(fairseq_fixture / "bin", "valid", "de", "en")
    torch.manual_seed(0)
    sup = SuperTransformer(tiny_space, ModelConfig(len(valid.src_dict), len(valid.tgt_dict)))
    batches = prepare_batches(valid, max_tokens=1500, max_batches=1)
    sup.set_active_subnet(tiny_space.largest())
    a = valid_loss(sup, batches)
    sup.set_active_subnet(tiny_space.smallest())
    b = valid_loss(sup, batches)
    assert a != b and all(math.isfinite(x) for x in (a, b))
    assert valid_loss(sup, []) == math.inf
