"""Shared pytest fixtures: the ../shared folder, tiny spaces and configs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# Two cores: keep intra-op threads at one per test process so runs are stable and parallel pytest is not oversubscribed.
torch.set_num_threads(int(os.environ.get("HAT_TEST_THREADS", "1")))


def _find_shared() -> Path | None:
    env = os.environ.get("HAT_SHARED_DIR")
    for cand in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared", REPO_ROOT / "shared"]:
        if (cand / "README.md").is_file():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """Path to ../shared (real data and fairseq fixtures); tests using it skip when it is absent."""
    p = _find_shared()
    if p is None:
        pytest.skip("../shared not found (set HAT_SHARED_DIR)")
    return p


@pytest.fixture(scope="session")
def fairseq_fixture(shared_dir) -> Path:
    return shared_dir / "fixtures" / "fairseq_multi30k_tiny"


@pytest.fixture
def rng() -> random.Random:
    return random.Random(0)


@pytest.fixture(scope="session")
def tiny_space():
    from hat.space import load_space
    return load_space("multi30k_tiny")
