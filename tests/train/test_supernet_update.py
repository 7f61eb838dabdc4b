"""Sandwich rule and in-place distillation (hat.train.supernet_update) on the micro space and the fairseq fixture."""

from __future__ import annotations

import pytest
import torch

from hat.errors import ConfigError
from hat.train.config import load_train_config
from hat.train.supernet_update import accumulate_gradients, distill_loss, subnet_rng, update_subnets
from hat.train.trainer import Trainer


@pytest.fixture
def trainer(make_task):
    """A micro SuperTransformer trainer without dropout (so parts and whole see the same forward)."""
    cfg = load_train_config(make_task(model={"dropout": 0.0}, subnet_sampling="sandwich", sandwich_random=2))
    t = Trainer(cfg, progress=False)
    yield t
    t.logger.close()


def _grads(t: Trainer, samples, subnets, distill=0.0) -> dict[str, torch.Tensor]:
    t.optimizer.zero_grad(set_to_none=True)
    accumulate_gradients(t.model, samples, subnets, label_smoothing=t.cfg.label_smoothing,
                         padding_idx=t.padding_idx, device=t.device, inplace_distill=distill)
    return {n: p.grad.clone() for n, p in t.model.named_parameters() if p.grad is not None}


def _samples(t: Trainer, n: int = 2) -> list[dict]:
    return [t.train_data.batch(b) for b in t.epoch_batches(1)[:n]]


@pytest.mark.parametrize("sampling,n_random", [("random", 1), ("sandwich", 0), ("sandwich", 3)])
def test_update_subnets_are_deterministic(trainer, sampling, n_random):
    space = trainer.space
    for update in (0, 7):
        a = update_subnets(space, 5, update, sampling, n_random)
        assert a == update_subnets(space, 5, update, sampling, n_random)
        if sampling == "random":
            assert a == [("random", space.sample(subnet_rng(5, update)))]  # HAT's rule, unchanged
        else:
            assert [r for r, _ in a] == ["largest", "smallest"] + ["random"] * n_random
            assert a[0][1] == space.largest() and a[1][1] == space.smallest()
    assert update_subnets(space, 5, 0, "sandwich", 3) != update_subnets(space, 5, 1, "sandwich", 3)


def test_sandwich_gradient_is_sum_of_parts(trainer):
    samples = _samples(trainer)
    subnets = trainer.subnets_for(3)
    assert len(subnets) == 4
    whole = _grads(trainer, samples, subnets)
    parts = [_grads(trainer, samples, [s]) for s in subnets]
    assert set(whole) == set().union(*parts)
    for name, g in whole.items():
        expect = sum(p[name] for p in parts if name in p)
        torch.testing.assert_close(g, expect, rtol=1e-4, atol=1e-5, msg=name)  # summation order


def test_trainer_update_uses_sandwich(trainer):
    """train_step's accumulated gradient (before normalisation and the step) is the sandwich's."""
    samples = _samples(trainer)
    subnets = trainer.subnets_for(0)
    expect = _grads(trainer, samples, subnets)
    ntok = sum(float(s["ntokens"]) for s in samples)
    seen = {}
    orig = trainer.optimizer.step

    def capture(*a, **k):
        seen.update({n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None})
        return orig(*a, **k)
    trainer.optimizer.step = capture
    stats = trainer.train_step(samples)
    assert set(seen) == set(expect)
    for name, g in seen.items():
        torch.testing.assert_close(g * ntok, expect[name], rtol=1e-4, atol=1e-6, msg=name)
    assert stats["ntokens"] == ntok and stats["distill_loss"] == 0.0


def test_distill_loss_value_and_no_teacher_gradient():
    torch.manual_seed(0)
    teacher_logits = torch.randn(6, 5, requires_grad=True)
    student_logits = torch.randn(6, 5, requires_grad=True)
    t_lp, s_lp = teacher_logits.log_softmax(-1), student_logits.log_softmax(-1)
    target = torch.tensor([2, 3, 1, 1, 4, 0])  # pad = 1: two positions ignored
    loss = distill_loss(s_lp, t_lp, target, padding_idx=1)
    keep = target.ne(1)
    expect = -(t_lp.exp() * s_lp).sum(-1)[keep].sum()
    torch.testing.assert_close(loss, expect)
    loss.backward()
    assert teacher_logits.grad is None  # the target is detached
    assert student_logits.grad is not None and student_logits.grad[~keep].abs().sum() == 0


def test_distillation_target_carries_no_gradient(trainer):
    """With distillation, the teacher's parameters get exactly the gradient of its own label loss plus the
    students' gradients computed against a frozen copy of its output: nothing flows back through the target."""
    samples = _samples(trainer, 1)
    big, small = ("largest", trainer.space.largest()), ("smallest", trainer.space.smallest())
    w = 0.7
    whole = _grads(trainer, samples, [big, small], distill=w)
    teacher_only = _grads(trainer, samples, [big])
    # The student's loss against a teacher distribution computed without autograd.
    trainer.optimizer.zero_grad(set_to_none=True)
    batch = samples[0]
    net = batch["net_input"]
    m = trainer.model
    with torch.no_grad():
        m.set_active_subnet(big[1])
        q = m.get_normalized_probs(m(net["src_tokens"], net["src_lengths"], net["prev_output_tokens"]),
                                   log_probs=True).reshape(-1, m.cfg.tgt_vocab_size)
    m.set_active_subnet(small[1])
    lp = m.get_normalized_probs(m(net["src_tokens"], net["src_lengths"], net["prev_output_tokens"]),
                                log_probs=True).reshape(-1, m.cfg.tgt_vocab_size)
    from hat.train.loss import label_smoothed_nll_loss
    tgt = batch["target"].reshape(-1)
    ls, _ = label_smoothed_nll_loss(lp, tgt, trainer.cfg.label_smoothing, ignore_index=trainer.padding_idx)
    ((1 - w) * ls + w * distill_loss(lp, q, tgt, trainer.padding_idx)).backward()
    student = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    only_teacher = [n for n in teacher_only if n not in student]
    assert only_teacher, "the largest must have parameters the smallest does not use"
    for name, g in whole.items():
        expect = teacher_only.get(name, 0) + student.get(name, 0)
        torch.testing.assert_close(g, expect, rtol=1e-4, atol=1e-5, msg=name)  # summation order
    for name in only_teacher:  # e.g. the largest's extra decoder layer: its own label gradient only
        torch.testing.assert_close(whole[name], teacher_only[name], rtol=0, atol=0, msg=name)


def test_sandwich_distill_training_runs_and_logs(make_task):
    from hat.train.trainer import train
    cfg = load_train_config(make_task(subnet_sampling="sandwich", sandwich_random=1, inplace_distill=1.0,
                                      max_update=3))
    res = train(cfg, progress=False)
    assert res.update == 3 and res.valid_loss is not None
    import json
    from pathlib import Path
    recs = [json.loads(x) for x in (Path(cfg.save_dir) / "train_log.jsonl").read_text().splitlines()]
    assert all(r["distill_loss"] > 0 for r in recs if r["type"] == "train")


@pytest.mark.parametrize("over,match", [
    ({"subnet_sampling": "all"}, "subnet_sampling must be one of"),
    ({"inplace_distill": 0.5}, "needs subnet_sampling: sandwich"),
    ({"subnet_sampling": "sandwich", "inplace_distill": 1.5}, r"inplace_distill must be in \[0, 1\]"),
    ({"subnet_sampling": "sandwich", "sandwich_random": -1}, "sandwich_random must be >= 0"),
])
def test_bad_sampling_config(make_task, over, match):
    with pytest.raises(ConfigError, match=match):
        load_train_config(make_task(**over))


def test_sandwich_settings_must_match_on_resume(make_task):
    from hat.errors import HatError
    from hat.train.trainer import train
    path = make_task(max_update=1, subnet_sampling="sandwich", sandwich_random=1)
    train(load_train_config(path), progress=False)
    with pytest.raises(HatError, match="sandwich_random was 1, now 2"):
        Trainer(load_train_config(path, ["sandwich_random=2"]), resume=True, progress=False)
