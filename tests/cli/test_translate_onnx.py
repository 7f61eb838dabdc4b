"""hat-translate --onnx: torch-free text in/text out, identical to --checkpoint; bad export dirs; int8 export."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import pytest

from hat.cli.translate import main

# A meta-path finder that makes any ``import torch`` fail, installed before hat is imported.
BLOCK_TORCH = """
import sys
class _BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _BlockTorch())
"""


@pytest.fixture(scope="module")
def export_dir(fairseq_fixture, tmp_path_factory):
    """The fairseq fixture model exported by hat-export with its dictionaries bundled (float32)."""
    from hat.cli.export import main as export_main
    out = tmp_path_factory.mktemp("onnx_export") / "onnx"
    rc = export_main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--format", "onnx",
                      "--out", str(out), "--data", str(fairseq_fixture / "bin")])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def test_sentences(shared_dir, tmp_path_factory):
    """The first 100 German sentences of Multi30k test_2016_flickr (raw text)."""
    with gzip.open(shared_dir / "data" / "multi30k" / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as f:
        lines = [next(f).rstrip("\n") for _ in range(100)]
    p = tmp_path_factory.mktemp("in") / "test100.de"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_onnx_without_torch_equals_checkpoint(export_dir, test_sentences, fairseq_fixture, tmp_path):
    code = BLOCK_TORCH + (
        "from hat.cli.translate import main\n"
        f"rc = main(['--onnx', {str(export_dir)!r}, '--input', {str(test_sentences)!r}, '--output', "
        f"{str(tmp_path / 'onnx.txt')!r}, '--quiet', '--threads', '1'])\n"
        "assert 'torch' not in sys.modules\n"
        "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rc = main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--data", str(fairseq_fixture / "bin"),
               "--input", str(test_sentences), "--output", str(tmp_path / "pt.txt"), "--quiet"])
    assert rc == 0
    onnx = (tmp_path / "onnx.txt").read_text(encoding="utf-8").splitlines()
    pt = (tmp_path / "pt.txt").read_text(encoding="utf-8").splitlines()
    assert len(onnx) == len(pt) == 100
    assert onnx == pt


def test_translate_api_keeps_input_order(export_dir, test_sentences):
    from hat.runtime import OnnxTranslator
    lines = test_sentences.read_text(encoding="utf-8").splitlines()[:5]
    tr = OnnxTranslator(export_dir, beam_size=2, threads=1)
    together = tr.translate(lines, batch_size=4)
    assert together == [tr.translate([s])[0] for s in lines]
    assert tr.translate([]) == []


def _break(kind: str, d):
    meta = json.loads((d / "meta.json").read_text())
    if kind.startswith("unsealed_"):  # an export written before digests: the checks behind them still hold
        kind = kind[len("unsealed_"):]
        meta.pop("files")
        (d / "meta.json").write_text(json.dumps(meta))
    if kind == "missing_decoder":
        (d / "decoder_step.onnx").unlink()
    elif kind == "missing_meta":
        (d / "meta.json").unlink()
    elif kind == "format_version":
        meta["format"] = "hat-onnx-3"
        (d / "meta.json").write_text(json.dumps(meta))
    elif kind == "dict_size":
        lines = (d / "dict.en.txt").read_text(encoding="utf-8").splitlines()
        (d / "dict.en.txt").write_text("\n".join(lines[:-5]) + "\n", encoding="utf-8")
    elif kind == "no_dicts":
        for p in d.glob("dict.*.txt"):
            p.unlink()
    elif kind == "corrupt_graph":
        (d / "encoder.onnx").write_bytes(b"not an onnx file")
    elif kind == "not_a_dir":
        shutil.rmtree(d)


@pytest.mark.parametrize("kind,needle", [
    ("missing_decoder", "decoder_step.onnx is missing"),
    ("missing_meta", "no meta.json"),
    ("format_version", "another hat version"),
    ("dict_size", "not the file this export wrote"),
    ("unsealed_dict_size", "symbols, but the model's target vocabulary has 10040"),
    ("no_dicts", "dict.de.txt is missing or not a regular file"),
    ("unsealed_no_dicts", "no dict.*.txt"),
    ("not_a_dir", "no such export directory"),
    ("corrupt_graph", "not the file this export wrote"),
    ("unsealed_corrupt_graph", "onnxruntime cannot load it"),
])
def test_bad_export_dir_is_one_line_exit_2(export_dir, test_sentences, tmp_path, capsys, kind, needle):
    d = tmp_path / "broken"
    shutil.copytree(export_dir, d)
    _break(kind, d)
    out = tmp_path / "out.txt"
    rc = main(["--onnx", str(d), "--input", str(test_sentences), "--output", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


@pytest.mark.parametrize("extra,needle", [
    (["--data", "x"], "--data apply to --checkpoint"),
    ([], "pass --input"),
])
def test_onnx_option_errors(export_dir, tmp_path, capsys, extra, needle):
    rc = main(["--onnx", str(export_dir)] + extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err


def test_int8_export(fairseq_fixture, test_sentences, tmp_path):
    import onnx

    from hat.cli.export import main as export_main
    out = tmp_path / "int8"
    rc = export_main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--format", "onnx",
                      "--quantize", "int8", "--out", str(out), "--data", str(fairseq_fixture / "bin")])
    assert rc == 0
    assert json.loads((out / "meta.json").read_text())["quantize"] == "int8"
    ops = {n.op_type for n in onnx.load(str(out / "decoder_step.onnx")).graph.node}
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    rc = main(["--onnx", str(out), "--input", str(test_sentences), "--max-sentences", "3", "--beam", "2",
               "--output", str(tmp_path / "o.txt"), "--quiet"])
    assert rc == 0 and len((tmp_path / "o.txt").read_text(encoding="utf-8").splitlines()) == 3
