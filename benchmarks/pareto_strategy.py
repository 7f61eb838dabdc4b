"""Pareto-mode strategy: separate runs per budget vs ``per_budget`` (one evolution per budget, shared fitness cache)
vs ``shared`` (one population under the loosest budget + the archive), on the synthetic knapsack problem
(``hat.search.synthetic``: ``toy_loss`` / ``toy_latency``), so it runs in seconds and is exactly reproducible.

Budgets: ``spread_budgets`` over the predicted latency range (``--budgets`` of them, its RNG seeded with ``--seed``);
every strategy gets the same seed. A separate run is what ``hat-search --latency B --seed S`` does for one budget.
Prints the best loss per budget and the configs scored; the raw record (every budget's best config, loss, latency)
goes to ``benchmarks/results/pareto_strategy.json``.

    python benchmarks/pareto_strategy.py [--space multi30k_tiny] [--settings fast] [--budgets 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.record import RunRecord  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="multi30k_tiny")
    ap.add_argument("--settings", default="fast", help="search settings (name under configs/search or YAML)")
    ap.add_argument("--budgets", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", help="raw record path (default benchmarks/results/pareto_strategy.json)")
    args = ap.parse_args(argv)
    rec = RunRecord("pareto_strategy", out=args.results)

    from hat.search import load_settings
    from hat.search.evolution import FitnessCache, LatencyCache
    from hat.search.pareto import pareto_search, spread_budgets
    from hat.search.strategies import search_strategy
    from hat.search.synthetic import toy_latency, toy_loss
    from hat.space import load_space
    space = load_space(args.space)
    settings = load_settings(args.settings)
    budgets = spread_budgets(space, toy_latency, args.budgets, random.Random(args.seed))

    rows = []
    separate = [pareto_search(space, toy_loss, toy_latency, [b], settings, random.Random(args.seed)) for b in budgets]
    rows.append(("separate", [r.results[0] for r in separate], sum(r.evaluations for r in separate)))
    for strategy in ("per_budget", "shared"):
        r = search_strategy(strategy).search(space, FitnessCache(toy_loss), LatencyCache(toy_latency), budgets,
                                             settings, random.Random(args.seed))
        rows.append((strategy, r.results, r.evaluations))

    print(f"space {space.name}, settings {args.settings}, seed {args.seed}; best loss per budget (tightest first)")
    print(f"| strategy | {' | '.join(f'{b:.1f} ms' for b in budgets)} | configs scored |")
    print("|---|" + "---|" * len(budgets) + "---|")
    samples = []
    for name, results, evals in rows:
        print(f"| {name} | {' | '.join(f'{r.best_loss:.4f}' for r in results)} | {evals} |")
        for b, r in zip(budgets, results):
            samples.append({"strategy": name, "budget_ms": b, "best_loss": r.best_loss,
                            "best_latency_ms": r.best_latency_ms, "best": r.best.to_dict()})
    summary = {"budgets_ms": budgets, "configs_scored": {name: evals for name, _, evals in rows},
               "best_loss": {name: [r.best_loss for r in results] for name, results, _ in rows}}
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary=summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
