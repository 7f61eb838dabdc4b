#!/usr/bin/env python3
"""Deployment smoke test on a device: translate a few sentences with an ONNX export. No torch.

Needs Python 3, numpy, onnxruntime and sentencepiece on the device, and hat's torch-free runtime package
(``hat/runtime``, plus ``hat/__init__.py``, ``hat/errors.py``, ``hat/score.py``) beside this file: the uploader
(:func:`hat.translate.translate_on_device`, CLI ``hat-translate --onnx DIR --device rpi4``) copies them, so the
device decodes with the very beam search the host uses.

Usage::

    python3 translate.py EXPORT_DIR INPUT.txt [--beam 5] [--batch-size 16] [--threads 1]

Output (stdout): one JSON object per input line, in order, ``{"id": i, "translation": "..."}``, then one
``{"summary": {"sentences": n, "seconds": s, "host": "...", "runtime_version": "...", "quantize": "..."}}``.
An error is one ``{"error": "..."}`` line and exit status 2.
"""

import argparse
import json
import os
import platform
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("export_dir")
    p.add_argument("input")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import onnxruntime as ort

    from hat.errors import HatError
    from hat.runtime import OnnxTranslator
    try:
        tr = OnnxTranslator(args.export_dir, beam_size=args.beam, threads=args.threads)
        with open(args.input, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f]
        t0 = time.perf_counter()
        hyps = tr.translate(lines, batch_size=args.batch_size)
        seconds = time.perf_counter() - t0
    except HatError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        return 2
    for i, h in enumerate(hyps):
        print(json.dumps({"id": i, "translation": h}, ensure_ascii=False), flush=True)
    print(json.dumps({"summary": {"sentences": len(hyps), "seconds": round(seconds, 4),
                                  "host": f"{socket.gethostname()} {platform.machine()} {platform.system()}",
                                  "runtime_version": f"onnxruntime {ort.__version__}",
                                  "quantize": tr.meta.get("quantize", "none"), "threads": args.threads}}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
