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
            "import hat.runtime, hat.runtime.onnx, hat.runtime.search, hat.runtime.batching, hat.runtime.vocab\n"
            "assert sys.modules['torch'] is None\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


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
