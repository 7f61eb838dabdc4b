"""``hat-predictor``: fit and evaluate latency predictors.

Examples::

    hat-predictor fit --data lat.csv --device xeon --out xeon.pt [--model cost_linear] [--space wmt14_space0]
    hat-predictor fit --data rpi_30rows.csv --device rpi --out rpi.pt --init xeon.pt      # few-shot transfer
    hat-predictor eval --predictor xeon.pt --data test.csv --report r.json [--plot scatter.png]
    hat-predictor fit --data latency_predictors/data/cpu.csv --device cpu-xeon --out latency_predictors/cpu.pt --register
    hat-predictor fit --data ../shared/data/hat_latency/wmt14ende_cpu_xeon_all.csv --device xeon_e5_2640 \
        --out latency_predictors/hat_wmt14_space0_xeon_e5_2640.pt --register \
        --source "HAT (Wang et al. 2020) published measurements" --runtime pytorch

The metrics ``fit`` prints (and ``--report`` / ``--plot`` / ``--register`` record) are k-fold cross-validated
(``--cv 5``): every row predicted by a model fit, hyperparameters included, on the other folds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from hat.errors import cli_main
from hat.errors import HatError

PROG = "hat-predictor"


def _parser() -> argparse.ArgumentParser:
    from hat.predictor.features import FEATURE_KINDS
    from hat.predictor.models import DEFAULT_MODEL, model_kinds
    ap = argparse.ArgumentParser(prog=PROG, description="Fit and evaluate latency predictors.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit a predictor on latency CSVs")
    f.add_argument("--data", nargs="+", required=True, help="latency CSV(s): HAT's published files or ours")
    f.add_argument("--device", required=True, help="device name stored in the predictor")
    f.add_argument("--out", required=True, help="predictor file to write (.pt)")
    f.add_argument("--model", default=DEFAULT_MODEL, choices=model_kinds())
    f.add_argument("--features", default=None, choices=FEATURE_KINDS, help="feature kind (default: per model)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--space", default=None,
                   help="search space name or YAML (default: iwslt14_space1 for iwslt files, else wmt14_space0)")
    f.add_argument("--init", default=None, help="predictor of another device to fine-tune from (few-shot transfer)")
    f.add_argument("--dedupe", action="store_true",
                   help="average rows that measured the same SubTransformer (default: keep them, with a warning)")
    f.add_argument("--cv", type=int, default=5, metavar="K",
                   help="k-fold cross-validation behind the reported metrics (every choice made inside each fold); "
                        "0 = report none")
    f.add_argument("--report", default=None, help="JSON of the held-out (cross-validated) metrics and predictions")
    f.add_argument("--plot", default=None, help="scatter plot (PNG) of cross-validated predicted vs measured latency")
    f.add_argument("--register", action="store_true",
                   help="add the predictor to --index (provenance required: rows with runtime/host columns, "
                        "or --source and --runtime)")
    f.add_argument("--source", default=None,
                   help="who measured the rows, for --register (e.g. 'HAT (Wang et al. 2020) published measurements')")
    f.add_argument("--runtime", default=None, help="runtime the rows were measured with, for --register (e.g. pytorch)")
    f.add_argument("--index", default="latency_predictors/index.yaml")
    e = sub.add_parser("eval", help="evaluate a predictor on measured latencies")
    e.add_argument("--predictor", required=True)
    e.add_argument("--data", nargs="+", required=True)
    e.add_argument("--report", required=True, help="JSON report to write")
    e.add_argument("--plot", default=None, help="scatter plot (PNG) of predicted vs measured latency")
    return ap


def _default_space(paths: Sequence[str]) -> str:
    return "iwslt14_space1" if any("iwslt" in Path(p).name.lower() for p in paths) else "wmt14_space0"


def _fit(args) -> int:
    import torch
    torch.set_num_threads(1)
    from hat.predictor import fit_predictor, load_predictor
    from hat.predictor.evaluate import read_latency_csvs, write_cv_report
    from hat.predictor.registry import provenance_of, register_predictor
    from hat.space import load_space
    from hat.latency.records import dedupe_records
    recs = read_latency_csvs(args.data)
    deduped, n_dup = dedupe_records(recs)
    if n_dup and args.dedupe:
        print(f"{PROG}: averaged {n_dup} duplicate row(s) of already-measured SubTransformers "
              f"({len(recs)} -> {len(deduped)} rows)", file=sys.stderr)
        recs = deduped
    elif n_dup:
        print(f"{PROG}: warning: {n_dup} row(s) repeat a SubTransformer measured in an earlier row (two writers on "
              f"one file?); they weigh double in the fit. Pass --dedupe to average them", file=sys.stderr)
    devices = sorted({r.device for r in recs if r.device})
    if len(devices) > 1:
        print(f"{PROG}: warning: the rows were measured on {len(devices)} devices ({', '.join(devices)}); one "
              f"predictor fit to all of them predicts none well", file=sys.stderr)
    space = load_space(args.space or _default_space(args.data))
    wide = space.widened()  # HAT (and hat-profile --widen) measure a slightly wider space: fine for fitting
    for i, r in enumerate(recs):
        if r.subnet is not None and not (space.contains(r.subnet) or wide.contains(r.subnet)):
            raise HatError(f"a data row: {space.violations(r.subnet)[0]} (space '{space.name}', also outside its "
                           f"widened version); pass the space it was measured in with --space")
    provenance = provenance_of(recs, args.source, args.runtime) if args.register else None
    if args.cv < 0:
        raise HatError(f"--cv must be >= 0, got {args.cv}")
    init = load_predictor(args.init) if args.init else None
    pred = fit_predictor(recs, args.device, space, args.model, seed=args.seed, init=init,
                         feature_kind=args.features, sources=[str(p) for p in args.data], cv_folds=args.cv)
    pred.save(args.out)
    m = pred.heldout_metrics
    head = (f"{args.out}: {pred.model_kind}/{pred.feature_kind} for {pred.device} on {space.name}, "
            f"{len(recs)} rows")
    if m:
        print(f"{head}; {pred.metrics_split} held-out mape {m['mape']:.4f} rmse {m['rmse_ms']:.2f} ms "
              f"acc10 {m['acc10']:.3f} kendall_tau {m['kendall_tau']:.3f}")
    else:
        print(f"{head}; too few rows (or --cv 0) for held-out metrics: none reported")
    if args.report or args.plot:
        write_cv_report(pred, args.out, args.data, report=args.report, plot=args.plot)
    if args.register:
        register_predictor(args.index, args.out, pred, args.data, provenance)
        print(f"registered in {args.index}")
    return 0


def _eval(args) -> int:
    from hat.predictor.evaluate import evaluate_predictor
    m = evaluate_predictor(args.predictor, args.data, args.report, args.plot,
                           warn=lambda msg: print(f"{PROG}: warning: {msg}", file=sys.stderr))
    print(f"{args.predictor} on {', '.join(args.data)}: n {m['n']} rmse {m['rmse_ms']:.2f} ms mape {m['mape']:.4f} "
          f"acc10 {m['acc10']:.3f} kendall_tau {m['kendall_tau']:.3f}")
    return 0


@cli_main(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    return _fit(args) if args.cmd == "fit" else _eval(args)


if __name__ == "__main__":
    raise SystemExit(main())
