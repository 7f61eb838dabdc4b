"""``hat-predictor``: fit and evaluate latency predictors.

Examples::

    hat-predictor fit --data lat.csv --device xeon --out xeon.pt [--model cost_linear] [--space wmt14_space0]
    hat-predictor fit --data rpi_30rows.csv --device rpi --out rpi.pt --init xeon.pt      # few-shot transfer
    hat-predictor eval --predictor xeon.pt --data test.csv --report r.json [--plot scatter.png]
    hat-predictor fit --data latency_predictors/data/cpu.csv --device cpu-xeon --out latency_predictors/cpu.pt --register
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from hat.cli.common import cli_main
from hat.errors import HatError
from hat.io import atomic_path, atomic_write_json

PROG = "hat-predictor"


def _parser() -> argparse.ArgumentParser:
    from hat.predictor.features import FEATURE_KINDS
    from hat.predictor.models import DEFAULT_MODEL, MODEL_KINDS
    ap = argparse.ArgumentParser(prog=PROG, description="Fit and evaluate latency predictors.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit a predictor on latency CSVs")
    f.add_argument("--data", nargs="+", required=True, help="latency CSV(s): HAT's published files or ours")
    f.add_argument("--device", required=True, help="device name stored in the predictor")
    f.add_argument("--out", required=True, help="predictor file to write (.pt)")
    f.add_argument("--model", default=DEFAULT_MODEL, choices=MODEL_KINDS)
    f.add_argument("--features", default=None, choices=FEATURE_KINDS, help="feature kind (default: per model)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--space", default=None,
                   help="search space name or YAML (default: iwslt14_space1 for iwslt files, else wmt14_space0)")
    f.add_argument("--init", default=None, help="predictor of another device to fine-tune from (few-shot transfer)")
    f.add_argument("--dedupe", action="store_true",
                   help="average rows that measured the same SubTransformer (default: keep them, with a warning)")
    f.add_argument("--register", action="store_true",
                   help="add the predictor to --index (only for our own measurements: rows need the subnet column)")
    f.add_argument("--index", default="latency_predictors/index.yaml")
    e = sub.add_parser("eval", help="evaluate a predictor on measured latencies")
    e.add_argument("--predictor", required=True)
    e.add_argument("--data", nargs="+", required=True)
    e.add_argument("--report", required=True, help="JSON report to write")
    e.add_argument("--plot", default=None, help="scatter plot (PNG) of predicted vs measured latency")
    return ap


def _read(paths: Sequence[str]):
    from hat.latency.records import read_latency_csv
    recs = []
    for p in paths:
        recs.extend(read_latency_csv(p))
    return recs


def _default_space(paths: Sequence[str]) -> str:
    return "iwslt14_space1" if any("iwslt" in Path(p).name.lower() for p in paths) else "wmt14_space0"


def _write_json(path: str, data: dict) -> None:
    atomic_write_json(path, data)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def register(index_path: str, out: str, pred, data: Sequence[str]) -> None:
    """Add (or replace, by device + space) an entry for ``pred`` in the predictor index YAML."""
    from hat.config import dump_yaml, load_yaml
    idx = Path(index_path)
    d = load_yaml(idx) if idx.is_file() else {}
    entries = [e for e in (d.get("predictors") or [])
               if not (e.get("device") == pred.device and e.get("space_fingerprint") == pred.space_fingerprint)]
    base = idx.parent.resolve()

    def rel(p):
        try:
            return os.path.relpath(Path(p).resolve(), base)
        except ValueError:
            return str(Path(p).resolve())
    split = "val" if pred.metrics.get("val") else "train"
    val = pred.metrics[split]
    entries.append({
        "device": pred.device, "space": pred.space_name, "space_fingerprint": pred.space_fingerprint,
        "path": rel(out), "model": pred.model_kind, "features": pred.feature_kind,
        "data": [{"file": rel(p), "sha256": _sha256(p)} for p in data],
        "n_train": int(pred.train.get("n_train", 0)), "n_val": int(pred.train.get("n_val", 0)),
        "metrics_split": split,  # "val" = held-out rows; "train" = too few rows to hold any out
        "mape": round(float(val["mape"]), 5), "kendall_tau": round(float(val["kendall_tau"]), 4),
        "acc10": round(float(val["acc10"]), 4),
        "fitted": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    d["predictors"] = entries
    dump_yaml(d, idx)


def _fit(args) -> int:
    import torch
    torch.set_num_threads(1)
    from hat.predictor import fit_predictor, load_predictor
    from hat.space import load_space
    from hat.latency.records import dedupe_records
    recs = _read(args.data)
    deduped, n_dup = dedupe_records(recs)
    if n_dup and args.dedupe:
        print(f"{PROG}: averaged {n_dup} duplicate row(s) of already-measured SubTransformers "
              f"({len(recs)} -> {len(deduped)} rows)", file=sys.stderr)
        recs = deduped
    elif n_dup:
        print(f"{PROG}: warning: {n_dup} row(s) repeat a SubTransformer measured in an earlier row (two writers on "
              f"one file?); they weigh double in the fit. Pass --dedupe to average them", file=sys.stderr)
    space = load_space(args.space or _default_space(args.data))
    wide = space.widened()  # HAT (and hat-profile --widen) measure a slightly wider space: fine for fitting
    for i, r in enumerate(recs):
        if r.subnet is not None and not (space.contains(r.subnet) or wide.contains(r.subnet)):
            raise HatError(f"a data row: {space.violations(r.subnet)[0]} (space '{space.name}', also outside its "
                           f"widened version); pass the space it was measured in with --space")
    if args.register and any(r.subnet is None for r in recs):
        raise HatError("--register is only for the project's own measurements (rows with a subnet column); "
                       "HAT's published files can be fit but not registered")
    init = load_predictor(args.init) if args.init else None
    pred = fit_predictor(recs, args.device, space, args.model, seed=args.seed, init=init,
                         feature_kind=args.features, sources=[str(p) for p in args.data])
    pred.save(args.out)
    m = pred.metrics.get("val")
    where = "val" if m else "train"
    m = m or pred.metrics["train"]
    print(f"{args.out}: {pred.model_kind}/{pred.feature_kind} for {pred.device} on {space.name}, "
          f"{pred.train['n_train']} train rows; {where} mape {m['mape']:.4f} rmse {m['rmse_ms']:.2f} ms "
          f"acc10 {m['acc10']:.3f} kendall_tau {m['kendall_tau']:.3f}")
    if args.register:
        register(args.index, args.out, pred, args.data)
        print(f"registered in {args.index}")
    return 0


def _eval(args) -> int:
    import numpy as np
    from hat.predictor import load_predictor, regression_metrics
    pred = load_predictor(args.predictor)
    recs = _read(args.data)
    p = pred.predict_records(recs)
    y = np.array([r.latency_ms for r in recs])
    m = regression_metrics(p, y)
    report = {**m, "predictor": str(args.predictor), "device": pred.device, "space": pred.space_name,
              "model": pred.model_kind, "features": pred.feature_kind, "data": [str(d) for d in args.data]}
    _write_json(args.report, report)
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.scatter(y, p, s=6, alpha=0.6)
        lo, hi = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel("measured latency (ms)")
        ax.set_ylabel("predicted latency (ms)")
        ax.set_title(f"{pred.device}: MAPE {m['mape']:.3f}, tau {m['kendall_tau']:.3f}")
        fig.tight_layout()
        try:
            with atomic_path(args.plot) as tmp:
                fig.savefig(tmp, dpi=120, format="png")
        finally:
            plt.close(fig)
    print(f"{args.predictor} on {', '.join(args.data)}: n {m['n']} rmse {m['rmse_ms']:.2f} ms mape {m['mape']:.4f} "
          f"acc10 {m['acc10']:.3f} kendall_tau {m['kendall_tau']:.3f}")
    return 0


@cli_main(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    return _fit(args) if args.cmd == "fit" else _eval(args)


if __name__ == "__main__":
    raise SystemExit(main())
