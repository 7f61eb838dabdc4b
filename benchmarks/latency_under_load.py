"""Latency under load: the same SubTransformers measured idle and next to 1, 2 and 3 background busy loops.

For each load level (number of busy-loop processes this script starts, bounds in time and stops by PID) and each
timer (``wall``, ``thread_cpu``), every config is measured with ``device_profiling/runner.py`` (the code behind the
``cpu`` device: ONNX Runtime, 1 intra-op thread, interleaved rounds), ``--runs`` times. The estimators
(``trimmed_mean``, ``median``, ``min``) are computed afterwards from the same raw runs. Reported against the idle
run (same timer and estimator): the median / p90 / max per-config relative deviation, the run-to-run CV per config
(median over configs), and the held-out MAPE of a latency predictor (CostLinear on per-layer features) fit on 80 %
of the configs and tested on the other 20 % (split with a seeded RNG before anything is measured or chosen), both
against the same condition's measurements and against the idle ones.

Full run (the lead runs it on a quiet machine; ~10-15 min on 2 cores)::

    PYTHONPATH=. python benchmarks/latency_under_load.py --out benchmarks/results/latency_under_load.json

Smoke test: ``--quick`` (12 configs, 3 repeats, loads 0 and 3). Without ``--resume`` a run starts afresh and
overwrites ``--out``; ``--resume`` continues an interrupted run (keeps the passes already in ``--out``). Exported
models are cached in ``--cache-dir``. ``--analyse-only`` recomputes the table; ``--compare A B`` compares two runs of
the same configs (e.g. ``--interleave 1`` vs ``10``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ESTIMATORS = ("trimmed_mean", "median", "min")
BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"


def start_busy(n: int, max_s: float) -> list[subprocess.Popen]:
    """``n`` busy-loop processes that end by themselves after ``max_s`` seconds (own session each)."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(max_s)], start_new_session=True)
            for _ in range(n)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()


def export_all(configs, settings, qkv_dim: int, cache: Path) -> list[str]:
    """Export each config once (cached by its key, so reruns and --resume reuse them)."""
    from tqdm import tqdm

    from hat.latency.backends.onnxruntime import export_subnet
    dirs = []
    for c in tqdm(configs, desc="export", unit="config"):
        name = hashlib.sha1(f"{c.to_json()} {settings.vocab_size} {qkv_dim}".encode()).hexdigest()[:16]
        d = cache / name
        if not (d / "meta.json").is_file():
            export_subnet(c, settings, qkv_dim, str(d))
        dirs.append(str(d))
    return dirs


def measure_pass(runner, dirs, settings: dict, interleave: int) -> list[dict]:
    out = []
    for i in range(0, len(dirs), interleave):
        for enc, dec in runner.measure_many(dirs[i:i + interleave], settings):
            out.append({"encoder_ms": enc, "decoder_ms": dec})
    return out


def totals(pass_rows, estimator: str, trim: float) -> list[float]:
    from hat.latency.protocol import summarize
    return [summarize(r["encoder_ms"], estimator, trim)[0] + summarize(r["decoder_ms"], estimator, trim)[0]
            for r in pass_rows]


def heldout_mape(space, configs, y, train_idx, test_idx, y_truth=None) -> float:
    """Fit CostLinear (per-layer features) on ``train_idx`` rows of ``y``; MAPE on ``test_idx`` against
    ``y_truth`` (default ``y``)."""
    import numpy as np

    from hat.predictor.features import FeatureSchema
    from hat.predictor.models import CostLinear
    schema = FeatureSchema.for_space("layers", space)
    X = schema.from_configs(configs)
    y = np.asarray(y, dtype=np.float64)
    truth = y if y_truth is None else np.asarray(y_truth, dtype=np.float64)
    model = CostLinear().fit(X[train_idx], y[train_idx])
    pred = model.predict(X[test_idx])
    return float(np.mean(np.abs(pred - truth[test_idx]) / truth[test_idx]))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def analyse(data: dict, space, configs) -> list[dict]:
    """One row per (timer, estimator, load): deviation from idle, run-to-run CV, held-out MAPE."""
    trim = data["settings"]["trim"]
    n = len(configs)
    rng = random.Random(data["split_seed"])
    order = list(range(n))
    rng.shuffle(order)
    n_test = max(1, n // 5)
    test_idx, train_idx = sorted(order[:n_test]), sorted(order[n_test:])
    passes = data["passes"]
    rows = []
    for timer in data["timers"]:
        for est in ESTIMATORS:
            def runs(load):
                return [totals(p["rows"], est, trim) for p in passes
                        if p["timer"] == timer and p["load"] == load]
            idle_runs = runs(0)
            if not idle_runs:
                continue
            idle = idle_runs[0]
            idle_mape = heldout_mape(space, configs, idle, train_idx, test_idx)
            for load in data["loads"]:
                rr = runs(load)
                if not rr:
                    continue
                # Deviation: first run of this load vs the first idle run (for load 0: the second idle run).
                cur = rr[1] if load == 0 and len(rr) > 1 else rr[0]
                dev = [abs(a / b - 1) for a, b in zip(cur, idle)] if (load or len(rr) > 1) else []
                cv = [statistics.pstdev(v) / statistics.fmean(v) for v in zip(*rr)] if len(rr) > 1 else []
                mape = heldout_mape(space, configs, cur, train_idx, test_idx)
                mape_vs_idle = heldout_mape(space, configs, cur, train_idx, test_idx, y_truth=idle)
                rows.append({
                    "timer": timer, "estimator": est, "load": load, "runs": len(rr),
                    "median_ms": statistics.median(cur),
                    "dev_median": statistics.median(dev) if dev else None,
                    "dev_p90": pct(dev, 0.9) if dev else None, "dev_max": max(dev) if dev else None,
                    "deviation_per_config": dev,
                    "cv_median": statistics.median(cv) if cv else None,
                    "mape_heldout": mape, "mape_heldout_vs_idle": mape_vs_idle, "mape_idle": idle_mape,
                    "mape_ratio": mape / idle_mape if idle_mape > 0 else None,
                })
    return rows


def compare(a_path: str, b_path: str) -> None:
    a, b = json.loads(Path(a_path).read_text()), json.loads(Path(b_path).read_text())
    n = min(a["samples"], b["samples"])
    if a["configs"][:n] != b["configs"][:n]:
        raise SystemExit("the two files measured different configs")
    for est in ESTIMATORS:
        runs = {}
        for name, d in (("A", a), ("B", b)):
            ps = sorted(d["passes"], key=lambda p: (p["load"], p["timer"], p["run"]))
            runs[name] = [totals(p["rows"][:n], est, d["settings"]["trim"]) for p in ps]
        line = {"estimator": est}
        for r in range(min(len(runs["A"]), len(runs["B"]))):
            line[f"median_ratio_B_over_A_run{r}"] = round(statistics.median(
                x / y for x, y in zip(runs["B"][r], runs["A"][r])), 4)
        for name in ("A", "B"):
            if len(runs[name]) > 1:
                line[f"cv_median_{name}"] = round(statistics.median(
                    statistics.pstdev(v) / statistics.fmean(v) for v in zip(*runs[name])), 4)
                line[f"dev_median_{name}"] = round(statistics.median(
                    abs(x / y - 1) for x, y in zip(runs[name][1], runs[name][0])), 4)
        print(json.dumps(line))
    for name, d in (("A", a), ("B", b)):
        for p in d["passes"]:
            print(f"{name}: interleave {d['settings']['interleave']} run {p['run']} started {p['started']} "
                  f"loadavg {p['loadavg_before'][0]:.1f} -> {p['loadavg_after'][0]:.1f}, {p['wall_s']:.0f} s")


def table(rows) -> str:
    def f(x, spec=".1%"):
        return "-" if x is None else format(x, spec)
    out = ["| timer | estimator | busy loops | median ms | dev. median | dev. p90 | dev. max | run-to-run CV | "
           "held-out MAPE | x idle MAPE | MAPE vs idle truth |", "|" + "---|" * 11]
    for r in rows:
        out.append(f"| {r['timer']} | {r['estimator']} | {r['load']} | {r['median_ms']:.2f} | {f(r['dev_median'])} | "
                   f"{f(r['dev_p90'])} | {f(r['dev_max'])} | {f(r['cv_median'], '.3f')} | "
                   f"{f(r['mape_heldout'], '.3f')} | {f(r['mape_ratio'], '.2f')} | "
                   f"{f(r['mape_heldout_vs_idle'], '.3f')} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="multi30k_tiny")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7, help="config sampling seed")
    ap.add_argument("--split-seed", type=int, default=0, help="80/20 predictor split seed")
    ap.add_argument("--loads", type=int, nargs="+", default=[0, 1, 2, 3], help="busy-loop processes per level")
    ap.add_argument("--timers", nargs="+", default=["wall", "thread_cpu"])
    ap.add_argument("--runs", type=int, default=2, help="passes per (load, timer)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--interleave", type=int, default=10)
    ap.add_argument("--vocab-size", type=int, default=10000)
    ap.add_argument("--settle-s", type=float, default=2.0, help="pause after starting / stopping busy loops")
    ap.add_argument("--busy-max-s", type=float, default=900.0,
                    help="busy loops end by themselves after this long (they are stopped after each pass anyway)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 12 configs, 3 repeats, loads 0 3, 1 run")
    ap.add_argument("--cache-dir", default="/tmp/hat_latency_under_load")
    ap.add_argument("--out", default="benchmarks/results/latency_under_load.json")
    ap.add_argument("--resume", action="store_true", help="keep the passes already in --out")
    ap.add_argument("--analyse-only", action="store_true", help="recompute the summary of --out (no measuring)")
    ap.add_argument("--compare", nargs=2, metavar=("A_JSON", "B_JSON"),
                    help="compare two outputs of the same configs (e.g. --interleave 1 vs 10, idle, both with "
                         "--runs 2): per-config latency ratio B/A per run, run-to-run CV and deviation of each")
    args = ap.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    if args.quick:
        args.samples, args.repeats, args.warmup, args.loads, args.runs = 12, 3, 1, [0, 3], 1
        args.interleave = min(args.interleave, 4)
        if args.out == ap.get_default("out"):
            args.out = "benchmarks/results/latency_under_load_quick.json"

    if args.analyse_only:
        from hat.space import SubnetConfig, load_space
        out = Path(args.out)
        data = json.loads(out.read_text())
        configs = [SubnetConfig.from_json(c) for c in data["configs"]]
        data["summary"] = analyse(data, load_space(data["space"]), configs)
        out.write_text(json.dumps(data))
        print(table(data["summary"]))
        return

    import onnxruntime

    from hat.latency.backends.onnxruntime import load_runner
    from hat.latency.profiler import sample_configs
    from hat.latency.protocol import ProfileSettings
    from hat.space import load_space
    space = load_space(args.space)
    configs = sample_configs(space, args.samples, seed=args.seed, widen=True)
    settings = ProfileSettings(warmup=args.warmup, repeats=args.repeats, vocab_size=args.vocab_size,
                               interleave=args.interleave)
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    dirs = export_all(configs, settings, space.qkv_dim, cache)
    runner = load_runner()

    out = Path(args.out)
    data = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "space": space.name, "samples": len(configs), "seed": args.seed, "split_seed": args.split_seed,
        "configs": [c.to_json() for c in configs], "loads": args.loads, "timers": args.timers,
        "settings": dict(settings.to_json_dict(), threads=1),
        "host": runner.host_info(), "cores": os.cpu_count(), "python": platform.python_version(),
        "versions": {"onnxruntime": onnxruntime.__version__}, "passes": [],
    }
    if args.resume and out.is_file():
        old = json.loads(out.read_text())
        if old.get("configs") == data["configs"] and old.get("settings") == data["settings"]:
            data["passes"] = old["passes"]
    done = {(p["load"], p["timer"], p["run"]) for p in data["passes"]}
    # Order: all idle runs first and last (drift shows up as idle run-to-run CV), loads in between; timers
    # alternate within a load level so both see the same conditions.
    plan = []
    for run in range(args.runs):
        for load in (args.loads if run % 2 == 0 else list(reversed(args.loads))):
            for timer in args.timers:
                plan.append((load, timer, run))
    for load, timer, run in plan:
        if (load, timer, run) in done:
            continue
        busy = start_busy(load, max_s=args.busy_max_s) if load else []
        try:
            if load:
                time.sleep(args.settle_s)
            before = os.getloadavg()
            started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            t0 = time.monotonic()
            rows = measure_pass(runner, dirs, dict(data["settings"], timer=timer), args.interleave)
            wall_s = time.monotonic() - t0
            alive = sum(p.poll() is None for p in busy)
            after = os.getloadavg()
        finally:
            stop_busy(busy)
        data["passes"].append({"load": load, "timer": timer, "run": run, "loadavg_before": before,
                               "loadavg_after": after, "busy_alive_at_end": alive, "wall_s": wall_s,
                               "started": started,
                               "rows": rows})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data))
        print(f"load {load} timer {timer} run {run}: {wall_s:.0f} s, loadavg {before[0]:.2f} -> {after[0]:.2f}"
              + (f", busy loops alive at end {alive}/{load}" if load else ""), flush=True)
        if load:
            time.sleep(args.settle_s)
    data["summary"] = analyse(data, space, configs)
    out.write_text(json.dumps(data))
    print(table(data["summary"]))
    print(f"raw JSON: {out}")


if __name__ == "__main__":
    main()
