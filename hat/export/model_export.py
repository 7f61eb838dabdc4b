"""Export a loaded model to ONNX, TVM or a fairseq checkpoint, with its dictionaries and an output check
(``hat-export`` and the quickstart's export stage)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hat.errors import HatError

FORMATS = ("onnx", "tvm", "fairseq")


@dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        files: the files written (graphs, meta, bundled dictionaries; the checkpoint for fairseq).
        max_logit_diff: max |logit difference| of the export against PyTorch on a random batch (None: not checked).
    """

    files: list[Path]
    max_logit_diff: Optional[float] = None


def compare_outputs(model, out_dir: Path, fmt: str) -> float:
    """Max abs difference of the exported encoder+first step logits against PyTorch on a random batch."""
    import numpy as np
    import torch

    from hat.runtime import OnnxTranslator
    g = torch.Generator().manual_seed(0)
    src = torch.randint(4, model.cfg.src_vocab_size, (2, 6), generator=g)
    src[:, -1] = model.cfg.eos_idx
    if fmt == "tvm":
        from hat.export.tvm import TvmTranslator as T
    else:
        T = OnnxTranslator
    tr = T(out_dir, beam_size=1)
    enc = tr.encode(src.numpy(), np.array([6, 6]))
    feeds = {n: enc[n] for n in tr._from_encoder}
    for layer in tr.meta["decoder_layers"]:
        feeds[layer["self_k"]] = feeds[layer["self_v"]] = np.zeros((2, layer["self_heads"], 0,
                                                                    layer["self_head_dim"]), np.float32)
    feeds["tokens"] = np.full((2, 1), model.cfg.eos_idx, np.int64)
    feeds["step"] = np.array(0, np.int64)
    ours = tr._run_step(feeds)["logits"]
    with torch.no_grad():
        ref, _ = model(src, torch.tensor([6, 6]), torch.full((2, 1), model.cfg.eos_idx))
    return float(np.abs(ours - ref[:, -1].numpy()).max())


def export_model(model, fmt: str, out: str | os.PathLike, *, target: str = "host",
                 data: Optional[str | os.PathLike] = None, source_lang: Optional[str] = None,
                 target_lang: Optional[str] = None, quantize: str = "none", opset: int = 17,
                 check: bool = True) -> ExportResult:
    """Export ``model`` (from :func:`hat.translate.load_any_model`) to ``out``.

    Args:
        model: the model to export.
        fmt: ``onnx``, ``tvm`` or ``fairseq``.
        out: output directory.
        target: TVM target (``host`` or ``rpi4``).
        data: data dir whose ``dict.*.txt`` (and ``spm.model``) are copied next to the export, so that the export
            translates text on its own.
        source_lang: source language recorded with the bundled dictionaries (default: inferred from ``data``).
        target_lang: target language (default: inferred).
        quantize: ``int8``: ONNX Runtime dynamic quantization of the MatMul weights (onnx only).
        opset: ONNX opset.
        check: run the ONNX checker and compare the export's logits with PyTorch (float exports must agree to 1e-3;
            int8 moves logits by design, so its difference is only reported).

    Raises:
        HatError: ``quantize`` with a format other than onnx, or a float export whose logits differ.
    """
    if quantize != "none" and fmt != "onnx":
        raise HatError("--quantize applies to --format onnx only")
    if fmt not in FORMATS:
        raise HatError(f"unknown export format '{fmt}' (have: {', '.join(FORMATS)})")
    out = Path(out)
    if fmt == "fairseq":
        from hat.export.fairseq import export_fairseq
        return ExportResult(files=[Path(export_fairseq(model, out, data_dir=data))])
    if fmt == "onnx":
        from hat.export.onnx import export_onnx
        paths = export_onnx(model, out, opset=opset, check=check)
        if quantize != "none":
            from hat.export.onnx import quantize_onnx
            quantize_onnx(out, quantize)
    else:
        from hat.export.tvm import export_tvm
        paths = export_tvm(model, out, target=target)
    files = [paths.encoder, paths.decoder_step, paths.meta]
    if data:
        from hat.export.onnx import bundle_text_files
        files += bundle_text_files(out, data, source_lang, target_lang,
                                   fmt="hat-tvm-1" if fmt == "tvm" else "hat-onnx-1")
    diff = None
    if check and (fmt == "onnx" or target == "host"):
        diff = compare_outputs(model, out, fmt)
        if diff > 1e-3 and quantize == "none":
            raise HatError(f"exported {fmt} logits differ from PyTorch by {diff:.3g} (> 1e-3)")
    return ExportResult(files=[Path(f) for f in files], max_logit_diff=diff)
