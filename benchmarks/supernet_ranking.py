"""How well a SuperTransformer's inherited validation loss ranks SubTransformers: Kendall tau between the inherited
loss and the loss (and BLEU) of the same SubTransformers trained from scratch with equal updates, per supernet
training method (HAT's one random SubTransformer per update vs sandwich + in-place distillation, same CPU time).

Reads a ``scripts/reproduce_multi30k.py`` workdir: ``supernet_<method>/checkpoint_last.pt`` and the seed-0
from-scratch results ``.stages/scratch_<name>_seed0.json`` (validation NLL on the whole Multi30k validation set,
SacreBLEU on test_2016_flickr). Inherited losses are computed here (whole validation set, NLL, nats/token).
``--scratch-from`` takes the from-scratch results from an earlier record of this benchmark instead (its first
method's rows), so new SuperTransformers can be ranked on a machine that no longer has those trainings.

    python benchmarks/supernet_ranking.py --workdir runs/repro --out benchmarks/results/supernet_ranking.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import host, versions  # noqa: E402


def recorded_results(path: Path) -> dict[str, dict]:
    """``{name: {"subnet": SubnetConfig, "valid_nll_loss", "bleu"}}``: the from-scratch results in a record of this
    benchmark (they are the same under every method; the first method's rows are read)."""
    from hat.space import SubnetConfig
    rows = next(iter(json.loads(path.read_text()).values()))["subnets"]
    return {r["name"]: {"subnet": SubnetConfig.from_dict(r["subnet"]), "valid_nll_loss": r["scratch_valid_nll"],
                        "bleu": r["scratch_bleu"]} for r in rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--methods", nargs="+", default=["hat_random", "sandwich_distill"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--names", nargs="+", help="rank only these SubTransformers (default: every seed-0 result; "
                    "leave out searched ones, which one supernet's own loss chose)")
    ap.add_argument("--scratch-from", help="an earlier record of this benchmark: take the from-scratch results "
                    "(validation NLL, BLEU, config) from it instead of the workdir's .stages")
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    from hat.data import load_split
    from hat.errors import HatError
    from hat.io import atomic_write
    from hat.predictor.metrics import kendall_tau
    from hat.pipeline import finished_stages
    from hat.space import SubnetConfig
    from hat.checkpoints import load_checkpoint, load_model
    from hat.train.evaluate import prepare_batches, valid_loss

    w = Path(args.workdir)
    if args.scratch_from:
        try:
            results = recorded_results(Path(args.scratch_from))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration, HatError) as e:
            print(f"supernet_ranking: error: {args.scratch_from}: not a ranking record ({e!r})", file=sys.stderr)
            return 2
        where = args.scratch_from
    else:
        results = {d["name"]: d for d in finished_stages(w, "scratch_*_seed0").values()}
        where = f"{w}/.stages"
    if args.names:
        missing = sorted(set(args.names) - set(results))
        if missing:
            print(f"supernet_ranking: error: no seed-0 result for {', '.join(missing)} in {where}", file=sys.stderr)
            return 2
        results = {n: results[n] for n in args.names}
    if len(results) < 3:
        print(f"supernet_ranking: error: only {len(results)} from-scratch results in {where}", file=sys.stderr)
        return 2
    valid = load_split(w / "data-bin", "valid", "de", "en")
    batches = prepare_batches(valid, args.max_tokens)
    t0 = time.time()
    # Every top-level key is a training method ({"<method>": {"kendall_tau", "n_subnets", ...}}, issue 10's
    # schema); the run's provenance goes into each method's "run".
    run = {"command": " ".join([sys.executable, *sys.argv]), "host": host(), "versions": versions(),
           "loadavg_before": os.getloadavg(), "workdir": str(w), "scratch_from": args.scratch_from}
    out = {}
    for method in args.methods:
        ckpt = w / f"supernet_{method}" / "checkpoint_last.pt"
        if not ckpt.is_file():
            print(f"supernet_ranking: {ckpt} missing; skipping {method}", file=sys.stderr)
            continue
        model, ck = load_model(ckpt)
        rows = []
        for name, r in results.items():
            cfg = r["subnet"] if isinstance(r["subnet"], SubnetConfig) else SubnetConfig.load_yaml(r["subnet"])
            model.set_active_subnet(cfg)
            rows.append({"name": name, "inherited_valid_nll": valid_loss(model, batches),
                         "scratch_valid_nll": r["valid_nll_loss"], "scratch_bleu": r["bleu"],
                         "subnet": cfg.to_dict()})
        inh = [x["inherited_valid_nll"] for x in rows]
        tcfg = ck.get("train_config") or {}
        out[method] = {
            "kendall_tau": kendall_tau(inh, [x["scratch_valid_nll"] for x in rows]),
            # lower loss should mean higher BLEU: tau against -BLEU (1 = same order)
            "kendall_tau_bleu": kendall_tau(inh, [-x["scratch_bleu"] for x in rows]),
            "n_subnets": len(rows),
            "supernet": {"updates": int(load_checkpoint(ckpt)["update"]),
                         "subnet_sampling": tcfg.get("subnet_sampling", "random"),
                         "sandwich_random": tcfg.get("sandwich_random"),
                         "inplace_distill": tcfg.get("inplace_distill", 0.0)},
            "subnets": rows,
        }
        print(f"{method}: tau(valid loss) {out[method]['kendall_tau']:.3f}, tau(BLEU) "
              f"{out[method]['kendall_tau_bleu']:.3f} over {len(rows)} SubTransformers")
    calib = finished_stages(w, "calibrate*")
    if "calibrate" in calib:  # the train stage's: both main recipes
        run["calibration"] = calib.pop("calibrate")
    if calib:  # --stage ablation's, one per recipe: {"calibrate_<recipe>": {<reference>: ..., <recipe>: ...}}
        run["calibration_ablation"] = calib
    run.update(loadavg_after=os.getloadavg(), seconds=round(time.time() - t0, 1))
    for rec in out.values():
        rec["run"] = run
    atomic_write(args.out, json.dumps(out, indent=1))  # makes the folder
    return 0


if __name__ == "__main__":
    sys.exit(main())
