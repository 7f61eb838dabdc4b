"""Evolutionary search under a latency budget (HAT), Pareto mode, SuperTransformer scoring.

Public API: :func:`evolution_search`, :class:`SearchResult`, :class:`SearchSettings`, :func:`load_settings`,
:func:`pareto_search`, :class:`ParetoResult`, :func:`pareto_front`, :func:`scored_archive`, :func:`plot_front`,
:func:`budget_subnet_filename`, :class:`FitnessCache`, :func:`latency_range`; scoring functions live in :mod:`hat.search.scoring` (imports torch).
"""

from hat.search.evolution import (FitnessCache, IterationStats, LatencyCache, SearchResult, evolution_search,
                                  initial_population, latency_range)
from hat.search.log import SearchLog
from hat.search.pareto import (FrontPoint, ParetoResult, budget_subnet_filename, pareto_front, pareto_search,
                               plot_front, scored_archive, spread_budgets)
from hat.search.settings import SearchSettings, load_settings

__all__ = [
    "FitnessCache", "FrontPoint", "IterationStats", "LatencyCache", "ParetoResult", "SearchLog", "SearchResult",
    "SearchSettings", "budget_subnet_filename", "evolution_search", "initial_population", "latency_range",
    "load_settings", "pareto_front", "pareto_search", "plot_front", "scored_archive", "spread_budgets",
]
