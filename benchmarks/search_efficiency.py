"""Search efficiency: HAT's search settings vs ours on the same trained SuperTransformer, same latency budget.

HAT (``configs/search/hat.yaml``): every population member re-scored each iteration (no cache) on the full
validation set, duplicates allowed. Ours (``configs/search/fast.yaml``): fitness cache by config, duplicate-free
populations, candidates scored in batches on a fixed seeded validation subset. Both run HAT's evolution (125 = 25 +
50 + 50, p = 0.3, 30 iterations) from the same seed and the same latency predictor. The best config of each is then
re-scored on the FULL validation set (a fair "best inherited loss"). Goal, per seed: ours reaches an equal or better
loss in at most 1/5 of HAT's time.

Several seeds, sides alternated (seed 1: HAT then ours, seed 2: ours then HAT, ...) so that a slow or fast stretch of
a shared machine does not always hit the same side. Every (side, seed) run logs each iteration
(``<work-dir>/<side>_seed<S>.log.jsonl``) and resumes from it; a finished run leaves ``<side>_seed<S>.json`` and is
skipped on a rerun. The raw record (every run, every iteration) goes to ``benchmarks/results/search_efficiency.json``
after each finished run.

Choosing the subset size (``--choose-subset 50,100,150,300,500``) must use a seed and a budget that are NOT reported:
it runs ours with the FULL validation set for ``--select-iterations`` iterations, takes the ``--select-configs``
best distinct configs it scored (competitive configs, the ones whose order the search must get right), scores them
on each subset and reports the Kendall tau against the full-set order; the rule, fixed before the run, is the
smallest size with tau >= ``--select-tau`` (else the largest size tried). Its record goes to
``benchmarks/results/search_efficiency_subset_choice.json``.

Usage::

    python benchmarks/search_efficiency.py --supernet runs/search_eff/supernet/checkpoint_best.pt \
        --data runs/search_eff/data-bin --predictor runs/search_eff/predictor_cpu.pt --latency 20ms --seeds 1,2

``--iterations`` shortens both searches alike (for a quick look); the acceptance numbers use the default 30.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import RunRecord, load_average  # noqa: E402


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall tau-b of two equally long sequences (ties in either count as neither concordant nor discordant)."""
    n, conc, disc, ta, tb = len(a), 0, 0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ta += 1
            elif db == 0:
                tb += 1
            elif (da > 0) == (db > 0):
                conc += 1
            else:
                disc += 1
    denom = ((conc + disc + ta) * (conc + disc + tb)) ** 0.5
    return (conc - disc) / denom if denom else 0.0


class Bench:
    """The shared inputs: model, data, predictor, budget and the (lazily built) full-validation-set scorer."""

    def __init__(self, args):
        import torch
        torch.set_num_threads(args.threads)
        from hat.units import parse_latency_ms
        from hat.data import infer_langs, load_split
        from hat.predictor import load_predictor
        from hat.search.scoring import make_predictor_latency_fn
        from hat.checkpoints import load_model
        self.args = args
        self.budget = parse_latency_ms(args.latency)
        self.model, _ = load_model(args.supernet)
        self.model.eval()
        predictor = load_predictor(args.predictor)
        predictor.check_space(self.model.space)
        src, tgt = infer_langs(args.data, args.split, args.src_lang, args.tgt_lang)
        self.ds = load_split(args.data, args.split, src, tgt)
        self.latency_fn = make_predictor_latency_fn(predictor)
        self._full = None

    def full_score(self, configs):
        from hat.search.scoring import make_supernet_score_fn, make_valid_batches
        if self._full is None:
            self._full = make_supernet_score_fn(self.model, make_valid_batches(self.ds, range(len(self.ds)), 4096))
        return self._full(configs)

    def settings(self, cfg_name: str):
        from hat.search import load_settings
        s = load_settings(cfg_name)
        return dataclasses.replace(s, iterations=self.args.iterations) if self.args.iterations else s


def run_side(b: Bench, side: str, cfg_name: str, seed: int, work: Path) -> dict:
    """One resumable search; returns (and stores) its row."""
    from hat.search import FitnessCache, evolution_search
    from hat.search.log import SearchLog
    from hat.search.scoring import make_supernet_score_fn, make_valid_batches, valid_subset_indices
    done = work / f"{side}_seed{seed}.json"
    if done.is_file():
        print(f"[{side} seed {seed}] finished already ({done})", flush=True)
        return json.loads(done.read_text())
    s = b.settings(cfg_name)
    log_path = work / f"{side}_seed{seed}.log.jsonl"
    resumed = log_path.is_file() and log_path.stat().st_size > 0
    header = {"side": side, "settings": dataclasses.asdict(s), "seed": seed, "budget_ms": b.budget,
              "supernet": str(b.args.supernet), "predictor": str(b.args.predictor), "data": str(b.args.data)}
    log = SearchLog(log_path, header, resume=True)
    load0 = load_average()
    t0, c0 = time.perf_counter(), time.process_time()
    idx = valid_subset_indices(len(b.ds), s.valid_subset, s.valid_subset_seed)
    batches = make_valid_batches(b.ds, idx, s.valid_max_tokens)  # data preparation is part of the cost
    prep_s = time.perf_counter() - t0
    cache = FitnessCache(make_supernet_score_fn(b.model, batches), enabled=s.cache)
    r = evolution_search(b.model.space, cache, b.latency_fn, b.budget, s, random.Random(seed), log=log,
                         progress=True, desc=f"{side} seed {seed}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    history = [dataclasses.asdict(h) for h in r.history]
    full_loss = b.full_score([r.best])[0]
    row = {"side": side, "settings": cfg_name, "seed": seed, "budget_ms": b.budget,
           # A resumed run's wall time is its scoring time summed over iterations plus data preparation (the
           # breeding of children between iterations, a few ms, is then left out).
           "wall_s": wall if not resumed else prep_s + sum(h["seconds"] for h in history),
           # CPU seconds of this process (of this invocation only when resumed): on a shared machine less
           # sensitive to other jobs than wall time.
           "cpu_s": cpu, "resumed": resumed, "scoring_s": sum(h["seconds"] for h in history), "prep_s": prep_s,
           # Totals of the whole search (a resumed search restores the logged counters first).
           "evaluations": r.evaluations, "cache_hits": r.cache_hits,
           "valid_sentences": len(idx), "search_loss": r.best_loss, "full_valid_loss": full_loss,
           "predicted_latency_ms": r.best_latency_ms, "subnet": r.best.to_dict(), "iterations": history,
           "load_average_start": load0, "load_average_end": load_average()}
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=1))
    tmp.replace(done)
    print(f"[{side} seed {seed}] {row['wall_s']:.1f} s, {row['evaluations']} scored, full-valid loss "
          f"{full_loss:.4f}", flush=True)
    return row


def compare(args) -> int:
    b = Bench(args)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    seeds = [int(x) for x in args.seeds.split(",")]
    rec = RunRecord("search_efficiency", out=args.results)
    sides = (("hat", args.hat_config), ("ours", args.fast_config))
    order = [(side, cfg, seed) for k, seed in enumerate(seeds)
             for side, cfg in (sides if k % 2 == 0 else sides[::-1])]
    todo = order
    if args.runs:  # a share of the work (e.g. one process per core); the record still collects every finished run
        cfgs = dict(sides)
        try:
            todo = [(side, cfgs[side], int(seed)) for side, seed in (x.split(":") for x in args.runs.split(","))]
        except (KeyError, ValueError):
            print(f"--runs {args.runs!r}: expected SIDE:SEED,... with SIDE hat or ours", file=sys.stderr)
            return 2
    rows: list[dict] = []
    summary: dict = {}
    for side, cfg, seed in todo:
        run_side(b, side, cfg, seed, work)
        # Every finished run of the protocol, in protocol order, whichever process ran it.
        rows = [json.loads((work / f"{sd}_seed{se}.json").read_text()) for sd, _, se in order
                if (work / f"{sd}_seed{se}.json").is_file()]
        summary = summarize(rows, seeds)
        rec.write(args=vars(args), samples=rows, summary=summary, complete=len(rows) == 2 * len(seeds),
                  budget_ms=b.budget, validation_sentences=len(b.ds))
    print(f"\nbudget {b.budget:g} ms, {len(b.ds)} validation sentences, iterations "
          f"{args.iterations or 'as in the settings files'}")
    print(f"{'seed':>4s} {'side':6s} {'wall s':>9s} {'evals':>7s} {'hits':>6s} {'sents':>6s} "
          f"{'loss (full valid)':>18s} {'pred ms':>8s}")
    for r in rows:
        print(f"{r['seed']:4d} {r['side']:6s} {r['wall_s']:9.1f} {r['evaluations']:7d} {r['cache_hits']:6d} "
              f"{r['valid_sentences']:6d} {r['full_valid_loss']:18.4f} {r['predicted_latency_ms']:8.2f}")
    for seed, s in summary["per_seed"].items():
        print(f"seed {seed}: time ratio ours/hat = {s['ratio']:.3f} (goal <= 0.2); loss ours - hat = "
              f"{s['loss_diff']:+.4f} (goal <= 0): {'PASS' if s['pass'] else 'FAIL'}")
    print("all seeds: " + ("PASS" if summary["pass"] else "FAIL"))
    print(f"raw record: {rec.path}")
    return 0 if summary["pass"] else 1


def summarize(rows: list[dict], seeds: list[int]) -> dict:
    by = {(r["side"], r["seed"]): r for r in rows}
    per_seed = {}
    for seed in seeds:
        h, o = by.get(("hat", seed)), by.get(("ours", seed))
        if not (h and o):
            continue
        ratio = o["wall_s"] / h["wall_s"]
        diff = o["full_valid_loss"] - h["full_valid_loss"]
        per_seed[seed] = {"ratio": ratio, "cpu_ratio": o["cpu_s"] / h["cpu_s"] if h["cpu_s"] else None,
                          "loss_diff": diff, "pass": ratio <= 0.2 and diff <= 1e-9,
                          "hat_wall_s": h["wall_s"], "ours_wall_s": o["wall_s"],
                          "hat_full_valid_loss": h["full_valid_loss"], "ours_full_valid_loss": o["full_valid_loss"]}
    return {"per_seed": per_seed,
            "pass": len(per_seed) == len(seeds) and all(s["pass"] for s in per_seed.values())}


def choose_subset(args) -> int:
    """The subset-size choice on a seed and budget kept off the reported runs (see the module docstring)."""
    from hat.search import FitnessCache, evolution_search
    from hat.search.scoring import make_supernet_score_fn, make_valid_batches, valid_subset_indices
    b = Bench(args)
    if str(args.seed) in args.seeds.split(","):
        print(f"--seed {args.seed} is one of the reported --seeds {args.seeds}: choose on another", file=sys.stderr)
        return 2
    rec = RunRecord("search_efficiency_subset_choice", out=args.results)
    s = dataclasses.replace(b.settings(args.fast_config), valid_subset=None, iterations=args.select_iterations)
    cache = FitnessCache(b.full_score, enabled=True)
    t0 = time.perf_counter()
    evolution_search(b.model.space, cache, b.latency_fn, b.budget, s, random.Random(args.seed), progress=True,
                     desc="full-set search")
    search_s = time.perf_counter() - t0
    # Rank the most competitive configs: the best --select-configs of everything the search scored (full set).
    pop = list(cache.configs.values())
    full = [cache.losses[c.key()] for c in pop]
    order = sorted(range(len(pop)), key=lambda i: full[i])[:args.select_configs]
    pop, full = [pop[i] for i in order], [full[i] for i in order]
    fast = b.settings(args.fast_config)
    samples = []
    chosen = None
    for n in [int(x) for x in args.choose_subset.split(",")]:
        idx = valid_subset_indices(len(b.ds), n, fast.valid_subset_seed)
        t1 = time.perf_counter()
        sub = make_supernet_score_fn(b.model, make_valid_batches(b.ds, idx, fast.valid_max_tokens))(pop)
        tau = kendall_tau(full, sub)
        best_by_sub = min(range(len(pop)), key=lambda i: sub[i])
        samples.append({"valid_subset": n, "kendall_tau": tau, "seconds": time.perf_counter() - t1,
                        "regret_full_loss": full[best_by_sub] - min(full), "subset_losses": sub})
        print(f"subset {n:5d}: Kendall tau {tau:.3f}, full-set regret of its best "
              f"{samples[-1]['regret_full_loss']:.4f}",
              flush=True)
        if chosen is None and tau >= args.select_tau:
            chosen = n
    if chosen is None:  # no size ranks well enough: the largest one tried
        chosen = max(x["valid_subset"] for x in samples)
    summary = {"rule": f"smallest size with Kendall tau >= {args.select_tau} (else the largest tried)",
               "chosen": chosen,
               "configs": len(pop), "search_s": search_s, "seed": args.seed, "budget_ms": b.budget}
    rec.write(args=vars(args), samples=samples, summary=summary, configs=[c.to_dict() for c in pop],
              full_losses=full)
    print(f"chosen: {chosen} ({summary['rule']}); record: {rec.path}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", required=True)
    p.add_argument("--data", required=True, help="binarized data directory (the supernet's)")
    p.add_argument("--predictor", required=True)
    p.add_argument("--latency", required=True, help="budget, e.g. 30ms")
    p.add_argument("--src-lang")
    p.add_argument("--tgt-lang")
    p.add_argument("--split", default="valid")
    p.add_argument("--seeds", default="1,2", help="reported seeds, comma-separated (sides alternate per seed)")
    p.add_argument("--runs", help="run only these (side, seed) runs, in this order, e.g. hat:1,hat:2 (to share the "
                   "work between processes); the record collects every finished run of --seeds")
    p.add_argument("--iterations", type=int, help="override both settings' iterations (quick look)")
    p.add_argument("--hat-config", default="hat")
    p.add_argument("--fast-config", default="fast")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work-dir", default="runs/search_eff/runs", help="per-run logs and results (resume)")
    p.add_argument("--results",
                   help="raw record path (default benchmarks/results/search_efficiency[_subset_choice].json)")
    p.add_argument("--choose-subset", metavar="SIZES", help="choose fast.yaml's valid_subset instead (see above)")
    p.add_argument("--seed", type=int, default=0, help="with --choose-subset: the selection seed (not reported)")
    p.add_argument("--select-iterations", type=int, default=5)
    p.add_argument("--select-configs", type=int, default=100)
    p.add_argument("--select-tau", type=float, default=0.9)
    args = p.parse_args(argv)
    return choose_subset(args) if args.choose_subset else compare(args)


if __name__ == "__main__":
    sys.exit(main())
