"""The default ``hat-profile`` command under load: the same configs profiled idle and next to busy loops.

Where ``benchmarks/latency_under_load.py`` times pre-exported folders with the runner in-process, this one runs
the command a user runs (``hat-profile --space S --device D --samples N --seed 7``, a fresh CSV per pass), so every
difference between the two protocols shows: exports between measurements, the runner process, the defaults.

Passes alternate idle and loaded (idle, loaded, loaded, idle, ...) per device, so drift shows up in both. Per
config: deviation = |latency / latency of the first idle pass - 1|; summarized as the median over configs, for the
second idle pass (idle-vs-idle noise) and each loaded pass. Raw JSON (every row of every pass, load averages,
versions, command): ``benchmarks/results/profile_under_load.json``.

    python benchmarks/profile_under_load.py --devices cpu cpu_ct2 --samples 24 --busy 3 --runs 2

Stop your own training first (latency is never measured next to it): this script starts and stops only its own busy
loops.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency_under_load import start_busy, stop_busy  # noqa: E402
from record import RunRecord  # noqa: E402


def one_pass(device: str, space: str, samples: int, seed: int, extra: list[str]) -> tuple[list[dict], float]:
    """Run ``hat-profile`` once into a fresh CSV; returns its rows (subnet JSON -> ms) and the wall seconds."""
    from hat.latency.records import read_latency_csv
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "lat.csv"
        cmd = [str(Path(sys.executable).parent / "hat-profile"), "--space", space, "--device", device, "--samples",
               str(samples), "--seed", str(seed), "--out", str(out), *extra]
        t0 = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.monotonic() - t0
        rows = [{"subnet": r.subnet.to_json(), "latency_ms": r.latency_ms, "encoder_ms": r.latency_mean_encoder,
                 "decoder_ms": r.latency_mean_decoder, "timer": r.timer, "estimator": r.estimator}
                for r in read_latency_csv(out)]
    return rows, wall


def deviations(rows: list[dict], base: list[dict]) -> list[float]:
    ref = {r["subnet"]: r["latency_ms"] for r in base}
    return [abs(r["latency_ms"] / ref[r["subnet"]] - 1.0) for r in rows if r["subnet"] in ref]


def summarize(passes: list[dict]) -> list[dict]:
    """Per device and pass (after the first idle one): median and p90 deviation from the first idle pass."""
    out = []
    for dev in dict.fromkeys(p["device"] for p in passes):
        mine = [p for p in passes if p["device"] == dev]
        base = next(p for p in mine if p["busy"] == 0)
        for p in mine:
            if p is base:
                continue
            dv = sorted(deviations(p["rows"], base["rows"]))
            signed = [r["latency_ms"] / {b["subnet"]: b["latency_ms"] for b in base["rows"]}[r["subnet"]] - 1
                      for r in p["rows"]]
            out.append({"device": dev, "busy": p["busy"], "run": p["run"], "extra": p["extra"],
                        "median_dev": statistics.median(dv), "p90_dev": dv[int(0.9 * (len(dv) - 1))],
                        "median_signed": statistics.median(signed), "wall_s": p["wall_s"]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", nargs="+", default=["cpu", "cpu_ct2"])
    ap.add_argument("--space", default="multi30k_tiny")
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--busy", type=int, default=3, help="busy-loop processes in a loaded pass")
    ap.add_argument("--runs", type=int, default=2, help="loaded passes per device (as many idle ones beside them)")
    ap.add_argument("--extra", default="", help="more hat-profile arguments, e.g. '--interleave 4'")
    ap.add_argument("--name", default="profile_under_load", help="raw JSON: benchmarks/results/<name>.json")
    args = ap.parse_args()
    record = RunRecord(args.name)
    extra = args.extra.split()
    passes = []
    plan = [0] + [args.busy, 0] * args.runs  # idle first (the reference), then loaded / idle alternating
    for dev in args.devices:
        for i, busy in enumerate(plan):
            procs = start_busy(busy, max_s=1800) if busy else []
            try:
                if busy:
                    time.sleep(2)
                before = os.getloadavg()
                rows, wall = one_pass(dev, args.space, args.samples, args.seed, extra)
                after = os.getloadavg()
            finally:
                stop_busy(procs)
            passes.append({"device": dev, "busy": busy, "run": i, "extra": args.extra, "rows": rows, "wall_s": wall,
                           "loadavg_before": before, "loadavg_after": after})
            print(f"{dev} busy {busy} pass {i}: {wall:.0f} s, load {before[0]:.2f} -> {after[0]:.2f}", flush=True)
            time.sleep(2)
    summary = summarize(passes)
    for s in summary:
        print(f"{s['device']:8} busy {s['busy']} pass {s['run']}: median |dev| {s['median_dev']:.1%}, "
              f"p90 {s['p90_dev']:.1%}, median signed {s['median_signed']:+.1%}")
    path = record.write(samples=passes, summary={"passes": summary}, args=vars(args))
    print(f"raw JSON: {path}")


if __name__ == "__main__":
    main()
