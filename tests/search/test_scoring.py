import json
import random

import pytest

from hat.search.scoring import (distributed_map, make_predictor_latency_fn, make_supernet_score_fn,
                                valid_subset_indices)

SETUP = """
import torch
from hat.data import load_split
from hat.nn import ModelConfig, SuperTransformer
from hat.space import load_space
from hat.search.scoring import make_valid_batches, valid_subset_indices

def build(bin_dir):
    torch.manual_seed(0)
    ds = load_split(bin_dir, "valid", "de", "en")
    v = len(ds.src_dict)
    model = SuperTransformer(load_space("multi30k_tiny"), ModelConfig(src_vocab_size=v, tgt_vocab_size=v))
    batches = make_valid_batches(ds, valid_subset_indices(len(ds), 12, seed=1), max_tokens=200)
    return model.eval(), batches
"""


@pytest.fixture(scope="module")
def tiny(fairseq_fixture):
    ns = {}
    exec(SETUP, ns)
    return ns["build"](fairseq_fixture / "bin")


def test_valid_subset_is_fixed_and_seeded():
    a = valid_subset_indices(100, 10, seed=1)
    assert a == valid_subset_indices(100, 10, seed=1) and len(set(a)) == 10 and a == sorted(a)
    assert a != valid_subset_indices(100, 10, seed=2)
    assert valid_subset_indices(5, None, 1) == valid_subset_indices(5, 50, 1) == list(range(5))


def test_supernet_score_fn_is_inherited_valid_loss(tiny, tiny_space):
    from hat.train.evaluate import valid_loss
    model, batches = tiny
    assert sum(b["nsentences"] for b in batches) == 12 and all(b["ntokens"] > 0 for b in batches)
    score = make_supernet_score_fn(model, batches)
    rng = random.Random(0)
    cfgs = [tiny_space.sample(rng) for _ in range(3)] + [tiny_space.largest()]
    losses = score(cfgs)
    assert all(0 < l < 20 for l in losses) and len(set(losses)) == 4
    assert score(cfgs) == losses  # deterministic (eval mode: no dropout)
    model.set_active_subnet(cfgs[1])
    assert valid_loss(model, batches) == pytest.approx(losses[1], rel=1e-6)
    # the SubTransformer with inherited weights scores the same as the supernet with it active
    sub = model.get_active_subnet(cfgs[1]).eval()
    assert valid_loss(sub, batches) == pytest.approx(losses[1], rel=1e-4)


def test_predictor_latency_fn():
    class P:
        def predict_ms(self, configs):
            import numpy as np
            return np.arange(len(configs), dtype=np.float32) + 0.5
    assert make_predictor_latency_fn(P())([None, None]) == [0.5, 1.5]


def test_distributed_map_without_group_is_a_loop():
    assert distributed_map(lambda x: x * 2, [1, 2, 3]) == [2.0, 4.0, 6.0]


WORKER = SETUP + """
import json, os, random, sys
import torch.distributed as dist
torch.set_num_threads(1)
dist.init_process_group("gloo")
from hat.search.scoring import make_supernet_score_fn, distributed_map
model, batches = build(sys.argv[1])
space = load_space("multi30k_tiny")
rng = random.Random(0)
cfgs = [space.sample(rng) for _ in range(5)]
losses = make_supernet_score_fn(model, batches)(cfgs)
odd = distributed_map(lambda c: float(c.decoder_layer_num), cfgs[:1])  # fewer items than ranks
json.dump({"losses": losses, "odd": odd}, open(sys.argv[2] + f".{dist.get_rank()}", "w"))
dist.destroy_process_group()
"""


def test_two_gloo_ranks_equal_single_process(tiny, tiny_space, fairseq_fixture, tmp_path, run_ranks):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run_ranks(script, fairseq_fixture / "bin", tmp_path / "out")
    model, batches = tiny
    rng = random.Random(0)
    cfgs = [tiny_space.sample(rng) for _ in range(5)]
    single = make_supernet_score_fn(model, batches)(cfgs)
    for rank in range(2):
        got = json.loads((tmp_path / f"out.{rank}").read_text())
        assert got["losses"] == pytest.approx(single, rel=1e-9, abs=1e-9)
        assert got["odd"] == [float(cfgs[0].decoder_layer_num)]
