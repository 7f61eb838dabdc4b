"""Search test fixtures (the synthetic problems live in hat.search.synthetic)."""

from __future__ import annotations

import pytest

from hat.search import SearchSettings


@pytest.fixture
def small_settings() -> SearchSettings:
    """HAT's algorithm at a third of the size, for fast tests."""
    return SearchSettings(population_size=40, parent_size=10, mutation_size=15, crossover_size=15, iterations=12)
