"""``hat-export``: export a SubTransformer to ONNX, TVM, a fairseq checkpoint or CTranslate2 (any registered format).

Examples:
    hat-export --checkpoint supernet.pt --subnet subnet.yaml --format onnx --out export/onnx --data data-bin
    hat-export --checkpoint subnet.pt --format onnx --quantize int8 --out export/onnx_int8 --data data-bin
    hat-export --checkpoint subnet.pt --format tvm --target rpi4 --out export/tvm_rpi4
    hat-export --checkpoint subnet.pt --format fairseq --out export/fairseq --data data-bin
    hat-export --checkpoint subnet.pt --format ctranslate2 --out export/ct2 --data data-bin [--quantize int8]
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

from hat.errors import cli_main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hat-export", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="hat checkpoint (SuperTransformer or static) or fairseq one")
    p.add_argument("--subnet", help="subnet YAML to extract from a SuperTransformer checkpoint")
    from hat.export.formats import EXPORT_FORMATS
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS.names())
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--target", default="host", choices=["host", "rpi4"], help="TVM target (default host)")
    p.add_argument("--data", help="data dir whose dict.*.txt (and spm.model) are copied next to the export (so that "
                   "hat-translate --onnx can translate text with it)")
    p.add_argument("--source-lang", "-s", help="source language recorded with the bundled dictionaries "
                   "(default: inferred from --data)")
    p.add_argument("--target-lang", "-t", help="target language (default: inferred)")
    p.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="onnx: ONNX Runtime dynamic int8 quantization of the MatMul weights; ctranslate2: int8 "
                        "weights")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX checker / output comparison")
    return p


@cli_main("hat-export")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from hat.export.model_export import export_model
    from hat.translate import load_any_model

    model = load_any_model(args.checkpoint, args.subnet)
    done = export_model(model, args.format, args.out, target=args.target, data=args.data,
                        source_lang=args.source_lang, target_lang=args.target_lang, quantize=args.quantize,
                        opset=args.opset, check=not args.no_check)
    if args.format == "fairseq":
        print(f"hat-export: wrote fairseq checkpoint {done.files[0]}")
        return 0
    msg = f"hat-export: wrote {', '.join(str(f) for f in done.files)}"
    if done.max_logit_diff is not None:
        msg += f" (max |logit diff| vs {done.checked_against} {done.max_logit_diff:.2e})"
    print(msg)
    return 0
