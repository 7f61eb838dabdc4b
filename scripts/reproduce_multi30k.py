#!/usr/bin/env python
"""HAT's claim on Multi30k: at equal latency, searched SubTransformers score higher BLEU than Transformers scaled by
depth and width.

Runs on top of a finished ``hat-quickstart`` workdir (its SuperTransformer, latency predictor and searched
SubTransformers). Baselines are uniform Transformers at the corners and edges of the same space, scaled by width
(embed/FFN dims) and by depth (decoder layers). Every model, searched or baseline, gets the same training: the same
number of fine-tuning updates from the same SuperTransformer's inherited weights, the same data and settings. Each
is then scored (SacreBLEU on test_2016_flickr, beam 5) and its latency measured on this CPU (ONNX Runtime, HAT's
protocol). Writes ``<workdir>/reproduction.json`` and ``bleu_vs_latency.png``, prints a markdown table.

    hat-quickstart --data-dir ../shared/data/multi30k --workdir runs/quickstart --preset tiny
    python scripts/reproduce_multi30k.py --workdir runs/quickstart
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hat.cli import quickstart as qs
from hat.space import SubnetConfig, load_space


def baselines(space) -> dict[str, SubnetConfig]:
    """Uniform configs scaled by width and depth (HAT's baselines: Transformers scaled by layers and dims)."""
    big, small = space.largest(), space.smallest()
    out = {"Transformer-largest": big, "Transformer-smallest": small}
    mid_ffn = sorted(space.decoder_ffn_embed_dim)[len(space.decoder_ffn_embed_dim) // 2]
    for layers in sorted(space.decoder_layer_num)[:-1]:  # depth-scaled: fewer decoder layers, full width
        d = big.to_dict()
        d.update(decoder_layer_num=layers)
        for g in ("decoder_ffn_embed_dim", "decoder_self_attention_heads", "decoder_ende_attention_heads",
                  "decoder_arbitrary_ende_attn"):
            d[g] = d[g][:layers]
        out[f"Transformer-dec{layers}"] = SubnetConfig(**d)
    # width-scaled: smaller embed and FFN dims, full depth
    d = big.to_dict()
    emb = min(space.encoder_embed_dim)
    d.update(encoder_embed_dim=emb, decoder_embed_dim=min(space.decoder_embed_dim),
             encoder_ffn_embed_dim=[mid_ffn] * big.encoder_layer_num,
             decoder_ffn_embed_dim=[mid_ffn] * big.decoder_layer_num)
    out[f"Transformer-w{emb}"] = SubnetConfig(**d)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True, help="a finished hat-quickstart workdir")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    w = Path(args.workdir)
    summary_path = w / "summary.json"
    if not summary_path.is_file():
        print(f"reproduce_multi30k: error: {summary_path} missing: run hat-quickstart first", file=sys.stderr)
        return 2
    summary = json.loads(summary_path.read_text())
    preset = qs.PRESETS[summary["preset"]]
    space = load_space(qs.SPACE)
    pl = qs.Pipeline(w, preset, summary["preset"])
    ns = argparse.Namespace(workdir=str(w), preset=summary["preset"], threads=args.threads, data_dir=None)
    from hat.data import Dictionary
    vocab_size = len(Dictionary.load(w / "data-bin" / f"dict.{qs.TGT}.txt"))
    rows = [dict(r, kind="searched") for r in summary["models"]]
    for name, cfg in baselines(space).items():
        sub = w / "baselines" / f"{name}.yaml"
        if not sub.is_file():
            from hat.latency.flops import subnet_flops
            from hat.nn import count_subnet_params
            cfg.save_yaml(sub, params=int(count_subnet_params(cfg, space.qkv_dim)),
                          flops=int(subnet_flops(cfg, space.qkv_dim)))
        ft = pl.stage(f"baseline_finetune_{name}", lambda sub=sub, name=name: qs.finetune_subnet(
            ns, preset, w, sub, w / "baselines" / name))
        sc = pl.stage(f"baseline_bleu_{name}", lambda ft=ft: qs.bleu_of(ns, preset, w, ft["checkpoint"], ft["dir"]))
        meas = pl.stage(f"baseline_measure_{name}", lambda sub=sub: qs.measure(str(sub), vocab_size))
        row = qs._row(0.0, str(sub), ft["checkpoint"], sc, meas)
        row.update(name=name, kind="baseline", budget_ms=None)
        rows.append(row)
    (w / "reproduction.json").write_text(json.dumps(rows, indent=1))
    plot(rows, w / "bleu_vs_latency.png")
    print("| model | kind | measured latency (ms) | params | SacreBLEU | tokenized BLEU |")
    print("|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["measured_ms"]):
        print(f"| {r['name']} | {r['kind']} | {r['measured_ms']:.2f} | {r['params']:,} | {r['bleu']:.2f} | "
              f"{r['tokenized_bleu']:.2f} |")
    return 0


def plot(rows, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, marker in (("searched", "o"), ("baseline", "s")):
        pts = sorted((r["measured_ms"], r["bleu"], r["name"]) for r in rows if r["kind"] == kind)
        ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], marker=marker, linestyle="-" if kind == "searched"
                else "", label=f"{'HAT searched' if kind == 'searched' else 'scaled Transformer'}")
        for x, y, n in pts:
            ax.annotate(n.replace("Transformer-", ""), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("measured latency on this CPU, ONNX Runtime (ms)")
    ax.set_ylabel("SacreBLEU, test_2016_flickr")
    ax.set_title("Multi30k de-en: BLEU vs latency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
