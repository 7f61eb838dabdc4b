"""The contract every registered export format keeps (parametrized over the registry, so a new format is tested
without editing this file): it exports a uniform tiny Transformer into files that exist, seals a folder export's
meta.json with the files' digests, replaces its own earlier export, and refuses a weight type it lacks in one line."""

from __future__ import annotations

import json

import pytest
import torch

from hat.errors import HatError
from hat.export.formats import EXPORT_FORMATS, META, ExportFormat, ExportOptions, export_format
from hat.nn import ModelConfig, Transformer
from hat.space import SubnetConfig

# Runtimes whose case takes long; every other registered format runs unmarked.
SLOW = {"tvm": "compiles two graphs with TVM Relax: ~20 s idle"}
# Uniform layers, equal widths: every built-in format can represent it (fairseq and CTranslate2 included).
UNIFORM = SubnetConfig(encoder_embed_dim=32, decoder_embed_dim=32, encoder_layer_num=2, decoder_layer_num=1,
                       encoder_ffn_embed_dim=[64, 64], encoder_self_attention_heads=[4, 4],
                       decoder_ffn_embed_dim=[64], decoder_self_attention_heads=[4], decoder_ende_attention_heads=[4],
                       decoder_arbitrary_ende_attn=[-1])


def cases():
    return [pytest.param(n, marks=pytest.mark.slow(reason=SLOW[n])) if n in SLOW else n for n in EXPORT_FORMATS]


def uniform_model() -> Transformer:
    torch.manual_seed(0)
    return Transformer(UNIFORM, ModelConfig(src_vocab_size=40, tgt_vocab_size=40, dropout=0.0), 32).eval()


def export_or_skip(fmt: ExportFormat, out, options=None):
    try:
        return fmt.export(uniform_model(), out, options)
    except HatError as e:
        if "pip install" in str(e):  # an optional dependency that is not installed (hat.optional.require)
            pytest.skip(str(e))
        raise


@pytest.mark.parametrize("name", cases())
def test_export_format_contract(name, tmp_path):
    fmt = export_format(name)
    assert isinstance(fmt, ExportFormat) and fmt.name == name and "none" in fmt.quantize
    out = tmp_path / ("model.pt" if fmt.single_file else "export")
    res = export_or_skip(fmt, out)
    assert res.files and all(p.is_file() for p in res.files)
    if not fmt.single_file:
        meta = json.loads((out / META).read_text())
        assert meta["format"] == fmt.meta_format and set(meta["files"]) == {p.name for p in res.files} - {META}
        assert res.max_logit_diff is None or res.max_logit_diff <= 1e-3
    again = export_or_skip(fmt, out)  # its own earlier export is replaced as a whole
    assert [p.name for p in again.files] == [p.name for p in res.files]
    missing = next((q for q in ("int8", "int4") if q not in fmt.quantize), None)
    if missing:
        with pytest.raises(HatError, match="not supported") as e:
            fmt.export(uniform_model(), tmp_path / "other", ExportOptions(quantize=missing))
        assert "\n" not in str(e.value)
