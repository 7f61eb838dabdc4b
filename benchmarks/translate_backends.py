"""Translation throughput: PyTorch eager vs the ONNX runtime (vs TVM) on one CPU, same beam search.

All backends decode with the same fairseq beam search (:class:`hat.runtime.beam_search.BeamSearch`); only the model
computation differs (PyTorch incremental decoder / onnxruntime sessions / TVM Relax VM), so sentences/s compare the
runtimes, and ``agree`` is the fraction of hypotheses identical to eager's.

Intended run: Multi30k test (1,000 sentences), beam 5, batch 1 and 32. Stand-in used in docs/benchmarks.md (the fairseq
fixture model on its 200-sentence binarized valid set)::

    python benchmarks/translate_backends.py --checkpoint ../shared/fixtures/fairseq_multi30k_tiny/checkpoint_best.pt \\
        --data ../shared/fixtures/fairseq_multi30k_tiny/bin --subset valid --beam 5 --batch-sizes 1,32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="hat or fairseq checkpoint (static model)")
    p.add_argument("--subnet", help="subnet YAML for a SuperTransformer checkpoint")
    p.add_argument("--data", required=True, help="binarized data dir")
    p.add_argument("--subset", default="test")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-sizes", default="1,32")
    p.add_argument("--backends", default="eager,onnx,tvm", help="comma list; tvm is skipped when not installed")
    p.add_argument("--max-sentences", type=int, default=0, help="translate only the first N (0 = all)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for every backend")
    p.add_argument("--json", help="raw record path (default benchmarks/results/translate_backends.json)")
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.record import RunRecord
    rec = RunRecord("translate_backends", out=args.json)

    os.environ.setdefault("TVM_NUM_THREADS", str(args.threads))
    import torch
    torch.set_num_threads(args.threads)

    from hat.data import MMapIndexedDataset, infer_langs
    from hat.errors import HatError
    from hat.export.onnx import export_onnx
    from hat.generate import SequenceGenerator
    from hat.optional import require
    from hat.runtime import OnnxTranslator, translate_dataset
    from hat.translate import load_any_model

    src, tgt = infer_langs(args.data, args.subset, None, None)
    ds = MMapIndexedDataset(os.path.join(args.data, f"{args.subset}.{src}-{tgt}.{src}"))
    n = len(ds) if not args.max_sentences else min(args.max_sentences, len(ds))
    sources = [ds[i].numpy() for i in range(n)]
    model = load_any_model(args.checkpoint, args.subnet)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    tmp = tempfile.mkdtemp(prefix="hat_bench_")
    makers, setup_s = {}, {}
    if "eager" in backends:
        makers["eager"] = lambda: SequenceGenerator(model, beam_size=args.beam)
    if "onnx" in backends:
        t0 = time.perf_counter()
        export_onnx(model, os.path.join(tmp, "onnx"))
        setup_s["onnx"] = time.perf_counter() - t0
        makers["onnx"] = lambda: OnnxTranslator(os.path.join(tmp, "onnx"), beam_size=args.beam, threads=args.threads)
    if "tvm" in backends:
        try:
            require("tvm", "the tvm backend", extra="tvm")
            from hat.export.tvm import TvmTranslator, export_tvm
            t0 = time.perf_counter()
            export_tvm(model, os.path.join(tmp, "tvm"), target="host")
            setup_s["tvm"] = time.perf_counter() - t0
            makers["tvm"] = lambda: TvmTranslator(os.path.join(tmp, "tvm"), beam_size=args.beam, threads=args.threads)
        except HatError as e:
            print(f"{e}: skipping the tvm backend", file=sys.stderr)

    results = []
    for bs in [int(x) for x in args.batch_sizes.split(",")]:
        ref_tokens = None
        eager_sps = None
        for name, make in makers.items():
            gen = make()
            translate_dataset(gen, sources[:2], batch_size=bs)  # warm-up (session/VM init, allocations)
            t0 = time.perf_counter()
            hyps = translate_dataset(gen, sources, batch_size=bs)
            dt = time.perf_counter() - t0
            toks = [h.tokens.tolist() for h in hyps]
            if ref_tokens is None:
                ref_tokens = toks
            sps = n / dt
            if name == "eager":
                eager_sps = sps
            row = {"backend": name, "batch_size": bs, "beam": args.beam, "sentences": n, "seconds": round(dt, 2),
                   "sentences_per_s": round(sps, 2),
                   "ratio_vs_eager": round(sps / eager_sps, 2) if eager_sps else None,
                   "agree_with_first": round(sum(a == b for a, b in zip(toks, ref_tokens)) / n, 4)}
            results.append(row)
            print(json.dumps(row), flush=True)

    print()
    print(f"CPU: {platform.processor() or platform.machine()}, threads={args.threads}, sentences={n}, "
          f"beam={args.beam}, export s: {json.dumps({k: round(v, 1) for k, v in setup_s.items()})}")
    print("| batch | backend | sentences/s | x eager | same hyp as eager |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['batch_size']} | {r['backend']} | {r['sentences_per_s']:.1f} | {r['ratio_vs_eager']:.2f} | "
              f"{r['agree_with_first'] * 100:.1f}% |")
    print(f"raw record: {rec.write(args=vars(args), samples=results, summary={'export_s': setup_s})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
