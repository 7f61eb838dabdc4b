"""fairseq checkpoint interop against a checkpoint and reference outputs written by real fairseq 0.12."""

from __future__ import annotations

import argparse
import dataclasses
import datetime

import numpy as np
import pytest
import torch

from hat.errors import HatError
from hat.interop.fairseq import load_checkpoint_dict, load_transformer, save_transformer
from hat.nn import ModelConfig, SuperTransformer, Transformer
from hat.space import load_space


@pytest.fixture(scope="module")
def fixture_model(fairseq_fixture) -> Transformer:
    return load_transformer(fairseq_fixture / "checkpoint_best.pt").eval()


@pytest.fixture(scope="module")
def reference(fairseq_fixture) -> dict:
    with np.load(fairseq_fixture / "reference_valid_first4.npz") as z:
        return {k: z[k] for k in z.files}


def _log_probs(model, ref) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(ref["src_tokens"]), torch.from_numpy(ref["src_lengths"]),
                    torch.from_numpy(ref["prev_output_tokens"]))
        return model.get_normalized_probs(out, log_probs=True).numpy()


def test_load_matches_fairseq_reference(fixture_model, reference):
    s = fixture_model.subnet
    assert (s.encoder_embed_dim, s.decoder_embed_dim, s.encoder_layer_num, s.decoder_layer_num) == (64, 64, 2, 2)
    assert s.encoder_ffn_embed_dim == [128, 128] and s.decoder_self_attention_heads == [4, 4]
    assert fixture_model.qkv_dim == 64 and fixture_model.cfg.share_all_embeddings
    assert fixture_model.cfg.src_vocab_size == 10040
    lp = _log_probs(fixture_model, reference)
    assert lp.shape == reference["log_probs"].shape
    assert np.abs(lp - reference["log_probs"]).max() < 1e-4  # every position, pads included


def test_load_checkpoint_dict_is_safe(fairseq_fixture, tmp_path):
    ck = load_checkpoint_dict(fairseq_fixture / "checkpoint_best.pt")
    assert isinstance(ck["cfg"]["model"], argparse.Namespace)
    with pytest.raises(HatError, match="no such checkpoint"):
        load_checkpoint_dict(tmp_path / "missing.pt")
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": {}, "obj": datetime.date(2020, 1, 1)}, unsafe)  # not allow-listed
    with pytest.raises(HatError, match="trusted=True"):
        load_checkpoint_dict(unsafe)
    assert load_checkpoint_dict(unsafe, trusted=True)["obj"] == datetime.date(2020, 1, 1)


def test_save_reload_round_trip(fixture_model, reference, fairseq_fixture, tmp_path):
    path = tmp_path / "out" / "checkpoint.pt"
    save_transformer(fixture_model, path, src_dict_path=fairseq_fixture / "bin" / "dict.de.txt",
                     tgt_dict_path=fairseq_fixture / "bin" / "dict.en.txt")
    # Same structure as the file fairseq wrote: keys, shapes, Namespace args, loadable with weights_only=True.
    ours = load_checkpoint_dict(path)
    theirs = load_checkpoint_dict(fairseq_fixture / "checkpoint_best.pt")
    assert {k: tuple(v.shape) for k, v in ours["model"].items()} == \
        {k: tuple(v.shape) for k, v in theirs["model"].items()}
    args, ref_args = vars(ours["args"]), vars(theirs["cfg"]["model"])
    assert args["arch"] == "transformer" and args["task"] == "translation"
    assert (args["source_lang"], args["target_lang"]) == ("de", "en")
    for k in ("encoder_embed_dim", "decoder_embed_dim", "encoder_ffn_embed_dim", "decoder_ffn_embed_dim",
              "encoder_layers", "decoder_layers", "encoder_attention_heads", "decoder_attention_heads",
              "encoder_normalize_before", "decoder_normalize_before", "share_all_embeddings",
              "share_decoder_input_output_embed", "dropout", "activation_fn", "decoder_output_dim",
              "max_source_positions", "pad", "eos"):
        assert args[k] == ref_args[k], k
    # Tied embeddings are stored once (shared storage), as fairseq does.
    sd = ours["model"]
    assert sd["encoder.embed_tokens.weight"].data_ptr() == sd["decoder.output_projection.weight"].data_ptr()
    again = load_transformer(path).eval()
    assert again.subnet == fixture_model.subnet and again.cfg == fixture_model.cfg
    assert np.array_equal(_log_probs(again, reference), _log_probs(fixture_model, reference))


def test_save_supernet_subnet_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(src_vocab_size=30, tgt_vocab_size=30, normalize_before=True, activation_fn="gelu")
    sup = SuperTransformer(load_space("multi30k_tiny"), cfg).eval()
    sub = dataclasses.replace(sup.space.largest(), decoder_layer_num=2, decoder_ffn_embed_dim=[256] * 2,
                              decoder_self_attention_heads=[2] * 2, decoder_ende_attention_heads=[2] * 2,
                              decoder_arbitrary_ende_attn=[-1] * 2)
    sup.set_active_subnet(sub)
    save_transformer(sup, tmp_path / "c.pt")
    loaded = load_transformer(tmp_path / "c.pt").eval()
    assert loaded.subnet == sub and loaded.cfg.normalize_before and loaded.cfg.activation_fn == "gelu"
    src = torch.tensor([[1, 5, 6, 7, 2], [8, 9, 10, 11, 2]])
    prev = torch.tensor([[2, 5, 6], [2, 7, 1]])
    with torch.no_grad():
        assert torch.equal(sup(src, None, prev)[0], loaded(src, None, prev)[0])


@pytest.mark.parametrize("change,match", [
    (dict(encoder_ffn_embed_dim=[512, 256, 512]), "encoder_ffn_embed_dim"),
    (dict(decoder_self_attention_heads=[4, 2, 4], decoder_ende_attention_heads=[2, 4, 4]),
     "decoder_self_attention_heads, decoder_ende_attention_heads"),
    (dict(decoder_arbitrary_ende_attn=[1, 1, 1]), "arbitrary encoder-decoder attention"),
    (dict(encoder_embed_dim=96, decoder_embed_dim=96), "qkv_dim 128 must equal"),
    (dict(decoder_ende_attention_heads=[2, 2, 2]), "decoder_ende_attention_heads"),
])
def test_save_rejects_non_fairseq_architectures(change, match, tmp_path):
    space = load_space("multi30k_tiny")
    sub = dataclasses.replace(space.largest(), **change)
    model = Transformer(sub, ModelConfig(src_vocab_size=20, tgt_vocab_size=20), qkv_dim=space.qkv_dim)
    with pytest.raises(HatError, match=match):
        save_transformer(model, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_load_rejects_unsupported_options(fairseq_fixture, tmp_path):
    ck = load_checkpoint_dict(fairseq_fixture / "checkpoint_best.pt")
    ck["cfg"]["model"].encoder_learned_pos = True
    path = tmp_path / "learned.pt"
    torch.save({"cfg": ck["cfg"], "model": ck["model"]}, path)
    with pytest.raises(HatError, match="encoder_learned_pos"):
        load_transformer(path)


# Real fairseq loading what we save: tests/interop/test_real_fairseq.py (fairseq-fixed in its own venv, which
# .ci/run builds), not here: fairseq does not import in the main environment, so an in-process test only skipped.
