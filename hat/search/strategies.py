"""Search strategies behind one interface, registered by name (archai's ``Searcher``): how budgets are searched
with a fitness cache (loss of a config with inherited weights) and a latency cache (predicted ms).

Built-in (``SearchSettings.pareto_strategy`` names the one a multi-budget search uses):

* ``per_budget`` (default): HAT's evolution for each budget (one budget: exactly :func:`evolution_search` with the
  run's RNG; several: :func:`pareto_search`, every evolution from the same RNG state, one shared fitness cache);
* ``shared``: one population evolved under the loosest budget, the best config per budget read from the archive.

A strategy from outside the package subclasses :class:`SearchStrategy` and registers it:
``register_search_strategy("name", MyStrategy)``; ``tests/search/test_strategies.py`` runs the contract on every
member.
"""

from __future__ import annotations

import random
from typing import Optional, Sequence

from hat.registry import make_register
from hat.search.evolution import FitnessCache, LatencyCache, evolution_search
from hat.search.log import SearchLog
from hat.search.pareto import ParetoResult, pareto_front, pareto_search, scored_archive
from hat.search.settings import SEARCH_STRATEGIES, SearchSettings
from hat.space import SearchSpace


class SearchStrategy:
    """Searches ``budgets_ms`` (sorted, one or more) and returns the best config per budget and the front."""

    name = ""

    def search(self, space: SearchSpace, fitness: FitnessCache, latency: LatencyCache, budgets_ms: Sequence[float],
               settings: SearchSettings, rng: random.Random, *, log: Optional[SearchLog] = None,
               progress: bool = False) -> ParetoResult:
        raise NotImplementedError


class PerBudget(SearchStrategy):
    """HAT's evolution per budget (see the module docstring)."""

    name = "per_budget"

    def search(self, space, fitness, latency, budgets_ms, settings, rng, *, log=None, progress=False):
        if len(budgets_ms) > 1:
            return pareto_search(space, fitness, latency, budgets_ms, settings, rng, log=log, progress=progress)
        r = evolution_search(space, fitness, latency, budgets_ms[0], settings, rng, log=log, progress=progress)
        archive = scored_archive(fitness, latency)
        return ParetoResult(budgets_ms=list(budgets_ms), results=[r], front=pareto_front(archive), archive=archive,
                            evaluations=r.evaluations, cache_hits=r.cache_hits, seconds=r.seconds)


class Shared(SearchStrategy):
    """One population for every budget (see the module docstring)."""

    name = "shared"

    def search(self, space, fitness, latency, budgets_ms, settings, rng, *, log=None, progress=False):
        return pareto_search(space, fitness, latency, budgets_ms, settings, rng, log=log, progress=progress,
                             loosest_only=True)


register_search_strategy = make_register(SEARCH_STRATEGIES)


def search_strategy(name: str) -> SearchStrategy:
    """An instance of the strategy registered as ``name``.

    Raises:
        ConfigError: unknown strategy (the known ones are listed).
    """
    return SEARCH_STRATEGIES.get(name, "search settings")()


__all__ = ["PerBudget", "SearchStrategy", "Shared", "register_search_strategy", "search_strategy"]
