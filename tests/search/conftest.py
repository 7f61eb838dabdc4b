"""Search test fixtures (the synthetic problems live in hat.search.synthetic)."""

from __future__ import annotations

import pytest

from hat.search import SearchSettings


@pytest.fixture
def small_settings() -> SearchSettings:
    """HAT's algorithm at a third of the size, for fast tests."""
    return SearchSettings(population_size=30, parent_size=8, mutation_size=11, crossover_size=11, iterations=10)
