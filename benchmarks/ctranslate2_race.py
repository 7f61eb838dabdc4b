"""Race: hat's torch-free ONNX runtime vs CTranslate2 on one CPU thread, fp32 and int8, the same trained models.

Each ``--model NAME=CHECKPOINT`` (a static SubTransformer CTranslate2 can run, trained on ``--data``) is exported as
a user ships it (:func:`hat.latency.deployed.export_deployments`: hat's ONNX export in float32 and int8, CTranslate2
in float32 and int8) and translates all sentences of ``--raw`` with beam ``--beam``, length penalty 1, fairseq's
default length limit (200 tokens). Every engine gets the same source token ids (sentencepiece and the dictionary
are outside the timed region) and batches in fairseq-generate's order.

Timing is interleaved because the machine may be shared: the sentences are cut into chunks of ``--chunk``; per chunk
every engine of a model translates it, in an order that rotates from chunk to chunk. sentences/s = sentences / summed
engine time. Every chunk time and the load average around it go into the raw JSON. ``--profile N`` runs cProfile over
hat's fp32 runtime at batch 1 on the first N sentences and reports the share of time inside ONNX Runtime's graph
calls (the rest is the Python decode loop).

    python benchmarks/ctranslate2_race.py --data runs/repro_ct2/data-bin --raw ../shared/data/multi30k/test_2016_flickr \\
        --model smallest=runs/repro_ct2/scratch/Transformer-smallest/seed0/checkpoint_best.pt \\
        --model e2d2=runs/repro_ct2/scratch/Transformer-e2d2/seed0/checkpoint_best.pt --batch-sizes 1,32 --profile 100

Stop your own training first: latency is never measured next to it.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import RunRecord  # noqa: E402

ENGINES = {"hat_fp32": ("onnxruntime", "none"), "hat_int8": ("onnxruntime", "int8"),
           "ct2_fp32": ("ctranslate2", "none"), "ct2_int8": ("ctranslate2", "int8")}


def engine_runner(dep, beam: int, threads: int):
    """``run(sources, batch_size) -> best target ids per source`` for one deployment."""
    from hat.latency.deployed import open_translator
    from hat.runtime import translate_dataset
    tr = open_translator(dep, beam, threads)
    if dep.runtime == "ctranslate2":
        return lambda sources, bs: tr.translate_ids(sources, batch_size=bs)
    return lambda sources, bs: [[int(t) for t in h.tokens[:-1]]
                                for h in translate_dataset(tr, sources, batch_size=bs, pad=tr.pad)]


def race(runners: dict, sources: list, bs: int, chunk: int, name: str, samples: list) -> dict:
    """Interleaved chunks, rotating engine order; returns ``{engine: (seconds, hypotheses)}``."""
    from hat.runtime import generation_order
    order = generation_order([len(s) for s in sources]).tolist()
    engines = list(runners)
    total, out = {e: 0.0 for e in engines}, {e: [None] * len(sources) for e in engines}
    for e in engines:
        runners[e]([sources[i] for i in order[:2]], bs)  # warm-up (allocations, session init)
    for c, start in enumerate(range(0, len(sources), chunk)):
        ids = order[start:start + chunk]
        for e in engines[c % len(engines):] + engines[:c % len(engines)]:
            before, t = os.getloadavg(), time.perf_counter()
            hyps = runners[e]([sources[i] for i in ids], bs)
            dt = time.perf_counter() - t
            total[e] += dt
            for i, h in zip(ids, hyps):
                out[e][i] = h
            samples.append({"model": name, "batch_size": bs, "engine": e, "chunk": c, "sentences": len(ids),
                            "seconds": round(dt, 4), "loadavg_before": before, "loadavg_after": os.getloadavg()})
        print(f"{name} batch {bs} chunk {c}: " + ", ".join(f"{e} {total[e]:.1f}s" for e in engines),
              file=sys.stderr, flush=True)
    return {e: (total[e], out[e]) for e in engines}


def is_ort_run(function: str) -> bool:
    """Whether a cProfile row is one of ONNX Runtime's graph calls (``run`` or ``run_with_ort_values``)."""
    return "onnxruntime_pybind11_state" in function and re.search(r"\.run(_with_ort_values)?>", function) is not None


def profile_hat(dep, sources: list, beam: int, threads: int) -> dict:
    """cProfile of hat's runtime at batch 1: wall time, the share inside ONNX Runtime's graph calls, top functions."""
    run = engine_runner(dep, beam, threads)
    run(sources[:2], 1)
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    run(sources, 1)
    prof.disable()
    wall = time.perf_counter() - t
    rows = [{"function": f"{Path(f).name}:{line}({fn})", "calls": nc, "own_s": round(tt, 4), "cumulative_s": round(ct, 4)}
            for (f, line, fn), (_, nc, tt, ct, _) in pstats.Stats(prof).stats.items()]
    # the graph calls: the pybind11 builtins behind InferenceSession.run / run_with_ort_values, own time (the C++ work
    # shows as the builtin's own time; cProfile names them "<built-in method onnxruntime...pybind11_state.run...>")
    ort = sum(r["own_s"] for r in rows if is_ort_run(r["function"]))
    return {"sentences": len(sources), "wall_s": round(wall, 3), "ort_run_s": round(ort, 3),
            "outside_ort_share": round(1 - ort / wall, 4) if wall else None, "loadavg": os.getloadavg(),
            "top_own": sorted(rows, key=lambda r: -r["own_s"])[:25]}


def race_model(name: str, ckpt: str, args, codec, lines, refs, samples) -> tuple[list, dict]:
    import sacrebleu

    from hat.latency.deployed import export_deployments
    deps = {e: d for d in export_deployments(name, ckpt, args.data, Path(args.work)) for e, rq in ENGINES.items()
            if (d.runtime, d.quantize) == rq and e in args.engines}
    sources = [codec.encode_source(s) for s in lines]
    runners = {e: engine_runner(d, args.beam, args.threads) for e, d in deps.items()}
    results = []
    for bs in args.batch_sizes:
        timed = race(runners, sources, bs, args.chunk, name, samples)
        for e, (seconds, hyps) in timed.items():
            bleu = sacrebleu.corpus_bleu([codec.decode_target(h) for h in hyps], [refs]).score
            row = {"model": name, "batch_size": bs, "engine": e, "sentences": len(sources), "seconds": round(seconds, 3),
                   "sentences_per_s": round(len(sources) / seconds, 2), "sacrebleu": round(bleu, 2)}
            for ref_e in ("hat_fp32", "ct2_fp32"):
                if ref_e in timed and ref_e != e:
                    row[f"same_as_{ref_e}"] = round(sum(a == b for a, b in zip(hyps, timed[ref_e][1])) / len(hyps), 4)
            results.append(row)
    profile = profile_hat(deps["hat_fp32"], sources[:args.profile], args.beam, args.threads) \
        if args.profile and "hat_fp32" in deps else None
    return results, profile


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT")
    p.add_argument("--data", required=True, help="binarized data dir with dict.SRC.txt, dict.TGT.txt, spm.model")
    p.add_argument("--raw", required=True, help="raw test prefix: PREFIX.SRC[.gz] and PREFIX.TGT[.gz] (references)")
    p.add_argument("--src", default="de")
    p.add_argument("--tgt", default="en")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-sizes", default="1,32", type=lambda v: [int(x) for x in v.split(",") if x.strip()])
    p.add_argument("--engines", default=",".join(ENGINES), type=lambda v: [e for e in v.split(",") if e])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--chunk", type=int, default=100, help="sentences per interleaving chunk")
    p.add_argument("--max-sentences", type=int, default=0, help="first N sentences only (0 = all)")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile hat fp32, batch 1, N sentences")
    p.add_argument("--work", default=tempfile.mkdtemp(prefix="hat_race_"), help="where the exports go")
    p.add_argument("--name", default="ctranslate2_race", help="raw record benchmarks/results/<name>.json")
    args = p.parse_args(argv)
    from hat.data.textio import read_lines, resolve_text
    from hat.runtime import TextCodec, Vocabulary
    data = Path(args.data)
    codec = TextCodec(Vocabulary.load(data / f"dict.{args.src}.txt"), Vocabulary.load(data / f"dict.{args.tgt}.txt"),
                      data / "spm.model")
    n = args.max_sentences or None
    lines, refs = (list(read_lines(resolve_text(args.raw, lang), n)) for lang in (args.src, args.tgt))
    rec = RunRecord(args.name)
    samples, results, profiles = [], [], {}
    for spec in args.model:
        name, ckpt = spec.split("=", 1)
        rows, profiles[name] = race_model(name, ckpt, args, codec, lines, refs, samples)
        results += rows
    print("| model | batch | engine | sentences/s | x CT2 fp32 | SacreBLEU | same hyp as hat fp32 |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        ct2 = next((x for x in results if (x["model"], x["batch_size"], x["engine"]) ==
                    (r["model"], r["batch_size"], "ct2_fp32")), None)
        r["x_ct2_fp32"] = round(r["sentences_per_s"] / ct2["sentences_per_s"], 3) if ct2 else None
        print(f"| {r['model']} | {r['batch_size']} | {r['engine']} | {r['sentences_per_s']:.1f} | "
              f"{r['x_ct2_fp32'] or '-'} | {r['sacrebleu']:.2f} | {100 * r.get('same_as_hat_fp32', 1.0):.1f}% |")
    for name, prof in profiles.items():
        if prof:
            print(f"{name}: hat fp32 batch 1 under cProfile {prof['wall_s']} s, ONNX Runtime graph calls "
                  f"{prof['ort_run_s']} s, outside them {100 * prof['outside_ort_share']:.1f}%")
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary={'results': results, 'profile': profiles})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
