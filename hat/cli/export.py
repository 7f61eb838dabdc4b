"""``hat-export``: export a SubTransformer to ONNX, TVM or a fairseq checkpoint.

Examples:
    hat-export --checkpoint supernet.pt --subnet subnet.yaml --format onnx --out export/onnx --data data-bin
    hat-export --checkpoint subnet.pt --format onnx --quantize int8 --out export/onnx_int8 --data data-bin
    hat-export --checkpoint subnet.pt --format tvm --target rpi4 --out export/tvm_rpi4
    hat-export --checkpoint subnet.pt --format fairseq --out export/fairseq --data data-bin
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from hat.cli.common import cli_main
from hat.errors import HatError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hat-export", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="hat checkpoint (SuperTransformer or static) or fairseq one")
    p.add_argument("--subnet", help="subnet YAML to extract from a SuperTransformer checkpoint")
    p.add_argument("--format", required=True, choices=["onnx", "tvm", "fairseq"])
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--target", default="host", choices=["host", "rpi4"], help="TVM target (default host)")
    p.add_argument("--data", help="data dir whose dict.*.txt (and spm.model) are copied next to the export (so that "
                   "hat-translate --onnx can translate text with it)")
    p.add_argument("--source-lang", "-s", help="source language recorded with the bundled dictionaries "
                   "(default: inferred from --data)")
    p.add_argument("--target-lang", "-t", help="target language (default: inferred)")
    p.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="onnx: ONNX Runtime dynamic int8 quantization of the MatMul weights")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX checker / output comparison")
    return p


def _compare_outputs(model, out_dir: Path, fmt: str) -> float:
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


@cli_main("hat-export")
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quantize != "none" and args.format != "onnx":
        raise HatError("--quantize applies to --format onnx only")
    from hat.translate import load_any_model

    model = load_any_model(args.checkpoint, args.subnet)
    out = Path(args.out)
    if args.format == "fairseq":
        from hat.export.fairseq import export_fairseq
        path = export_fairseq(model, out, data_dir=args.data)
        print(f"hat-export: wrote fairseq checkpoint {path}")
        return 0
    if args.format == "onnx":
        from hat.export.onnx import export_onnx
        paths = export_onnx(model, out, opset=args.opset, check=not args.no_check)
        files = [paths.encoder, paths.decoder_step, paths.meta]
        if args.quantize != "none":
            from hat.export.onnx import quantize_onnx
            quantize_onnx(out, args.quantize)
    else:
        from hat.export.tvm import export_tvm
        paths = export_tvm(model, out, target=args.target)
        files = [paths.encoder, paths.decoder_step, paths.meta]
    if args.data:
        from hat.export.onnx import bundle_text_files
        files += bundle_text_files(out, args.data, args.source_lang, args.target_lang,
                                   fmt="hat-tvm-1" if args.format == "tvm" else "hat-onnx-1")
    msg = f"hat-export: wrote {', '.join(str(f) for f in files)}"
    if not args.no_check and (args.format == "onnx" or args.target == "host"):
        diff = _compare_outputs(model, out, args.format)
        # int8 weights move logits by design: report the difference, check only the float export.
        if diff > 1e-3 and args.quantize == "none":
            raise HatError(f"exported {args.format} logits differ from PyTorch by {diff:.3g} (> 1e-3)")
        msg += f" (max |logit diff| vs PyTorch {diff:.2e}{', int8' if args.quantize != 'none' else ''})"
    print(msg)
    return 0
