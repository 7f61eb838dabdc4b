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


@pytest.fixture(scope="session")
def run_ranks():
    """``run_ranks(script, *args, world=2)``: run ``script`` as ``world`` processes with torchrun's environment
    (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT on a free local port); fails the test if one exits non-zero."""
    import socket
    import subprocess
    import sys

    def run(script, *args, world: int = 2, timeout: float = 120) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        procs = []
        for rank in range(world):
            env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                       MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                       PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
            procs.append(subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                                          stderr=subprocess.PIPE, text=True))
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err[-2000:]

    return run


# HAT's space around the fairseq fixture (embed 64, FFN 128, 4 heads, 2+2 layers, qkv 64): its trained weights load into
# a SuperTransformer of this space, whose SubTransformers are real (inherited) heterogeneous models.
FIXTURE_SPACE = dict(name="fixture_hetero", encoder_embed_dim=[64], decoder_embed_dim=[64, 48],
                     encoder_ffn_embed_dim=[128, 64], decoder_ffn_embed_dim=[128, 96, 48], encoder_layer_num=[2],
                     decoder_layer_num=[2], encoder_self_attention_heads=[4, 2], decoder_self_attention_heads=[4, 2],
                     decoder_ende_attention_heads=[4, 2], decoder_arbitrary_ende_attn=[-1, 1], qkv_dim=64)


@pytest.fixture(scope="session")
def fixture_supernet(fairseq_fixture):
    """The trained fairseq fixture's weights in a SuperTransformer of :data:`FIXTURE_SPACE` (eval mode)."""
    from hat.interop.fairseq import load_transformer
    from hat.nn import SuperTransformer
    from hat.space import SearchSpace
    static = load_transformer(fairseq_fixture / "checkpoint_best.pt")
    sup = SuperTransformer(SearchSpace(**FIXTURE_SPACE), static.cfg)
    sup.load_state_dict(static.state_dict())
    return sup.eval()


@pytest.fixture(scope="session")
def fixture_subnet(fixture_supernet):
    """``fixture_subnet(subnet)``: the static SubTransformer ``subnet`` of :func:`fixture_supernet` (eval mode)."""
    def extract(subnet):
        fixture_supernet.set_active_subnet(subnet)
        return fixture_supernet.get_active_subnet().eval()
    return extract


@pytest.fixture(scope="session")
def fixture_space():
    from hat.space import SearchSpace
    return SearchSpace(**FIXTURE_SPACE)
