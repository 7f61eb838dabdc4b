"""Acceptance benchmark: our default latency predictor vs HAT's MLP on HAT's published latency datasets.

Same protocol for both: each CSV's rows shuffled with ``random.Random(seed)`` and cut 80/10/10 (train / val /
test), seeds 0, 1, 2. HAT's MLP ignores the validation rows (its protocol keeps the last step); ours uses them for
model selection. Test metrics are printed per dataset and seed, then the per-dataset mean; the run fails (exit 1)
unless our mean test MAPE is lower than HAT's on every dataset.

Usage::

    python benchmarks/predictor_vs_hat.py [--data-dir ../shared/data/hat_latency] [--seeds 0 1 2] \
        [--models hat_mlp cost_linear] [--jobs 2] [--results results.jsonl]

``--results`` keeps finished (dataset, seed, model) runs, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def space_for(csv_name: str) -> str:
    return "iwslt14_space1" if "iwslt" in csv_name else "wmt14_space0"


def run_one(task: tuple) -> dict:
    path, seed, model = task
    import torch
    torch.set_num_threads(1)
    from hat.latency.records import read_latency_csv
    from hat.predictor import fit_predictor, split_indices
    from hat.space import load_space
    recs = read_latency_csv(path)
    tr, va, te = split_indices(len(recs), seed)
    t0 = time.time()
    p = fit_predictor([recs[i] for i in tr], Path(path).stem, load_space(space_for(Path(path).name)), model,
                      seed=seed, val_records=[recs[i] for i in va])
    fit_s = time.time() - t0
    m = p.evaluate([recs[i] for i in te])
    return {"dataset": Path(path).stem, "seed": seed, "model": model, "fit_s": round(fit_s, 2), **m}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "hat_latency"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["hat_mlp", "cost_linear"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--results", nargs="+", default=None,
                    help="JSONL file(s) of finished runs: resume from them (new runs go to the first)")
    ap.add_argument("--summarize-only", action="store_true", help="print the table from --results, run nothing")
    args = ap.parse_args(argv)
    files = sorted(Path(args.data_dir).glob("*.csv"))
    if not files:
        print(f"no CSV files in {args.data_dir}", file=sys.stderr)
        return 2
    done = []
    for path in args.results or []:
        if os.path.exists(path):
            done += [json.loads(line) for line in open(path) if line.strip()]
    done = list({(r["dataset"], r["seed"], r["model"]): r for r in done}.values())  # one run per key
    have = {(r["dataset"], r["seed"], r["model"]) for r in done}
    # seed-major order: a partial run still covers every dataset
    tasks = [(str(f), s, m) for s in args.seeds for f in files for m in args.models if (f.stem, s, m) not in have]
    if args.summarize_only:
        tasks = []
    results = list(done)
    out = open(args.results[0], "a") if args.results else None
    with mp.get_context("spawn").Pool(max(1, args.jobs)) as pool:
        for r in pool.imap_unordered(run_one, tasks):
            results.append(r)
            print(f"{r['dataset']:36s} seed {r['seed']} {r['model']:12s} rmse {r['rmse_ms']:9.2f} ms  "
                  f"mape {r['mape']:.4f}  acc10 {r['acc10']:.3f}  tau {r['kendall_tau']:.3f}  fit {r['fit_s']}s",
                  flush=True)
            if out:
                out.write(json.dumps(r) + "\n")
                out.flush()
    print("\nmean over seeds (test split):")
    ok = True
    ours = [m for m in args.models if m != "hat_mlp"]
    for f in files:
        line = f"{f.stem:36s}"
        means = {}
        for m in args.models:
            rs = [r for r in results if r["dataset"] == f.stem and r["model"] == m and r["seed"] in args.seeds]
            if not rs:
                continue
            means[m] = {k: float(np.mean([r[k] for r in rs])) for k in ("rmse_ms", "mape", "acc10", "kendall_tau")}
            line += (f" | {m}: rmse {means[m]['rmse_ms']:.2f} mape {means[m]['mape']:.4f} "
                     f"acc10 {means[m]['acc10']:.3f} tau {means[m]['kendall_tau']:.3f} (n_seeds={len(rs)})")
        print(line)
        if "hat_mlp" in means:
            for m in ours:
                if m in means and not means[m]["mape"] < means["hat_mlp"]["mape"]:
                    ok = False
    print("PASS: ours beats HAT's MLP on mean MAPE on every dataset" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
