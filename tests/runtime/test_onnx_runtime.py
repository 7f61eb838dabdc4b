"""hat.runtime: ONNX (numpy + onnxruntime) translation equals the PyTorch SequenceGenerator; no torch import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from hat.runtime import OnnxTranslator, collate_source, translate_dataset


def test_runtime_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import hat.runtime, hat.runtime.onnx, hat.runtime.beam_search, hat.runtime.batching, hat.runtime.vocab\n"
            "import hat.runtime.ctranslate2, hat.runtime.remote, hat.runtime.bounds, hat.runtime.text, hat.runtime.ort_calls\n"
            "assert sys.modules['torch'] is None\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_the_files_sent_to_a_device_hold_every_hat_module_they_import():
    """A device receives hat's runtime as RUNTIME_FILES: a module they import but that is not among them would fail
    there only."""
    import ast
    from pathlib import Path

    from hat.runtime.remote import RUNTIME_FILES
    root = Path(__file__).resolve().parents[2]
    missing = set()
    for rel in RUNTIME_FILES:
        for node in ast.walk(ast.parse((root / rel).read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
            for name in (n for n in names if n == "hat" or n.startswith("hat.")):
                path = Path(*name.split("."))
                found = [str(p) for p in (path.with_suffix(".py"), path / "__init__.py") if (root / p).is_file()]
                missing.update(f"{rel} imports {name}" for f in found[:1] if f not in RUNTIME_FILES)
    assert not missing


@pytest.fixture(scope="module")
def fixture_export(fairseq_fixture, tmp_path_factory):
    """The fairseq fixture checkpoint, loaded by hat and exported with hat.export.onnx."""
    from hat.export.onnx import export_onnx
    from hat.interop.fairseq import load_transformer
    model = load_transformer(fairseq_fixture / "checkpoint_best.pt").eval()
    out = tmp_path_factory.mktemp("onnx_fixture")
    export_onnx(model, out)
    return model, out


def _valid_sources(fairseq_fixture, n):
    from hat.data.indexed import MMapIndexedDataset
    ds = MMapIndexedDataset(fairseq_fixture / "bin" / "valid.de-en.de")
    return [ds[i].numpy() for i in range(n)]


@pytest.mark.parametrize("beam", [4, 1])
def test_onnx_beam_equals_pytorch(fixture_export, fairseq_fixture, beam):
    from hat.generate import SequenceGenerator
    model, out = fixture_export
    srcs = _valid_sources(fairseq_fixture, 20)
    ort_tr = OnnxTranslator(out, beam_size=beam, threads=1)
    pt_gen = SequenceGenerator(model, beam_size=beam)
    ours = translate_dataset(ort_tr, srcs, batch_size=8)
    ref = translate_dataset(pt_gen, srcs, batch_size=8)
    same = [a.tokens.tolist() == b.tokens.tolist() for a, b in zip(ours, ref)]
    assert all(same), f"{sum(same)}/20 equal"
    np.testing.assert_allclose([h.score for h in ours], [h.score for h in ref], atol=1e-4)


# Per-layer heads and FFN widths, decoder width 48 != encoder 64, the first decoder layer attending to the last two
# encoder layers (HAT's arbitrary encoder-decoder attention).
HETERO_ARBITRARY = dict(encoder_embed_dim=64, decoder_embed_dim=48, encoder_layer_num=2, decoder_layer_num=2,
                        encoder_ffn_embed_dim=[128, 64], encoder_self_attention_heads=[4, 2],
                        decoder_ffn_embed_dim=[96, 48], decoder_self_attention_heads=[2, 4],
                        decoder_ende_attention_heads=[4, 2], decoder_arbitrary_ende_attn=[1, -1])


@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_beam5_equals_pytorch_on_100_sentences(kind, fixture_export, fixture_subnet, fairseq_fixture, tmp_path):
    """fp32 hypotheses of hat's runtime equal the PyTorch path's (hat-translate --checkpoint's generator) on 100
    Multi30k sentences, for a uniform model and for a heterogeneous one with arbitrary encoder-decoder attention."""
    from hat.export.onnx import export_onnx
    from hat.generate import SequenceGenerator
    from hat.space import SubnetConfig
    if kind == "uniform":
        model, out = fixture_export
    else:
        model, out = fixture_subnet(SubnetConfig(**HETERO_ARBITRARY)), tmp_path / "onnx"
        export_onnx(model, out)
    srcs = _valid_sources(fairseq_fixture, 100)
    ours = translate_dataset(OnnxTranslator(out, beam_size=5, threads=1), srcs, batch_size=16)
    ref = translate_dataset(SequenceGenerator(model, beam_size=5), srcs, batch_size=16)
    differ = [i for i, (a, b) in enumerate(zip(ours, ref)) if a.tokens.tolist() != b.tokens.tolist()]
    assert not differ, f"hypotheses {differ} differ"


def test_greedy_helper_and_batch_shrinking(fixture_export, fairseq_fixture):
    _, out = fixture_export
    srcs = _valid_sources(fairseq_fixture, 6)
    tr = OnnxTranslator(out, beam_size=3, threads=1)
    src_tokens, src_lengths = collate_source(srcs)
    greedy = tr.greedy(src_tokens, src_lengths)
    assert tr.beam_size == 3 and len(greedy) == 6
    # Sentences finish at different steps (the batch shrinks); each equals its one-sentence decoding.
    for s, g in zip(srcs, greedy):
        alone = tr.greedy(s[None], np.array([len(s)]))[0]
        assert alone.tokens.tolist() == g.tokens.tolist()


def test_fast_graph_calls_decode_as_the_public_api(fixture_export, fairseq_fixture):
    """The C-level calls (:class:`hat.runtime.ort_calls.OrtCalls`) are used on this onnxruntime and give the public
    API's hypotheses and scores, batch shrinking included."""
    from hat.runtime.ort_calls import OrtCalls
    _, out = fixture_export
    srcs = _valid_sources(fairseq_fixture, 8)
    src_tokens, src_lengths = collate_source(srcs)
    fast = OnnxTranslator(out, beam_size=4, threads=1)
    public = OnnxTranslator(out, beam_size=4, threads=1)
    public.decoder_calls = OrtCalls(public.decoder, fast=False)
    assert fast.decoder_calls.fast and not public.decoder_calls.fast
    for a, b in zip(fast.generate(src_tokens, src_lengths), public.generate(src_tokens, src_lengths)):
        assert [h.tokens.tolist() for h in a] == [h.tokens.tolist() for h in b]
        assert [h.score for h in a] == [h.score for h in b]


def test_missing_meta_is_a_hat_error(tmp_path):
    from hat.errors import HatError
    with pytest.raises(HatError, match="meta.json"):
        OnnxTranslator(tmp_path)


def test_vocabulary_matches_dictionary(fairseq_fixture):
    from hat.data.dictionary import Dictionary
    from hat.runtime import Vocabulary
    path = fairseq_fixture / "bin" / "dict.en.txt"
    v, d = Vocabulary.load(path), Dictionary.load(path)
    assert v.symbols == d.symbols and len(v) == len(d) == 10040
    line = "A man in a zzzunknownzzz shirt ."
    assert v.encode_line(line).tolist() == d.encode_line(line).tolist()
    ids = d.encode_line(line)
    assert v.string(ids.numpy()) == d.string(ids)


def test_greedy_leaves_the_translators_search_alone(fixture_export, fairseq_fixture):
    """greedy() runs its own beam-1 search: the translator's beam size never changes, not even during the call."""
    _, out = fixture_export
    srcs = _valid_sources(fairseq_fixture, 2)
    tr = OnnxTranslator(out, beam_size=3, threads=1)
    seen = []
    generate = tr.generate

    def spy(*args, **kwargs):
        seen.append(tr.search.beam_size)
        return generate(*args, **kwargs)

    tr.generate = spy
    greedy = tr.greedy(*collate_source(srcs))
    assert seen == [3] and tr.beam_size == 3 and len(greedy) == 2


@pytest.mark.parametrize("version,ok", [("1.16.3", False), ("1.20.1", False), ("1.21.0", True), ("1.32.0", True),
                                        ("1.22.0.dev20250101", True)])
def test_onnxruntime_older_than_1_21_is_refused_in_one_line(version, ok):
    """Measured: ONNX Runtime 1.16-1.20 misread a key padding mask with masked positions inside the sequence (hat's
    cross attention over several left-padded encoder layers), so the batched hypotheses would be wrong."""
    from hat.errors import HatError
    from hat.runtime.onnx import check_onnxruntime
    if ok:
        check_onnxruntime(version)
    else:
        with pytest.raises(HatError, match=r"older than 1\.21.*pip install -U 'onnxruntime>=1\.21'"):
            check_onnxruntime(version)
