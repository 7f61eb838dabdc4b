"""hat.distributed: torchrun's environment -> process group, for training and search alike."""

from __future__ import annotations

import json

import pytest
import torch

from hat.distributed import DistInfo, init_distributed, local_device


@pytest.mark.parametrize("world", [None, "1"])
def test_single_process_without_group(monkeypatch, world):
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    if world:
        monkeypatch.setenv("WORLD_SIZE", world)
    info = init_distributed(torch.device("cpu"))
    assert info == DistInfo() and info.is_main and not info.enabled
    assert not torch.distributed.is_initialized()


@pytest.mark.parametrize("use_cuda, local_rank, expected", [(False, "1", "cpu"), (True, "1", "cuda:1"),
                                                            (True, None, "cuda:0")])
def test_local_device_follows_local_rank(monkeypatch, use_cuda, local_rank, expected):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    if local_rank is not None:
        monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert local_device(use_cuda) == torch.device(expected)


WORKER = """
import json, sys
import torch
import torch.distributed as dist
from hat.distributed import init_distributed
info = init_distributed(torch.device("cpu"))
again = init_distributed(torch.device("cpu"))  # joining twice keeps the group
t = torch.tensor([float(info.rank + 1)])
dist.all_reduce(t)
json.dump({"rank": info.rank, "world": info.world_size, "local": info.local_rank, "main": info.is_main,
           "enabled": info.enabled, "same": again == info, "backend": dist.get_backend(), "sum": t.item()},
          open(sys.argv[1] + f".{info.rank}", "w"))
dist.destroy_process_group()
"""


def test_two_ranks_join_one_gloo_group(tmp_path, run_ranks):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run_ranks(script, tmp_path / "out")
    got = [json.loads((tmp_path / f"out.{r}").read_text()) for r in range(2)]
    assert got == [{"rank": r, "world": 2, "local": r, "main": r == 0, "enabled": True, "same": True,
                    "backend": "gloo", "sum": 3.0} for r in range(2)]
