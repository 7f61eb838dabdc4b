"""Searched SubTransformers against baselines at equal measured latency: the verdict, the table, the plot, and the
measurements behind a verdict (paired bootstrap, fitness of the models the search missed, better models at lower
latency).

A *record* is one model of a comparison: ``{"name", "kind" ("searched" or "baseline"), "budget_ms" (searched),
"latency_ms" (measured; None before), "seeds", "bleu" (one per seed), "valid_nll_loss" (one per seed), "params"}``
plus optional ``"inherited_valid_loss"``, ``"evaluated_by_search"`` and ``"paired_bootstrap"``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable, Optional, Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (0.0 for one value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def best_rival(searched: dict, records: list[dict], limit_ms: Optional[float] = None) -> Optional[dict]:
    """The baseline the verdict compares a searched model with: the highest mean BLEU among the baselines with BLEU
    and a measured latency at or below ``limit_ms`` (default: the searched model's measured latency; ``None`` if no
    baseline is as fast)."""
    limit_ms = searched["latency_ms"] if limit_ms is None else limit_ms
    rivals = [b for b in records if b["kind"] == "baseline" and b["bleu"] and b["latency_ms"] is not None
              and b["latency_ms"] <= limit_ms]
    return max(rivals, key=lambda b: statistics.fmean(b["bleu"]), default=None)


def budget_rival(searched: dict, records: list[dict]) -> Optional[dict]:
    """The best baseline a user with the searched model's budget could have deployed instead: as
    :func:`best_rival`, up to the budget rather than the searched model's (usually lower) measured latency."""
    return best_rival(searched, records, max(searched["budget_ms"], searched["latency_ms"]))


def verdict(records: list[dict]) -> list[str]:
    """Per searched model: its mean BLEU vs the best baseline at equal or lower measured latency, and whether it is
    higher by more than one std (the larger of the two models' stds); then the best baseline within its budget."""
    out = []
    for r in sorted((r for r in records if r["kind"] == "searched"), key=lambda r: r["budget_ms"]):
        if not r["bleu"] or r["latency_ms"] is None:
            out.append(f"{r['name']}: not trained or not measured yet")
            continue
        m, sd = mean_std(r["bleu"])
        best = best_rival(r, records)
        if best is None:
            out.append(f"{r['name']} ({r['latency_ms']:.2f} ms): {m:.2f} ± {sd:.2f}; no baseline is as fast")
        else:
            bm, bsd = mean_std(best["bleu"])
            holds = "holds" if m >= bm else "does NOT hold"
            if len(r["bleu"]) < 2 or len(best["bleu"]) < 2:  # one seed has no std: no margin test yet
                margin = f" (seeds {len(r['bleu'])} vs {len(best['bleu'])}: no std yet)"
            else:
                margin = " (by more than one std)" if m - bm > max(sd, bsd) else ""
            out.append(f"{r['name']} ({r['latency_ms']:.2f} ms): {m:.2f} ± {sd:.2f} vs best baseline at <= latency "
                       f"{best['name']} ({best['latency_ms']:.2f} ms) {bm:.2f} ± {bsd:.2f}: {holds}{margin}")
        # Stricter, and what a user with this budget asks: is there a baseline the search could have returned
        # instead (slower than its pick, yet within the budget)?
        within = budget_rival(r, records)
        if within is not None and within is not best:
            wm, wsd = mean_std(within["bleu"])
            gap = m - wm
            out.append(f"  within its {r['budget_ms']:g} ms budget: {within['name']} ({within['latency_ms']:.2f} ms) "
                       f"{wm:.2f} ± {wsd:.2f}: the searched model is {'higher' if gap >= 0 else 'lower'} by "
                       f"{abs(gap):.2f} ({'more than' if abs(gap) > max(sd, wsd) else 'within'} one std)")
    return out


def table(records: list[dict]) -> list[str]:
    """The markdown table of a comparison, fastest first (mean ± std of SacreBLEU over seeds)."""
    lines = ["| model | kind | budget ms | measured latency ms | params | seeds | SacreBLEU mean ± std |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r["latency_ms"] is None, r["latency_ms"] or 0)):
        b = r["bleu"]
        bl = "-" if not b else (f"{b[0]:.2f}" if len(b) == 1 else "{:.2f} ± {:.2f}".format(*mean_std(b)))
        lines.append(f"| {r['name']} | {r['kind']} | {r['budget_ms'] or '-'} | "
                     f"{'-' if r['latency_ms'] is None else format(r['latency_ms'], '.2f')} | {r['params']:,} | "
                     f"{len(b)} | {bl} |")
    return lines


def paired_bootstrap_per_seed(searched: dict, rival: Optional[dict],
                              run_dir: Callable[[str, int], Optional[Path]]) -> list[dict]:
    """Per seed both models have: SacreBLEU's paired bootstrap (1,000 resamples) of the searched model's test
    translations (``run_dir(name, seed)/test.hyp``; ``run_dir`` gives None for a run that is not here) against the
    rival's, i.e. whether that seed's BLEU gap exceeds
    the test set's sampling noise (the seed std measures the training's noise; this, the test sentences')."""
    from hat.score import paired_bootstrap, read_lines
    out = []
    for s in sorted(set(searched["seeds"]) & set(rival["seeds"] if rival else ())):
        runs = [run_dir(n, s) for n in (rival["name"], searched["name"])]
        if not all(d is not None and (d / "test.hyp").is_file() for d in runs):
            continue
        res = paired_bootstrap(read_lines(runs[0] / "test.hyp"), read_lines(runs[1] / "test.hyp"),
                               read_lines(runs[1] / "test.ref"))
        out.append({"seed": s, "rival": rival["name"], **res})
    return out


def bootstrap_lines(records: list[dict]) -> list[str]:
    """One line per searched model and rival with paired-bootstrap results."""
    out = []
    for r in sorted((r for r in records if r.get("paired_bootstrap")), key=lambda r: r["budget_ms"]):
        for rival in dict.fromkeys(p["rival"] for p in r["paired_bootstrap"]):
            out.append(f"{r['name']} vs {rival}, paired bootstrap on the test set per seed: " + ", ".join(
                f"seed {p['seed']} {p['delta_bleu']:+.2f} BLEU (p {p['p_value']:.3f}, 95% CI ±{p['ci_b']:.2f})"
                for p in r["paired_bootstrap"] if p["rival"] == rival))
    return out


def search_miss_lines(records: list[dict]) -> list[str]:
    """For each searched model beaten by a baseline within its budget: did the search's fitness (inherited
    validation loss) rank that baseline worse (a ranking miss), or did the search never evaluate it (a sampling
    miss)?"""
    out = []
    for r in sorted((r for r in records if r["kind"] == "searched" and r["bleu"] and r.get("latency_ms")),
                    key=lambda r: r["budget_ms"]):
        b = budget_rival(r, records)
        if b is None or b is best_rival(r, records) or statistics.fmean(b["bleu"]) <= statistics.fmean(r["bleu"]):
            continue
        if r.get("inherited_valid_loss") is None or b.get("inherited_valid_loss") is None:
            continue
        worse = b["inherited_valid_loss"] > r["inherited_valid_loss"]
        line = (f"{b['name']} is within {r['name']}'s budget and scores higher from scratch; the search's fitness "
                f"(inherited validation loss) ranks it {'worse' if worse else 'better'}: "
                f"{b['inherited_valid_loss']:.4f} vs {r['inherited_valid_loss']:.4f}")
        if b.get("valid_nll_loss") and r.get("valid_nll_loss"):
            line += (f" (from scratch, validation NLL {statistics.fmean(b['valid_nll_loss']):.3f} vs "
                     f"{statistics.fmean(r['valid_nll_loss']):.3f})")
        seen = b.get("evaluated_by_search")
        if worse:  # had the search sampled it, it would still have kept its pick
            line += ("; the search never evaluated it, nor would it have picked it" if seen is False else
                     "; the search evaluated it and kept its pick") + ": a ranking miss, not a sampling one"
        elif seen is False:
            line += "; the search never evaluated it: a sampling miss"
        out.append(line)
    return out


def better_at_latency_lines(records: list[dict], seed0_nll: dict[str, float], latency_ms: dict[str, float]
                            ) -> list[str]:
    """Per searched model: budget, predicted and measured latency, and whether any SubTransformer trained from
    scratch (``seed0_nll``: name -> seed-0 validation NLL, the ranking set included) beat it at <= its latency (if
    none did, the space, not the search, limits the result)."""
    seed0_nll = {n: v for n, v in seed0_nll.items() if n in latency_ms}
    out = []
    for r in sorted((r for r in records if r["kind"] == "searched"), key=lambda r: r["budget_ms"]):
        lat = latency_ms.get(r["name"])
        if lat is None or r["name"] not in seed0_nll:
            continue
        mine = seed0_nll[r["name"]]
        better = sorted((v, n) for n, v in seed0_nll.items() if n != r["name"] and latency_ms[n] <= lat and v < mine)
        out.append(f"{r['name']}: budget {r['budget_ms']:g} ms, predicted {r['predicted_latency_ms']:.2f} ms, "
                   f"measured {lat:.2f} ms; seed-0 validation NLL {mine:.3f}, " + (
                       f"beaten at <= latency by {', '.join(f'{n} {v:.3f}' for v, n in better)}" if better else
                       "best of the trained SubTransformers at <= latency"))
    return out


def plot_bleu_vs_latency(records: list[dict], path: Path, others: Sequence[tuple[str, float, float]] = (),
                         xlabel: str = "measured latency on this CPU, ONNX Runtime, batch 1 (ms)",
                         title: str = "Multi30k de-en, trained from scratch") -> None:
    """BLEU (mean ± std over seeds) vs measured latency of the records; ``others``: ``(name, latency_ms, bleu)`` of
    more SubTransformers (one seed), drawn in grey for context."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hat.io import atomic_path
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    if others:
        ax.plot([o[1] for o in others], [o[2] for o in others], "x", color="grey",
                label="random SubTransformer (seed 0)")
        for name, x, y in others:
            ax.annotate(name, (x, y), fontsize=7, color="grey", xytext=(3, -9), textcoords="offset points")
    for kind, marker, label in (("searched", "o", "HAT searched"), ("baseline", "s", "scaled Transformer")):
        rs = sorted((r for r in records if r["kind"] == kind and r["bleu"] and r["latency_ms"] is not None),
                    key=lambda r: r["latency_ms"])
        xs = [r["latency_ms"] for r in rs]
        ys = [statistics.fmean(r["bleu"]) for r in rs]
        es = [mean_std(r["bleu"])[1] for r in rs]
        ax.errorbar(xs, ys, yerr=es, fmt=marker, capsize=3, label=label,
                    linestyle="-" if kind == "searched" else "none")
        for r, x, y in zip(rs, xs, ys):  # searched names above-left: baselines sit just right of them
            ax.annotate(r["name"].replace("Transformer-", ""), (x, y), fontsize=7, textcoords="offset points",
                        **(dict(xytext=(-5, 5), ha="right") if kind == "searched" else dict(xytext=(3, 3))))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("SacreBLEU test_2016_flickr (mean ± std over seeds)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path, keep_suffix=True) as tmp:  # savefig picks the format from the suffix
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def seed_std_line(records: list[dict]) -> Optional[str]:
    """The median and largest seed std of SacreBLEU over the models with >= 2 seeds (None if none has)."""
    stds = [statistics.stdev(r["bleu"]) for r in records if len(r["bleu"]) > 1]
    if not stds:
        return None
    return f"seed std of SacreBLEU: median {statistics.median(stds):.2f}, max {max(stds):.2f} over {len(stds)} models"


def predictor_error_line(predictor: Path, configs: dict, latency_ms: dict[str, float]) -> str:
    """How far a latency predictor is from measured latency over the measured ``configs`` (name -> SubnetConfig)."""
    from hat.predictor import load_predictor
    names = [n for n in configs if n in latency_ms]
    predicted = load_predictor(str(predictor)).predict_ms([configs[n] for n in names])
    err = {n: float(p) / latency_ms[n] - 1 for n, p in zip(names, predicted)}
    worst = max(err, key=lambda n: abs(err[n]))
    return (f"latency predictor vs measured over {len(err)} models: mean absolute error "
            f"{100 * statistics.fmean(abs(e) for e in err.values()):.1f}%, largest {100 * err[worst]:+.1f}% "
            f"({worst})")


def records_from_runs(models: dict[str, tuple[str, Optional[float], Path]], runs: dict[str, list[tuple[int, dict]]],
                      latency_ms: dict[str, float], updates: Optional[int]) -> list[dict]:
    """Comparison records from trained runs.

    Args:
        models: ``{name: (kind, budget_ms or None, subnet yaml)}``.
        runs: ``{name: [(seed, result), ...]}``; a result has ``bleu`` and ``valid_nll_loss``.
        latency_ms: measured latency per name (missing: not measured yet).
        updates: the update count every run trained for.
    """
    from hat.config import load_yaml
    from hat.space import SubnetConfig
    out = []
    for name, (kind, budget, sub) in models.items():
        done, meta = runs.get(name, []), load_yaml(sub)
        out.append({"name": name, "kind": kind, "budget_ms": budget, "latency_ms": latency_ms.get(name),
                    "seeds": [s for s, _ in done], "bleu": [d["bleu"] for _, d in done],
                    "valid_nll_loss": [d["valid_nll_loss"] for _, d in done], "params": meta.get("params"),
                    "predicted_latency_ms": meta.get("predicted_latency_ms"),
                    "subnet": SubnetConfig.load_yaml(sub).to_dict(), "updates": updates})
    return out


def ranking_line(ranking: dict, used: str, methods: Sequence[str]) -> Optional[str]:
    """The Kendall tau of each SuperTransformer recipe (``benchmarks/supernet_ranking.py``'s JSON) and which one the
    search used (None when that one was not ranked)."""
    if used not in ranking:
        return None
    taus = ", ".join(f"{m} {ranking[m]['kendall_tau']:.2f} (BLEU {ranking[m]['kendall_tau_bleu']:.2f})"
                     for m in methods if m in ranking)
    return (f"ranking: Kendall tau of inherited vs from-scratch validation NLL over {ranking[used]['n_subnets']} "
            f"SubTransformers: {taus}; the search used {used}")


def annotate(records: list[dict], run_dir: Callable[[str, int], Optional[Path]],
             fitness: Optional[Sequence[tuple]] = None) -> None:
    """Add to the records the paired bootstrap of each measured searched model against its rivals
    (:func:`paired_bootstrap_per_seed`) and, per record, ``(inherited_valid_loss, evaluated_by_search)`` from
    ``fitness`` (:func:`hat.search.scoring.fitness_as_searched`; None: not known)."""
    for r in records:
        if r["kind"] == "searched" and r["bleu"] and r["latency_ms"] is not None:
            rivals = {x["name"]: x for x in (best_rival(r, records), budget_rival(r, records)) if x}
            r["paired_bootstrap"] = [p for x in rivals.values() for p in paired_bootstrap_per_seed(r, x, run_dir)]
    for r, (loss, seen) in zip(records, fitness or [(None, None)] * len(records)):
        r["inherited_valid_loss"], r["evaluated_by_search"] = loss, seen
