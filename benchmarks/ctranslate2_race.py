"""Race: hat's torch-free ONNX runtime vs CTranslate2 on one CPU thread, fp32 and int8, same model, same pieces.

The uniform SubTransformer of ``--checkpoint`` is exported three ways: ONNX float32 (``hat.export.onnx``), ONNX int8
(``hat-export --quantize int8``: ONNX Runtime dynamic quantization of the MatMul weights) and CTranslate2
(``hat.export.ctranslate2``, float32 weights; CTranslate2's int8 is ``compute_type="int8"`` at load). Every engine gets
the same sentencepiece pieces (tokenization is outside the timed region) and decodes with beam ``--beam``, length
penalty 1, at most 200 tokens.

Timing is interleaved, because the machine may be shared: the sentences (sorted by length, fairseq's order) are cut
into chunks of ``--chunk``; per chunk every engine translates it, in an order that rotates from chunk to chunk, so
load from other processes hits all engines alike. sentences/s = sentences / summed engine time. Every chunk time and
the load average around it go into the JSON (``--json``, default ``benchmarks/results/ctranslate2_race_<time>.json``).

``--profile N`` additionally runs cProfile over our fp32 runtime on the first N sentences at each of
``--profile-batch-sizes``, once with the beam top-k as it was before this benchmark's fix (``np.argpartition``) and
once as it is now (argmax rounds), and stores wall times and the top functions in the JSON.

Example (the run in docs/benchmarks.md)::

    python benchmarks/ctranslate2_race.py --checkpoint runs/i15/sub/checkpoint_best.pt --data runs/i15/data-bin \\
        --raw ../shared/data/multi30k/test_2016_flickr --batch-sizes 1,32 --beam 5 --profile 50
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _read(prefix: str, lang: str) -> list[str]:
    for p in (f"{prefix}.{lang}", f"{prefix}.{lang}.gz"):
        if os.path.isfile(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rt", encoding="utf-8") as f:
                return [line.rstrip("\n") for line in f]
    raise SystemExit(f"no {prefix}.{lang}[.gz]")


def _profile(tr, sources, bs, translate_dataset) -> dict:
    """cProfile one pass of ``tr`` over ``sources`` at batch ``bs`` (after a warm-up): wall time and top functions."""
    translate_dataset(tr, sources[:2], batch_size=bs)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    translate_dataset(tr, sources, batch_size=bs)
    prof.disable()
    wall = time.perf_counter() - t
    rows = []
    for (file, line, fn), (cc, nc, tt, ct, _) in pstats.Stats(prof).stats.items():
        rows.append({"function": f"{Path(file).name}:{line}({fn})", "calls": nc, "own_s": round(tt, 4),
                     "cumulative_s": round(ct, 4)})
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(20)
    return {"sentences": len(sources), "batch_size": bs, "wall_s": round(wall, 3), "loadavg": os.getloadavg(),
            "top_own": sorted(rows, key=lambda r: -r["own_s"])[:25],
            "top_cumulative": sorted(rows, key=lambda r: -r["cumulative_s"])[:25], "text": text.getvalue()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="static uniform SubTransformer checkpoint (hat or fairseq)")
    p.add_argument("--data", required=True, help="binarized data dir with dict.SRC.txt, dict.TGT.txt, spm.model")
    p.add_argument("--raw", required=True, help="raw test prefix: PREFIX.SRC[.gz] and PREFIX.TGT[.gz] (references)")
    p.add_argument("--src", default="de")
    p.add_argument("--tgt", default="en")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-sizes", default="1,32")
    p.add_argument("--engines", default="ours_fp32,ct2_fp32,ours_int8,ct2_int8")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chunk", type=int, default=100, help="sentences per interleaving chunk")
    p.add_argument("--max-sentences", type=int, default=0, help="first N sentences only (0 = all)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="cProfile ours_fp32 on the first N sentences, with the old (argpartition) and new top-k")
    p.add_argument("--profile-batch-sizes", default="1,32")
    p.add_argument("--json", help="raw results (default benchmarks/results/ctranslate2_race_<utc>.json)")
    args = p.parse_args(argv)

    import ctranslate2
    import numpy as np
    import onnxruntime as ort
    import sacrebleu

    from hat.export.ctranslate2 import export_ctranslate2
    from hat.export.onnx import export_onnx, quantize_onnx
    from hat.runtime import OnnxTranslator, TextCodec, Vocabulary, generation_order, translate_dataset
    from hat.translate import load_any_model

    data = Path(args.data)
    src_dict, tgt_dict = data / f"dict.{args.src}.txt", data / f"dict.{args.tgt}.txt"
    codec = TextCodec(Vocabulary.load(src_dict), Vocabulary.load(tgt_dict), data / "spm.model")
    lines, refs = _read(args.raw, args.src), _read(args.raw, args.tgt)
    if args.max_sentences:
        lines, refs = lines[:args.max_sentences], refs[:args.max_sentences]
    n = len(lines)
    sources = [codec.encode_source(s) for s in lines]
    pieces = [[codec.src_dict.symbols[i] for i in s[:-1]] for s in sources]  # CTranslate2 appends </s> itself

    model = load_any_model(args.checkpoint)
    tmp = Path(tempfile.mkdtemp(prefix="hat_race_"))
    t0 = time.perf_counter()
    export_onnx(model, tmp / "onnx_fp32")
    export_onnx(model, tmp / "onnx_int8")
    quantize_onnx(tmp / "onnx_int8", "int8")
    export_ctranslate2(model, tmp / "ct2", src_dict, tgt_dict)
    export_s = time.perf_counter() - t0

    def ours(d):
        tr = OnnxTranslator(tmp / d, beam_size=args.beam, threads=args.threads)

        def run(ids, bs):
            best = translate_dataset(tr, [sources[i] for i in ids], batch_size=bs)
            return [[int(t) for t in h.tokens[:-1]] for h in best]
        return run

    def ct2(compute_type):
        tr = ctranslate2.Translator(str(tmp / "ct2"), device="cpu", compute_type=compute_type,
                                    intra_threads=args.threads, inter_threads=1)
        index = codec.tgt_dict.indices

        def run(ids, bs):
            res = tr.translate_batch([pieces[i] for i in ids], beam_size=args.beam, max_batch_size=bs,
                                     max_decoding_length=200, length_penalty=1.0)
            return [[index.get(t, codec.tgt_dict.unk) for t in r.hypotheses[0]] for r in res]
        return run

    makers = {"ours_fp32": lambda: ours("onnx_fp32"), "ours_int8": lambda: ours("onnx_int8"),
              "ct2_fp32": lambda: ct2("float32"), "ct2_int8": lambda: ct2("int8")}
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    runners = {e: makers[e]() for e in engines}
    order = generation_order([len(s) for s in sources])
    samples, results = [], []
    for bs in [int(x) for x in args.batch_sizes.split(",") if x.strip()]:
        out = {e: [None] * n for e in engines}
        total = {e: 0.0 for e in engines}
        for e in engines:
            runners[e](order[:2].tolist(), bs)  # warm-up (allocations, session init)
        for c, start in enumerate(range(0, n, args.chunk)):
            ids = order[start:start + args.chunk].tolist()
            rot = engines[c % len(engines):] + engines[:c % len(engines)]
            for e in rot:
                load_before = os.getloadavg()
                t = time.perf_counter()
                hyps = runners[e](ids, bs)
                dt = time.perf_counter() - t
                total[e] += dt
                for i, h in zip(ids, hyps):
                    out[e][i] = h
                samples.append({"batch_size": bs, "engine": e, "chunk": c, "sentences": len(ids),
                                "seconds": round(dt, 4), "loadavg_before": load_before,
                                "loadavg_after": os.getloadavg()})
            print(f"batch {bs} chunk {c}: " + ", ".join(f"{e} {total[e]:.1f}s" for e in engines),
                  file=sys.stderr, flush=True)
        for e in engines:
            texts = [codec.decode_target(h) for h in out[e]]
            bleu = sacrebleu.corpus_bleu(texts, [refs])
            row = {"batch_size": bs, "engine": e, "sentences": n, "seconds": round(total[e], 3),
                   "sentences_per_s": round(n / total[e], 3), "sacrebleu": round(bleu.score, 2)}
            for ref_e in ("ours_fp32", "ct2_fp32"):
                if ref_e in out and ref_e != e:
                    row[f"same_as_{ref_e}"] = round(sum(a == b for a, b in zip(out[e], out[ref_e])) / n, 4)
            results.append(row)
            print(json.dumps(row), flush=True)
        if "ours_fp32" in engines and "ct2_fp32" in engines:
            r = next(x for x in results if x["batch_size"] == bs and x["engine"] == "ours_fp32")
            c = next(x for x in results if x["batch_size"] == bs and x["engine"] == "ct2_fp32")
            print(f"batch {bs}: ours/ct2 fp32 = {r['sentences_per_s'] / c['sentences_per_s']:.2f}x", flush=True)

    profile = None
    if args.profile:
        import hat.runtime.beam_search as search_mod
        profile = {}
        ids = list(range(min(args.profile, n)))
        for bs in [int(x) for x in args.profile_batch_sizes.split(",")]:
            # "argpartition" = the top-k before this benchmark's fix (np.argpartition + lexsort); "argmax" = now.
            for topk, max_k in (("argpartition", 0), ("argmax", search_mod.ARGMAX_TOPK_MAX_K)):
                saved, search_mod.ARGMAX_TOPK_MAX_K = search_mod.ARGMAX_TOPK_MAX_K, max_k
                try:
                    profile[f"batch{bs}_{topk}"] = _profile(OnnxTranslator(tmp / "onnx_fp32", beam_size=args.beam,
                                                                           threads=args.threads),
                                                            [sources[i] for i in ids], bs, translate_dataset)
                finally:
                    search_mod.ARGMAX_TOPK_MAX_K = saved
                print(f"profile batch {bs} top-k {topk}: {profile[f'batch{bs}_{topk}']['wall_s']} s",
                      file=sys.stderr, flush=True)

    import sentencepiece
    import torch
    record = {
        "command": " ".join([sys.executable, *sys.argv]),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"node": platform.node(), "machine": platform.machine(), "processor": platform.processor(),
                 "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {"onnxruntime": ort.__version__, "ctranslate2": ctranslate2.__version__, "numpy": np.__version__,
                     "sentencepiece": sentencepiece.__version__, "torch": torch.__version__,
                     "sacrebleu": sacrebleu.__version__},
        "settings": {"beam": args.beam, "threads": args.threads, "chunk": args.chunk, "sentences": n,
                     "max_decoding_length": 200, "length_penalty": 1.0, "checkpoint": args.checkpoint,
                     "raw": args.raw, "subnet": model.subnet.to_dict()},
        "export_s": round(export_s, 1),
        "loadavg_end": os.getloadavg(),
        "results": results,
        "samples": samples,
        "profile": profile,
    }
    path = Path(args.json) if args.json else \
        REPO / "benchmarks" / "results" / f"ctranslate2_race_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))
    print(f"wrote {path}")
    print("| batch | engine | sentences/s | SacreBLEU | same hyp as ours fp32 |")
    print("|---|---|---|---|---|")
    for r in results:
        same = r.get("same_as_ours_fp32", 1.0)
        print(f"| {r['batch_size']} | {r['engine']} | {r['sentences_per_s']:.1f} | {r['sacrebleu']:.2f} | "
              f"{same * 100:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
