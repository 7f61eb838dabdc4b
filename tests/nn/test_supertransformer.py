"""SuperTransformer vs extracted static Transformer: identical outputs, decoding paths, params, gradients."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from hat.errors import ConfigError, SpaceError
from hat.nn import EncoderOut, ModelConfig, SuperTransformer, Transformer, count_subnet_params
from hat.space import SubnetConfig, load_space

VOCAB = 40
PAD, EOS = 1, 2
TOL = 1e-5


def _batch(gen: torch.Generator, lengths: list[int], tgt_lengths: list[int], vocab: int = VOCAB):
    """Left-padded source and right-padded prev_output_tokens (EOS first), fairseq layout."""
    b, s, t = len(lengths), max(lengths), max(tgt_lengths)
    src = torch.full((b, s), PAD, dtype=torch.long)
    prev = torch.full((b, t), PAD, dtype=torch.long)
    for i, (n, m) in enumerate(zip(lengths, tgt_lengths)):
        src[i, s - n:] = torch.randint(4, vocab, (n,), generator=gen)
        src[i, -1] = EOS
        prev[i, :m] = torch.randint(4, vocab, (m,), generator=gen)
        prev[i, 0] = EOS
    return src, torch.tensor(lengths), prev


def _supernet(space_name: str, **cfg_kw) -> SuperTransformer:
    torch.manual_seed(0)
    cfg = ModelConfig(src_vocab_size=VOCAB, tgt_vocab_size=VOCAB, dropout=0.1, **cfg_kw)
    return SuperTransformer(load_space(space_name), cfg).eval()


@pytest.fixture(scope="module")
def tiny_super() -> SuperTransformer:
    return _supernet("multi30k_tiny")


@pytest.fixture(scope="module")
def iwslt_super() -> SuperTransformer:
    return _supernet("iwslt14_space1")


def _incremental_logits(model, src, lengths, prev) -> torch.Tensor:
    enc = model.encoder(src, lengths)
    state: dict = {}
    outs = [model.decoder(prev[:, : t + 1], enc, incremental_state=state)[0] for t in range(prev.size(1))]
    return torch.cat(outs, dim=1)


def _step_logits(model: Transformer, src, lengths, prev) -> torch.Tensor:
    enc = model.encoder(src, lengths)
    cross = model.decoder.cross_kv(enc)
    b = src.size(0)
    ks = [torch.zeros(b, layer.self_attn.num_heads, 0, layer.self_attn.head_dim)
          for layer in model.decoder.layers]
    vs = [k.clone() for k in ks]
    outs = []
    for t in range(prev.size(1)):
        logits, ks, vs = model.decoder.step(prev[:, t:t + 1], torch.tensor(t), cross, ks, vs,
                                            encoder_padding_mask=enc.padding_mask)
        outs.append(logits)
    return torch.stack(outs, dim=1)


def _check_equivalence(sup: SuperTransformer, subnet: SubnetConfig, seed: int, vocab: int = VOCAB):
    sup.set_active_subnet(subnet)
    static = sup.get_active_subnet()
    assert not static.training
    gen = torch.Generator().manual_seed(seed)
    src, lengths, prev = _batch(gen, [7, 4, 6], [5, 3, 5], vocab)
    nonpad = prev.ne(PAD)
    with torch.no_grad():
        full_sup, _ = sup(src, lengths, prev)
        full_static, _ = static(src, lengths, prev)
        assert full_sup.shape == (3, 5, vocab)
        assert (full_sup - full_static).abs().max() < TOL
        # Incremental decoding (fairseq dict cache) and explicit-cache steps reproduce teacher forcing.
        for model in (sup, static):
            inc = _incremental_logits(model, src, lengths, prev)
            assert (inc - full_static)[nonpad].abs().max() < TOL
        step = _step_logits(static, src, lengths, prev)
        assert (step - full_static)[nonpad].abs().max() < TOL


def _random_configs(space_name: str, seeds: list[int]):
    space = load_space(space_name)
    return [pytest.param(space.sample(random.Random(s)), s, id=f"{space_name}-{s}") for s in seeds]


@pytest.mark.parametrize("subnet,seed", _random_configs("multi30k_tiny", list(range(6))))
def test_tiny_supernet_equals_static(tiny_super, subnet, seed):
    _check_equivalence(tiny_super, subnet, seed)


def test_tiny_corners(tiny_super):
    space = tiny_super.space
    for subnet in (space.largest(), space.smallest()):
        _check_equivalence(tiny_super, subnet, 0)


@pytest.mark.parametrize("subnet,seed", _random_configs("iwslt14_space1", [0, 1]))
def test_iwslt_supernet_equals_static(iwslt_super, subnet, seed):
    _check_equivalence(iwslt_super, subnet, seed)


@pytest.mark.parametrize("cfg_kw", [
    dict(normalize_before=True),
    dict(share_all_embeddings=False, share_decoder_input_output_embed=False, tgt_vocab_size=33),
    dict(share_all_embeddings=False, share_decoder_input_output_embed=True, activation_fn="gelu"),
    dict(no_scale_embedding=True, activation_fn="gelu_accurate"),
], ids=["prenorm", "separate-embeddings", "tied-decoder-gelu", "noscale-gelu-tanh"])
def test_model_variants(cfg_kw):
    kw = dict(cfg_kw)
    tgt = kw.pop("tgt_vocab_size", VOCAB)
    torch.manual_seed(0)
    cfg = ModelConfig(src_vocab_size=VOCAB, tgt_vocab_size=tgt, **kw)
    sup = SuperTransformer(load_space("multi30k_tiny"), cfg).eval()
    for seed in (3, 4):
        _check_equivalence(sup, sup.space.sample(random.Random(seed)), seed, vocab=tgt)


def test_left_padding_matches_unpadded(tiny_super, rng):
    subnet = tiny_super.sample_active_subnet(rng)
    model = tiny_super
    gen = torch.Generator().manual_seed(1)
    src, lengths, prev = _batch(gen, [8, 3, 5], [6, 2, 4])
    with torch.no_grad():
        batched, _ = model(src, lengths, prev)
        for i, (n, m) in enumerate(zip(lengths.tolist(), [6, 2, 4])):
            one, _ = model(src[i:i + 1, -n:], lengths[i:i + 1], prev[i:i + 1, :m])
            assert (one[0] - batched[i, :m]).abs().max() < TOL, subnet


def test_reorder_for_beam_search(tiny_super, rng):
    tiny_super.sample_active_subnet(rng)
    model = tiny_super.get_active_subnet()
    gen = torch.Generator().manual_seed(2)
    src, lengths, prev = _batch(gen, [5, 7], [4, 4])
    order = torch.tensor([1, 0, 1])
    with torch.no_grad():
        full, _ = model(src[order], lengths[order], prev[order])
        enc = model.encoder(src, lengths)
        state: dict = {}
        for t in (1, 2):
            model.decoder(prev[:, :t], enc, incremental_state=state)
        model.reorder_incremental_state(state, order)
        enc = model.encoder.reorder_encoder_out(enc, order)
        assert isinstance(enc, EncoderOut) and enc.states[-1].shape[1] == 3
        out, _ = model.decoder(prev[order, :3], enc, incremental_state=state)
        assert (out[:, 0] - full[:, 2]).abs().max() < TOL


def test_encoder_out_layout(tiny_super):
    tiny_super.set_active_subnet(tiny_super.space.largest())
    src, lengths, _ = _batch(torch.Generator().manual_seed(0), [4, 6], [2, 2])
    enc = tiny_super.encoder(src, lengths)
    assert len(enc.states) == 3
    assert enc.states[-1].shape == (6, 2, 128)
    assert enc.padding_mask.dtype == torch.bool and enc.padding_mask.tolist()[0] == [True] * 2 + [False] * 4


def test_count_params_hand_count(tiny_super):
    subnet = SubnetConfig(
        encoder_embed_dim=96, decoder_embed_dim=128, encoder_layer_num=3, decoder_layer_num=1,
        encoder_ffn_embed_dim=[128, 256, 512], encoder_self_attention_heads=[2, 4, 2],
        decoder_ffn_embed_dim=[256], decoder_self_attention_heads=[4], decoder_ende_attention_heads=[2],
        decoder_arbitrary_ende_attn=[2])
    q = 128
    enc_attn = 3 * (q * 96 + q) + (96 * q + 96)  # q,k,v: [128, 96] + bias; out_proj [96, 128] + bias
    enc = sum(enc_attn + (f * 96 + f) + (96 * f + 96) + 2 * 2 * 96 for f in (128, 256, 512))
    dec_self = 3 * (q * 128 + q) + (128 * q + 128)
    dec_cross = (q * 128 + q) + 2 * (q * 96 + q) + (128 * q + 128)  # keys/values read the 96-dim encoder
    dec = dec_self + dec_cross + (256 * 128 + 256) + (128 * 256 + 128) + 3 * 2 * 128
    assert tiny_super.count_params(subnet) == enc + dec == 513_856
    static = tiny_super.get_active_subnet(subnet)
    assert static.count_params() == enc + dec
    # Cross-check against the static model's real parameters (minus embeddings / output projection).
    real = sum(p.numel() for n, p in static.named_parameters()
               if "embed_tokens" not in n and "output_projection" not in n)
    assert real == enc + dec
    assert count_subnet_params(subnet, q, normalize_before=True) == enc + dec + 2 * 96 + 2 * 128


def test_sample_active_subnet_seeded(tiny_super):
    a = tiny_super.sample_active_subnet(random.Random(7))
    assert tiny_super.active_subnet == a
    b = tiny_super.sample_active_subnet(random.Random(7))
    assert a == b == tiny_super.space.sample(random.Random(7))
    r = random.Random(8)
    seq = [tiny_super.sample_active_subnet(r).key() for _ in range(5)]
    assert len(set(seq)) > 1


def test_gradient_only_to_active_slice():
    torch.manual_seed(0)
    sup = SuperTransformer(load_space("multi30k_tiny"), ModelConfig(VOCAB, VOCAB, dropout=0.0))
    subnet = SubnetConfig(
        encoder_embed_dim=96, decoder_embed_dim=96, encoder_layer_num=3, decoder_layer_num=1,
        encoder_ffn_embed_dim=[128, 256, 512], encoder_self_attention_heads=[2, 4, 2],
        decoder_ffn_embed_dim=[256], decoder_self_attention_heads=[4], decoder_ende_attention_heads=[2],
        decoder_arbitrary_ende_attn=[-1])
    sup.set_active_subnet(subnet)
    src, lengths, prev = _batch(torch.Generator().manual_seed(0), [5, 3], [4, 4])
    logits, _ = sup(src, lengths, prev)
    logits.logsumexp(-1).sum().backward()
    params = dict(sup.named_parameters())
    g = params["encoder.layers.0.fc1.weight"].grad
    assert g[:128, :96].abs().sum() > 0
    assert g[128:].abs().sum() == 0 and g[:, 96:].abs().sum() == 0
    g = params["encoder.layers.2.self_attn.q_proj.weight"].grad
    assert g[:, :96].abs().sum() > 0 and g[:, 96:].abs().sum() == 0
    g = params["encoder.layers.1.self_attn.out_proj.bias"].grad
    assert g[:96].abs().sum() > 0 and g[96:].abs().sum() == 0
    g = params["encoder.embed_tokens.weight"].grad  # shared with decoder and output projection
    assert g[:, :96].abs().sum() > 0 and g[:, 96:].abs().sum() == 0
    # Inactive decoder layers 1 and 2 get nothing.
    for name, p in params.items():
        if name.startswith(("decoder.layers.1.", "decoder.layers.2.")):
            assert p.grad is None or p.grad.abs().sum() == 0, name


def test_get_active_subnet_is_a_copy(tiny_super, rng):
    subnet = tiny_super.sample_active_subnet(rng)
    other = tiny_super.space.smallest()
    static = tiny_super.get_active_subnet(other)
    assert tiny_super.active_subnet == subnet and static.subnet == other
    with torch.no_grad():
        static.encoder.layers[0].fc1.weight.add_(1.0)
    assert not torch.equal(static.encoder.layers[0].fc1.weight,
                           tiny_super.encoder.layers[0].fc1.weight[:other.encoder_ffn_embed_dim[0], :96])
    # Tied embeddings stay tied in the copy.
    assert static.decoder.output_projection.weight is static.encoder.embed_tokens.weight


def test_state_dict_uses_fairseq_names(tiny_super):
    keys = set(tiny_super.state_dict())
    for k in ("encoder.version", "decoder.version", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
              "decoder.output_projection.weight", "encoder.layers.2.self_attn.k_proj.bias",
              "encoder.layers.0.self_attn_layer_norm.weight", "encoder.layers.0.fc2.weight",
              "decoder.layers.2.encoder_attn.v_proj.weight", "decoder.layers.0.encoder_attn_layer_norm.bias",
              "decoder.layers.1.final_layer_norm.weight"):
        assert k in keys, k
    assert not any("embed_positions" in k for k in keys)


def test_set_active_subnet_rejects_too_large(tiny_super):
    big = dataclasses.replace(tiny_super.space.largest(), encoder_embed_dim=256)
    with pytest.raises(SpaceError, match="encoder_embed_dim=256"):
        tiny_super.set_active_subnet(big)
    bad_heads = dataclasses.replace(tiny_super.space.largest(), encoder_self_attention_heads=[3, 4, 4])
    with pytest.raises(ConfigError, match="does not divide qkv_dim"):
        tiny_super.set_active_subnet(bad_heads)
    with pytest.raises(ConfigError, match="share_all_embeddings"):
        ModelConfig(src_vocab_size=10, tgt_vocab_size=12)


@pytest.mark.parametrize("scale_dropout", [False, True])
def test_train_mode_dropout_runs_and_backprops(tiny_super, rng, scale_dropout):
    sup = SuperTransformer(tiny_super.space, ModelConfig(VOCAB, VOCAB, dropout=0.3, attention_dropout=0.1,
                                                         activation_dropout=0.1), scale_dropout=scale_dropout).train()
    subnet = sup.sample_active_subnet(rng)
    if scale_dropout:  # HAT: residual/activation dropout scaled by active/max embed dim (equal at max width)
        subnet = dataclasses.replace(subnet, encoder_embed_dim=128, decoder_embed_dim=128)
        sup.set_active_subnet(subnet)
        sup.set_active_subnet(dataclasses.replace(subnet, encoder_embed_dim=96))
        assert sup.encoder.layers[0].dropout == pytest.approx(0.3 * 96 / 128)
        assert sup.encoder.layers[1].activation_dropout == pytest.approx(0.1 * 96 / 128)
        assert sup.encoder.dropout == pytest.approx(0.3 * 96 / 128) and sup.decoder.dropout == 0.3
        assert sup.get_active_subnet().encoder.layers[0].dropout == 0.3
        sup.set_active_subnet(subnet)
    src, lengths, prev = _batch(torch.Generator().manual_seed(0), [5, 3], [4, 4])
    static = sup.get_active_subnet()
    assert static.training
    torch.manual_seed(1)
    a, _ = sup(src, lengths, prev)
    torch.manual_seed(1)
    b, _ = static(src, lengths, prev)
    assert torch.isfinite(a).all()
    assert (a - b).abs().max() < TOL  # same RNG stream, same ops
    a.sum().backward()


def test_step_is_exportable(tiny_super):
    """The explicit-cache step traces with torch.export (what the ONNX exporter relies on)."""
    tiny_super.set_active_subnet(tiny_super.space.sample(random.Random(3)))
    model = tiny_super.get_active_subnet()
    src, lengths, prev = _batch(torch.Generator().manual_seed(0), [5], [3])
    n = model.subnet.decoder_layer_num

    class Step(torch.nn.Module):
        def __init__(self, dec):
            super().__init__()
            self.dec = dec

        def forward(self, tokens, step, cross_k, cross_v, self_k, self_v):
            logits, k, v = self.dec.step(tokens, step, list(zip(cross_k, cross_v)), self_k, self_v)
            return logits, k, v

    with torch.no_grad():
        enc = model.encoder(src, lengths)
        cross = model.decoder.cross_kv(enc)
        ks = [torch.zeros(1, model.decoder.layers[i].self_attn.num_heads, 2,
                          model.decoder.layers[i].self_attn.head_dim) for i in range(n)]
        args = (prev[:, :1], torch.tensor(2), [c[0] for c in cross], [c[1] for c in cross], ks,
                [k.clone() for k in ks])
        ep = torch.export.export(Step(model.decoder), args)
        ref = Step(model.decoder)(*args)
        got = ep.module()(*args)
        assert (ref[0] - got[0]).abs().max() < TOL
        # The step position is a runtime input, not a baked-in constant.
        args2 = (args[0], torch.tensor(5)) + args[2:]
        assert (ep.module()(*args2)[0] - Step(model.decoder)(*args2)[0]).abs().max() < TOL


def test_encoder_exports_with_dynamic_shapes(tiny_super):
    """torch.export of the encoder with dynamic batch and source length (no guards on the length)."""
    model = tiny_super.get_active_subnet(tiny_super.space.sample(random.Random(5)))

    class Enc(torch.nn.Module):
        def __init__(self, enc):
            super().__init__()
            self.enc = enc

        def forward(self, src):
            out = self.enc(src)
            return out.states[-1], out.padding_mask

    batch, src_len = torch.export.Dim("batch"), torch.export.Dim("src_len")
    src, _, _ = _batch(torch.Generator().manual_seed(0), [6, 4], [1, 1])
    with torch.no_grad():
        ep = torch.export.export(Enc(model.encoder), (src,), dynamic_shapes=({0: batch, 1: src_len},))
        other, _, _ = _batch(torch.Generator().manual_seed(1), [9, 2, 5], [1, 1, 1])
        assert (ep.module()(other)[0] - Enc(model.encoder)(other)[0]).abs().max() < TOL


# ----- HAT semantics (ModelConfig.hat_compat; numbers checked against HAT in tests/interop/test_hat_original.py) -----
def test_hat_compat_positions_are_sliced_super_table():
    from hat.nn.model import SinusoidalPositionalEmbedding, sinusoidal_table
    pos = SinusoidalPositionalEmbedding(48, 1, 12, source_dim=64)
    assert torch.equal(pos.table(48), sinusoidal_table(12, 64, 1)[:, :48])
    assert not torch.allclose(pos.table(48), sinusoidal_table(12, 48, 1))


def test_hat_compat_needs_super_dims_and_survives_extraction(tiny_space):
    from hat.errors import ConfigError
    with pytest.raises(ConfigError, match="hat_super_encoder_embed_dim"):
        ModelConfig(src_vocab_size=30, tgt_vocab_size=30, hat_compat=True)
    s = tiny_space
    cfg = ModelConfig(src_vocab_size=30, tgt_vocab_size=30, dropout=0.0, hat_compat=True,
                      hat_super_encoder_embed_dim=s.max_encoder_embed_dim,
                      hat_super_decoder_embed_dim=s.max_decoder_embed_dim,
                      hat_super_encoder_layer_num=s.max_encoder_layer_num)
    torch.manual_seed(0)
    sup = SuperTransformer(s, cfg).eval()
    sub = s.smallest()
    # HAT: arbitrary attention may reach the super encoder's layers even when fewer are active.
    sub = SubnetConfig(**{**sub.to_dict(), "decoder_arbitrary_ende_attn": [1] * sub.decoder_layer_num})
    if sub.encoder_layer_num >= 2:
        sub = SubnetConfig(**{**sub.to_dict(), "encoder_layer_num": 1, "encoder_ffn_embed_dim": sub.encoder_ffn_embed_dim[:1],
                              "encoder_self_attention_heads": sub.encoder_self_attention_heads[:1]})
    sup.set_active_subnet(sub)
    static = sup.get_active_subnet()
    assert static.cfg.hat_compat
    src = torch.tensor([[5, 6, 7, 2], [1, 8, 9, 2]])
    prev = torch.tensor([[2, 5, 6, 1], [2, 7, 1, 1]])
    with torch.no_grad():
        a, _ = sup(src, torch.tensor([4, 3]), prev)
        b, _ = static(src, torch.tensor([4, 3]), prev)
    assert torch.allclose(a, b, atol=1e-5)
