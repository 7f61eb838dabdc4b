"""ONNX export of a static SubTransformer: ONNX Runtime matches PyTorch (encoder and incremental decoder steps)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hat.export.onnx import export_onnx
from hat.nn import ModelConfig, Transformer
from hat.space import SubnetConfig

ort = pytest.importorskip("onnxruntime")

# Non-uniform heads/FFN, arbitrary attention to 1, 2 and 3 encoder layers.
SUBNET = SubnetConfig(
    encoder_embed_dim=64, decoder_embed_dim=48, encoder_layer_num=3, decoder_layer_num=3,
    encoder_ffn_embed_dim=[64, 128, 96], encoder_self_attention_heads=[4, 2, 4],
    decoder_ffn_embed_dim=[96, 64, 128], decoder_self_attention_heads=[2, 4, 4],
    decoder_ende_attention_heads=[4, 2, 4], decoder_arbitrary_ende_attn=[-1, 1, 2])


@pytest.fixture(scope="module", params=[False, True], ids=["postnorm", "prenorm"])
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    cfg = ModelConfig(src_vocab_size=50, tgt_vocab_size=50, dropout=0.0, normalize_before=request.param)
    model = Transformer(SUBNET, cfg, qkv_dim=32).eval()
    paths = export_onnx(model, tmp_path_factory.mktemp("onnx"))
    return model, paths


def _step(dec_sess, meta, feeds, tokens, step, reorder=None):
    """Run the search step with every token as a candidate (k = V, no bias); returns full log-probs ``[rows, V]``
    rebuilt from the candidates, and the outputs by name."""
    rows, vocab = tokens.shape[0], meta["tgt_vocab_size"]
    res = dict(zip(meta["decoder_step"]["outputs"], dec_sess.run(None, {
        **feeds, "tokens": tokens, "step": np.array(step, np.int64),
        "reorder": np.arange(rows, dtype=np.int64) if reorder is None else reorder,
        "bias": np.zeros(vocab, np.float32), "k": np.array([vocab], np.int64)})))
    lp = np.empty((rows, vocab), np.float32)
    np.put_along_axis(lp, res["cand_ids"], res["cand_lprobs"], 1)
    assert (np.diff(res["cand_lprobs"], axis=1) <= 0).all()  # best first
    return lp, res


def _sessions(paths):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return (ort.InferenceSession(str(paths.encoder), so, providers=["CPUExecutionProvider"]),
            ort.InferenceSession(str(paths.decoder_step), so, providers=["CPUExecutionProvider"]))


def test_files_and_meta(exported):
    import onnx
    model, paths = exported
    meta = json.loads(paths.meta.read_text())
    assert meta["opset"] == 17 and meta["format"] == "hat-onnx-2"
    assert SubnetConfig.from_dict(meta["subnet"]) == SUBNET
    assert meta["tgt_vocab_size"] == 50 and meta["eos_idx"] == 2 and meta["padding_idx"] == 1
    assert [L["num_ende_layers"] for L in meta["decoder_layers"]] == [1, 2, 3]
    for p in (paths.encoder, paths.decoder_step):
        m = onnx.load(str(p))
        onnx.checker.check_model(m)
        assert any(o.domain in ("", "ai.onnx") and o.version == 17 for o in m.opset_import)
    enc, dec = _sessions(paths)
    assert [i.name for i in enc.get_inputs()] == meta["encoder"]["inputs"]
    assert [o.name for o in enc.get_outputs()] == meta["encoder"]["outputs"]
    assert [i.name for i in dec.get_inputs()] == meta["decoder_step"]["inputs"]
    assert [o.name for o in dec.get_outputs()] == meta["decoder_step"]["outputs"]


@pytest.mark.parametrize("batch,src_len", [(1, 5), (3, 11)])
def test_ort_matches_torch(exported, batch, src_len):
    model, paths = exported
    meta = json.loads(paths.meta.read_text())
    enc_sess, dec_sess = _sessions(paths)
    g = torch.Generator().manual_seed(batch)
    src = torch.randint(4, 50, (batch, src_len), generator=g)
    if batch > 1:
        src[1, :2] = 1  # left padding: the mask must flow through both graphs
    with torch.no_grad():
        enc = model.encoder(src)
        cross = model.decoder.cross_kv(enc)
    outs = dict(zip(meta["encoder"]["outputs"], enc_sess.run(None, {"src_tokens": src.numpy()})))
    np.testing.assert_array_equal(outs["encoder_padding_mask"], enc.padding_mask.numpy())
    for i, (k, v) in enumerate(cross):
        assert np.abs(outs[f"cross_k_{i}"] - k.numpy()).max() < 1e-4
        assert np.abs(outs[f"cross_v_{i}"] - v.numpy()).max() < 1e-4

    feeds = {n: outs[n] for n in meta["decoder_step"]["from_encoder"]}
    self_k, self_v = [], []
    for L in meta["decoder_layers"]:
        z = np.zeros((batch, L["self_heads"], 0, L["self_head_dim"]), np.float32)
        feeds[L["self_k"]] = feeds[L["self_v"]] = z
        self_k.append(torch.from_numpy(z))
        self_v.append(torch.from_numpy(z))
    tok = torch.full((batch, 1), 2, dtype=torch.long)
    for step in range(4):
        with torch.no_grad():
            logits, self_k, self_v = model.decoder.step(tok, torch.tensor(step), cross, self_k, self_v,
                                                        enc.padding_mask)
        lp, res = _step(dec_sess, meta, feeds, tok.numpy(), step)
        assert np.abs(lp - torch.log_softmax(logits, -1).numpy()).max() < 1e-4, f"step {step}"
        assert res["new_self_k_0"].shape[2] == step + 1
        for o, i in meta["decoder_step"]["cache_outputs"].items():
            feeds[i] = res[o]
        tok = logits.argmax(-1, keepdim=True)


def test_step_matches_teacher_forcing(exported):
    """The exported step loop reproduces the full (teacher-forced) decoder: the explicit cache is exact."""
    model, paths = exported
    meta = json.loads(paths.meta.read_text())
    enc_sess, dec_sess = _sessions(paths)
    src = torch.randint(4, 50, (2, 7), generator=torch.Generator().manual_seed(3))
    prev = torch.cat([torch.full((2, 1), 2), torch.randint(4, 50, (2, 4), generator=torch.Generator())], 1)
    with torch.no_grad():
        full, _ = model(src, torch.full((2,), 7), prev)
    feeds = dict(zip(meta["encoder"]["outputs"], enc_sess.run(None, {"src_tokens": src.numpy()})))
    for L in meta["decoder_layers"]:
        feeds[L["self_k"]] = feeds[L["self_v"]] = np.zeros((2, L["self_heads"], 0, L["self_head_dim"]), np.float32)
    for t in range(prev.shape[1]):
        lp, res = _step(dec_sess, meta, feeds, prev[:, t:t + 1].numpy(), t)
        assert np.abs(lp - torch.log_softmax(full[:, t], -1).numpy()).max() < 1e-4
        for o, i in meta["decoder_step"]["cache_outputs"].items():
            feeds[i] = res[o]


def test_step_reorders_caches_and_applies_bias(exported):
    """``reorder`` swaps the rows' caches inside the graph; ``bias`` shifts the log-probs before the top-k."""
    model, paths = exported
    meta = json.loads(paths.meta.read_text())
    enc_sess, dec_sess = _sessions(paths)
    src = torch.randint(4, 50, (1, 6), generator=torch.Generator().manual_seed(4)).repeat(2, 1)
    feeds = dict(zip(meta["encoder"]["outputs"], enc_sess.run(None, {"src_tokens": src.numpy()})))
    for L in meta["decoder_layers"]:
        feeds[L["self_k"]] = feeds[L["self_v"]] = np.zeros((2, L["self_heads"], 0, L["self_head_dim"]), np.float32)
    _, res = _step(dec_sess, meta, feeds, np.array([[2], [7]]), 0)  # two different prefixes
    for o, i in meta["decoder_step"]["cache_outputs"].items():
        feeds[i] = res[o]
    straight, _ = _step(dec_sess, meta, feeds, np.array([[9], [9]]), 1)
    swapped, _ = _step(dec_sess, meta, feeds, np.array([[9], [9]]), 1, reorder=np.array([1, 0]))
    np.testing.assert_array_equal(swapped, straight[::-1])
    assert not np.allclose(straight[0], straight[1])
    bias = np.zeros(50, np.float32)
    bias[5], bias[1] = 3.0, -np.inf
    res = dict(zip(meta["decoder_step"]["outputs"], dec_sess.run(None, {
        **feeds, "tokens": np.array([[9], [9]]), "step": np.array(1, np.int64), "reorder": np.array([0, 1]),
        "bias": bias, "k": np.array([4], np.int64)})))
    want = np.sort(straight + bias, axis=1)[:, ::-1][:, :4]
    assert res["cand_ids"].shape == (2, 4) and 1 not in res["cand_ids"]
    np.testing.assert_allclose(res["cand_lprobs"], want, rtol=1e-5, atol=1e-6)


def test_ctranslate2_conversion_gives_our_hypotheses(fairseq_fixture, tmp_path):
    """The fixture model converted with ctranslate2's spec API decodes exactly like hat's runtime (fp32, beam 4)."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    from hat.export.ctranslate2 import export_ctranslate2
    from hat.export.onnx import export_onnx
    from hat.interop.fairseq import load_transformer
    from hat.runtime import OnnxTranslator, Vocabulary, translate_dataset
    model = load_transformer(fairseq_fixture / "checkpoint_best.pt").eval()
    bin_dir = fairseq_fixture / "bin"
    ct2_dir = export_ctranslate2(model, tmp_path / "ct2", bin_dir / "dict.de.txt", bin_dir / "dict.en.txt")
    export_onnx(model, tmp_path / "onnx")
    vocab = Vocabulary.load(bin_dir / "dict.en.txt")
    lines = (fairseq_fixture / "raw" / "valid.de").read_text(encoding="utf-8").splitlines()[:12]
    ours = translate_dataset(OnnxTranslator(tmp_path / "onnx", beam_size=4, threads=1),
                             [vocab.encode_line(s) for s in lines], batch_size=4)
    tr = ctranslate2.Translator(str(ct2_dir), device="cpu", intra_threads=1)
    toks = [[w if w in vocab.indices else "<unk>" for w in s.split()] for s in lines]
    theirs = tr.translate_batch(toks, beam_size=4, max_batch_size=4, max_decoding_length=200)
    assert [[vocab.symbols[i] for i in h.tokens[:-1]] for h in ours] == [r.hypotheses[0] for r in theirs]
