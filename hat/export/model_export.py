"""Export a loaded model in a registered format (``hat-export`` and the quickstart's export stage)."""

from __future__ import annotations

import os
from typing import Optional

from hat.errors import HatError
from hat.export.formats import ExportResult


def export_model(model, fmt: str, out: str | os.PathLike, *, target: str = "host",
                 data: Optional[str | os.PathLike] = None, source_lang: Optional[str] = None,
                 target_lang: Optional[str] = None, quantize: str = "none", opset: int = 17,
                 check: bool = True) -> ExportResult:
    """Export ``model`` (from :func:`hat.translate.load_any_model`) to ``out`` in the registered format ``fmt``
    (:mod:`hat.export.formats`: built as a whole in a temp folder, checked, sealed, then swapped in).

    Args:
        model: the model to export.
        fmt: a registered export format (``onnx``, ``tvm``, ``fairseq``, ``ctranslate2``).
        out: output directory.
        target: TVM target (``host`` or ``rpi4``).
        data: data dir whose ``dict.*.txt`` (and ``spm.model``) are copied next to the export, so that the export
            translates text on its own.
        source_lang: source language recorded with the bundled dictionaries (default: inferred from ``data``).
        target_lang: target language (default: inferred).
        quantize: ``int8`` where the format supports it (onnx: ONNX Runtime dynamic quantization of the MatMul
            weights; ctranslate2: int8 weights).
        opset: ONNX opset.
        check: compare the export's output with PyTorch (float exports must agree to 1e-3; int8 moves logits by
            design, so its difference is only reported).

    Raises:
        HatError: an unknown format, an option it does not support, a model it cannot represent, or a float export
            whose output differs.
    """
    from hat.errors import ConfigError
    from hat.export.formats import ExportOptions, export_format
    try:
        exporter = export_format(fmt)
    except ConfigError as e:
        raise HatError(str(e)) from None
    options = ExportOptions(data=None if data is None else str(data), source_lang=source_lang,
                            target_lang=target_lang, quantize=quantize, target=target, opset=opset, check=check)
    return exporter.export(model, out, options)
