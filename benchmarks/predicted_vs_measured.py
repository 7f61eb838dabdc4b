"""A registered latency predictor against latencies measured elsewhere: does it predict what a user gets?

Reads the rows of a ``benchmarks/protocol_race.py`` record (each architecture's subnet and its measured
whole-decode latency per engine) and predicts each with a predictor file; prints and records the error per row,
the MAPE and Kendall tau. Nothing is timed here. Raw JSON: ``benchmarks/results/predicted_vs_measured_<name>.json``.

    python benchmarks/predicted_vs_measured.py --predictor latency_predictors/multi30k_cpu_cpu_ort.pt \\
        --engine hat_fp32 --name multi30k_cpu_cpu_ort
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import RunRecord  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def kendall_tau(xs: list[float], ys: list[float]) -> float:
    pairs = [(i, j) for i in range(len(xs)) for j in range(i + 1, len(xs))]
    s = sum((xs[i] - xs[j]) * (ys[i] - ys[j]) > 0 for i, j in pairs) - \
        sum((xs[i] - xs[j]) * (ys[i] - ys[j]) < 0 for i, j in pairs)
    return s / len(pairs) if pairs else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--predictor", required=True)
    p.add_argument("--race", default=str(ROOT / "benchmarks" / "results" / "protocol_race.json"))
    p.add_argument("--engine", default="hat_fp32", help="which measured column (protocol_race's engines)")
    p.add_argument("--name", required=True, help="raw record predicted_vs_measured_<name>.json")
    args = p.parse_args(argv)
    from hat.predictor import load_predictor
    from hat.space import SubnetConfig
    race = json.loads(Path(args.race).read_text())["summary"]
    pred = load_predictor(args.predictor)
    rows = []
    for r in race["rows"]:
        if r.get(args.engine) is None:
            continue
        ms = float(pred.predict_ms([SubnetConfig.from_dict(race["subnets"][r["model"]])])[0])
        rows.append({"model": r["model"], "measured_ms": r[args.engine], "predicted_ms": ms,
                     "error": ms / r[args.engine] - 1})
    print(f"| model | measured ms ({args.engine}) | predicted ms | error |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['measured_ms']:.2f} | {r['predicted_ms']:.2f} | {r['error']:+.1%} |")
    mape = sum(abs(r["error"]) for r in rows) / len(rows)
    tau = kendall_tau([r["measured_ms"] for r in rows], [r["predicted_ms"] for r in rows])
    print(f"MAPE {mape:.3f}, Kendall tau {tau:.2f} over {len(rows)} architectures")
    rec = RunRecord(f"predicted_vs_measured_{args.name}")
    print(f"raw record: {rec.write(args=vars(args), samples=rows, summary={'mape': mape, 'kendall_tau': tau})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
