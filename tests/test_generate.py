"""hat.generate: fairseq-exact beam search through the incremental decoder (fairseq-generate parity on the real
fixture is in tests/cli/test_translate.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from hat.generate import SequenceGenerator, collate_source, translate_dataset
from hat.nn import ModelConfig, Transformer

VOCAB = 40


@pytest.fixture(scope="module")
def tiny_model():
    from hat.space import load_space
    space = load_space("multi30k_tiny")
    subnet = space.sample(random.Random(3))  # non-uniform layers, arbitrary enc-dec attention
    torch.manual_seed(0)
    model = Transformer(subnet, ModelConfig(src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, dropout=0.0), space.qkv_dim)
    # Sharper output distributions than the init gives, so hypotheses end before max_len and beams differ.
    with torch.no_grad():
        model.decoder.embed_tokens.weight.mul_(8.0)  # shared with the output projection
    return model.eval()


def sources(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(2, 9, (1,), generator=g))
        out.append(torch.cat([torch.randint(4, VOCAB, (length,), generator=g), torch.tensor([2])]))
    return out


def teacher_forced_lprobs(model, src: torch.Tensor, tokens: torch.Tensor) -> np.ndarray:
    """log p(tokens[i] | tokens[:i]) from a full (non-incremental) forward."""
    prev = torch.cat([torch.tensor([2]), tokens[:-1]])[None]
    with torch.no_grad():
        logits, extra = model(src[None], torch.tensor([len(src)]), prev)
        lp = model.get_normalized_probs((logits, extra), log_probs=True)[0]
    return lp.gather(1, tokens[:, None])[:, 0].numpy()


def test_greedy_matches_full_forward_argmax(tiny_model):
    gen = SequenceGenerator(tiny_model, beam_size=1, max_len_b=12)
    for src in sources(4):
        hyp = gen.generate(src[None], torch.tensor([len(src)]))[0][0]
        assert SequenceGenerator(tiny_model, beam_size=4, max_len_b=12).greedy(
            src[None], torch.tensor([len(src)]))[0].tokens.tolist() == hyp.tokens.tolist()
        prev = [2]
        for step in range(13):
            with torch.no_grad():
                logits, _ = tiny_model(src[None], torch.tensor([len(src)]), torch.tensor([prev]))
            lp = torch.log_softmax(logits[0, -1].float(), -1)
            lp[1] = -float("inf")
            if step == 0:
                lp[2] = -float("inf")
            if step == 12:
                prev.append(2)
                break
            prev.append(int(lp.argmax()))
            if prev[-1] == 2:
                break
        assert hyp.tokens.tolist() == prev[1:]


@pytest.mark.parametrize("beam,lenpen", [(4, 1.0), (3, 0.6)])
def test_beam_scores_are_teacher_forced_log_probs(tiny_model, beam, lenpen):
    gen = SequenceGenerator(tiny_model, beam_size=beam, lenpen=lenpen, max_len_b=12)
    srcs = sources(5, seed=1)
    src_tokens, src_lengths = collate_source(srcs)
    hypos = gen.generate(src_tokens, src_lengths)
    for src, hyps in zip(srcs, hypos):
        assert len(hyps) == beam
        for h in hyps:
            ref = teacher_forced_lprobs(tiny_model, src, torch.from_numpy(h.tokens))
            np.testing.assert_allclose(h.positional_scores, ref, atol=2e-4)
            assert h.score == pytest.approx(float(ref.sum()) / len(ref) ** lenpen, abs=2e-4)


def test_batched_equals_one_by_one(tiny_model):
    gen = SequenceGenerator(tiny_model, beam_size=4, max_len_b=12)
    srcs = sources(7, seed=2)
    batched = translate_dataset(gen, srcs, batch_size=7)
    for src, b in zip(srcs, batched):
        alone = gen.generate(src[None], torch.tensor([len(src)]))[0][0]
        assert alone.tokens.tolist() == b.tokens.tolist()
        assert alone.score == pytest.approx(b.score, abs=1e-4)
