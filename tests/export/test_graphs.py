"""hat.export.graphs: the encoder/step graphs shared by the ONNX export, the TVM export and the TVM backend."""

from __future__ import annotations

import pytest
import torch

from hat.export.graphs import build_graphs, example_inputs, graph_meta, io_names


@pytest.fixture(scope="module")
def tiny(make_tiny_static):
    return make_tiny_static(24, 20)  # unequal vocabularies: the logits axis is the target's


def test_step_graph_is_one_incremental_decoder_step(tiny):
    enc, step = build_graphs(tiny)
    (src,), args = example_inputs(tiny, enc, batch=3, src_len=5, past=4)
    names = io_names(2)
    with torch.no_grad():
        enc_out = enc(src)
        out = step(*args)
    assert len(enc_out) == len(names.encoder_outputs) and len(out) == len(names.step_outputs)
    assert len(args) == len(names.step_inputs) and step.n_fixed == 3
    shapes = dict(zip(names.encoder_outputs, (tuple(t.shape) for t in enc_out)))
    # decoder layer 0 attends to the last two encoder layers (arbitrary attention 1): cross length 2 x src_len
    assert shapes["cross_k_0"] == (3, 2, 10, 16) and shapes["cross_v_1"] == (3, 4, 5, 8)
    got = dict(zip(names.step_outputs, (tuple(t.shape) for t in out)))
    assert got["logits"] == (3, 20) and got["new_self_k_0"] == (3, 4, 5, 8) and got["new_self_v_1"] == (3, 2, 5, 16)
    # the step is the decoder's explicit-cache step, nothing else
    with torch.no_grad():
        n = 2
        flat = args[3:]
        ref = tiny.decoder.step(args[0], args[1], [(flat[2 * i], flat[2 * i + 1]) for i in range(n)],
                                [flat[2 * n + 2 * i] for i in range(n)], [flat[2 * n + 2 * i + 1] for i in range(n)],
                                args[2])
    torch.testing.assert_close(out[0], ref[0], rtol=0, atol=0)


def test_meta_names_match_the_graphs(tiny):
    meta = graph_meta(tiny, "hat-test-1", "e.bin", "d.bin", opset=17)
    names = io_names(2)
    assert list(meta)[:2] == ["format", "opset"]  # format-specific keys right after the format
    assert meta["encoder"] == {"file": "e.bin", "inputs": names.encoder_inputs, "outputs": names.encoder_outputs}
    assert meta["decoder_step"]["inputs"] == names.step_inputs
    assert meta["decoder_step"]["cache_outputs"] == {"new_self_k_0": "self_k_0", "new_self_v_0": "self_v_0",
                                                     "new_self_k_1": "self_k_1", "new_self_v_1": "self_v_1"}
    assert [L["num_ende_layers"] for L in meta["decoder_layers"]] == [2, 1]
    assert [(L["self_heads"], L["self_head_dim"]) for L in meta["decoder_layers"]] == [(4, 8), (2, 16)]
