"""HAT's published SubTransformers: the latency HAT measured (in each file name) vs our HAT-data predictors.

HAT's repository ships the SubTransformers its search found, one YAML per device and budget, named
``HAT_<task>_<device>@<latency>_bleu@<bleu>.yml`` with the latency HAT measured on that device. This script predicts
each one with the predictor registered for that device and space (``latency_predictors/index.yaml``, fit on HAT's
published latency datasets) and tabulates predicted against named latency.

Only the WMT'14 En-De and IWSLT'14 De-En configs come from the task whose latency dataset the predictors were fit on;
WMT'14 En-Fr and WMT'19 En-De share the space (wmt14_space0) but have other vocabularies, so their output layer
costs differ from the En-De measurements (marked ``transfer`` in the table).

Usage::

    python benchmarks/hat_configs_latency.py [--configs ../shared/data/hat_configs] \
        [--json benchmarks/results/hat_configs_latency.json]

HAT's YAMLs are ConfigArgParse files (keys are command-line flags without ``--``, lists ``[a, b]``, the folder's
``common.yml`` supplies defaults); a minimal parser for them lives here, not in the library.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predictor_common import HAT_CONFIGS, HAT_LATENCY, REPO, RESULTS, run_meta, write_json  # noqa: E402

sys.path.insert(0, str(REPO))

DEVICES = {"raspberrypi": "rpi4", "xeon": "xeon_e5_2640", "titanxp": "titanxp"}
# task in the file name -> search space; space -> task of the latency dataset its predictors were fit on
TASKS = {"wmt14ende": "wmt14_space0", "wmt14enfr": "wmt14_space0", "wmt19ende": "wmt14_space0",
         "iwslt14deen": "iwslt14_space1"}
PREDICTOR_TASK = {"wmt14_space0": "wmt14ende", "iwslt14_space1": "iwslt14deen"}
NAME_RE = re.compile(r"^HAT_(?P<task>[a-z0-9]+)_(?P<device>[a-z]+)@(?P<lat>[0-9.]+)(?P<unit>ms|s)"
                     r"_bleu@(?P<bleu>[0-9.]+)"
                     r"\.yml$")


def _value(text: str):
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        return [_value(t) for t in text[1:-1].split(",") if t.strip()]
    if text in ("True", "False"):
        return text == "True"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def read_hat_yaml(path: Path) -> dict:
    """``key: value`` lines of a HAT config (comments and blank lines skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = _value(v)
    return out


def subnet_of(cfg: dict):
    """HAT's ``*-subtransformer`` flags -> SubnetConfig (per-layer lists cut to the layer counts, as HAT does)."""
    from hat.space import SubnetConfig
    el, dl = int(cfg["encoder-layer-num-subtransformer"]), int(cfg["decoder-layer-num-subtransformer"])

    def lst(key, n):
        v = cfg[key]
        v = v if isinstance(v, list) else [v]
        return [int(x) for x in v[:n]]
    return SubnetConfig(
        encoder_embed_dim=int(cfg["encoder-embed-dim-subtransformer"]),
        decoder_embed_dim=int(cfg["decoder-embed-dim-subtransformer"]),
        encoder_layer_num=el, decoder_layer_num=dl,
        encoder_ffn_embed_dim=lst("encoder-ffn-embed-dim-all-subtransformer", el),
        encoder_self_attention_heads=lst("encoder-self-attention-heads-all-subtransformer", el),
        decoder_ffn_embed_dim=lst("decoder-ffn-embed-dim-all-subtransformer", dl),
        decoder_self_attention_heads=lst("decoder-self-attention-heads-all-subtransformer", dl),
        decoder_ende_attention_heads=lst("decoder-ende-attention-heads-all-subtransformer", dl),
        decoder_arbitrary_ende_attn=lst("decoder-arbitrary-ende-attn-all-subtransformer", dl))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=str(HAT_CONFIGS))
    ap.add_argument("--json", default=str(RESULTS / "hat_configs_latency.json"))
    args = ap.parse_args(argv)
    from hat.predictor import kendall_tau, load_predictor
    from hat.predictor.registry import resolve_predictor
    from hat.space import load_space
    meta = run_meta()
    from hat.latency.records import read_latency_csv
    from hat.predictor.models import HAT_FEATURE_NORM
    rows, preds, data = [], {}, {}
    files = sorted(Path(args.configs).glob("*/subtransformer/HAT_*@*.yml"))
    if not files:
        print(f"no HAT_*.yml under {args.configs}/*/subtransformer", file=sys.stderr)
        return 2
    for f in files:
        m = NAME_RE.match(f.name)
        if not m:
            print(f"skipping {f.name}: name not understood", file=sys.stderr)
            continue
        cfg = {**read_hat_yaml(f.parent / "common.yml"), **read_hat_yaml(f)}
        subnet = subnet_of(cfg)
        space_name, device = TASKS[m["task"]], DEVICES[m["device"]]
        space = load_space(space_name)
        key = (device, space_name)
        if key not in preds:
            r = resolve_predictor(device, space)
            preds[key] = (load_predictor(r.path), r.entry)
        pred, entry = preds[key]
        named_ms = float(m["lat"]) * (1000.0 if m["unit"] == "s" else 1.0)
        p_ms = float(pred.predict_ms([subnet])[0])
        # the predictor's own training data near this config: is a gap the predictor's or the data's?
        csv = HAT_LATENCY / entry["data"][0]["file"]
        if csv not in data:
            recs = read_latency_csv(csv)
            data[csv] = (np.array([r.features for r in recs]), np.array([r.latency_ms for r in recs]))
        F, L = data[csv]
        d = np.abs((F - np.array(subnet.hat_features())) / np.array(HAT_FEATURE_NORM)).sum(1)
        near = np.argsort(d)[:5]
        rows.append({"file": f"{f.parent.parent.name}/subtransformer/{f.name}", "task": m["task"],
                     "device": device, "space": space_name, "in_space": space.contains(subnet),
                     "predictor": entry["path"],
                     "same_task_as_predictor_data": m["task"] == PREDICTOR_TASK[space_name],
                     "named_latency_ms": named_ms, "predicted_ms": round(p_ms, 2),
                     "rel_error": round((p_ms - named_ms) / named_ms, 4), "bleu": float(m["bleu"]),
                     "nearest5_measured_ms": [round(float(x), 2) for x in L[near]],
                     "nearest5_feature_l1": [round(float(x), 4) for x in d[near]],
                     "subnet": subnet.to_dict()})
    groups = {}
    for r in rows:
        groups.setdefault(f"{r['task']}|{r['device']}", []).append(r)
    summary = {}
    for g, rs in sorted(groups.items()):
        named = np.array([r["named_latency_ms"] for r in rs])
        pred = np.array([r["predicted_ms"] for r in rs])
        summary[g] = {"n": len(rs), "mape": float(np.mean(np.abs(pred - named) / named)),
                      "mean_signed_rel_error": float(np.mean((pred - named) / named)),
                      "kendall_tau": kendall_tau(pred, named),
                      "same_task_as_predictor_data": rs[0]["same_task_as_predictor_data"]}
    same = [r for r in rows if r["same_task_as_predictor_data"]]
    summary["all_same_task"] = {"n": len(same), "mape": float(np.mean([abs(r["rel_error"]) for r in same]))}
    summary["all"] = {"n": len(rows), "mape": float(np.mean([abs(r["rel_error"]) for r in rows]))}
    print(f"{'config':58s} {'named ms':>10s} {'pred ms':>10s} {'rel err':>8s}  nearest measured rows (ms)")
    for r in rows:
        print(f"{r['file'].split('/')[-1]:58s} {r['named_latency_ms']:10.1f} {r['predicted_ms']:10.1f} "
              f"{r['rel_error']:+8.3f}  {r['nearest5_measured_ms'][:3]} (L1 {r['nearest5_feature_l1'][0]:.2f})"
              + ("" if r["same_task_as_predictor_data"] else "  (transfer)"))
    for g, s in summary.items():
        print(f"{g:30s} " + " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()))
    write_json(args.json, {"meta": meta, "rows": rows, "summary": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
