"""Local backends: debug is deterministic; eager and ONNX Runtime agree with each other."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hat.errors import HatError
from hat.latency.backends import get_backend
from hat.latency.devices import DeviceConfig, load_device
from hat.latency.profiler import profile, sample_configs
from hat.latency.protocol import ProfileSettings
from hat.latency.records import read_latency_csv

FAST = ProfileSettings(src_len=10, tgt_len=8, beam=5, vocab_size=500, warmup=1, repeats=5)


def test_debug_backend_deterministic(tiny_space, tmp_path):
    dev = load_device("debug")
    configs = sample_configs(tiny_space, 5, seed=3)
    with get_backend(dev, FAST, tiny_space.qkv_dim) as b:
        a = profile(configs, b, out=tmp_path / "a.csv")
        c = profile(configs, b)
    assert [r.latency_ms for r in a] == [r.latency_ms for r in c]
    assert all(r.latency_std_encoder == 0 and r.runtime == "debug" for r in a)
    small, large = profile([tiny_space.smallest(), tiny_space.largest()], get_backend(dev, FAST, 128))
    assert small.latency_ms < large.latency_ms
    assert len(read_latency_csv(tmp_path / "a.csv")) == 5


def test_sample_configs_seeded_and_distinct(tiny_space):
    a = sample_configs(tiny_space, 20, seed=7, widen=True)
    assert a == sample_configs(tiny_space, 20, seed=7, widen=True)
    assert len({c.key() for c in a}) == 20
    wide = tiny_space.widened()
    assert all(wide.contains(c) for c in a)
    assert any(not tiny_space.contains(c) for c in a)  # the widened choices are used
    assert all(tiny_space.contains(c) for c in sample_configs(tiny_space, 20, seed=7, widen=False))


def test_interrupted_run_keeps_finished_records(tiny_space, tmp_path):
    """A backend dying mid-run (here: on the 3rd config) leaves the first records intact; resume completes."""
    from hat.latency.backends.debug import DebugBackend

    class Flaky(DebugBackend):
        calls = 0

        def measure_chunk(self, subnets):
            Flaky.calls += 1
            if Flaky.calls == 3:
                raise KeyboardInterrupt
            return super().measure_chunk(subnets)

    configs = sample_configs(tiny_space, 5, seed=1)
    out = tmp_path / "lat.csv"
    with pytest.raises(KeyboardInterrupt):
        profile(configs, Flaky(FAST, load_device("debug"), 128), out=out)
    assert [r.subnet for r in read_latency_csv(out)] == configs[:2]
    more = profile(configs, Flaky(FAST, load_device("debug"), 128), out=out, resume=True)
    assert [r.subnet for r in more] == configs[2:]
    assert [r.subnet for r in read_latency_csv(out)] == configs


def test_local_backends_rank_configs_alike(tiny_space):
    """Eager and ONNX Runtime both find the 1-decoder-layer small config faster than the large one."""
    small, large = tiny_space.smallest(), tiny_space.largest()
    settings = ProfileSettings(src_len=30, tgt_len=30, beam=5, vocab_size=500, warmup=1, repeats=5)
    for name in ("cpu", "cpu_eager"):
        with get_backend(load_device(name), settings, tiny_space.qkv_dim) as b:
            rs, rl = profile([small, large], b)
        assert rs.runtime == load_device(name).runtime
        assert rs.latency_mean_decoder < rl.latency_mean_decoder, name
        assert rs.latency_ms < rl.latency_ms, name


def test_ort_and_eager_outputs_match(tiny_space, tmp_path):
    """The timed ONNX Runtime loop computes the same logits as the timed eager loop."""
    from hat.latency.backends.eager import EagerLoop, build_static_model
    from hat.latency.backends.onnxruntime import export_subnet, load_runner
    runner = load_runner()
    cfg = sample_configs(tiny_space, 1, seed=11)[0]
    model = build_static_model(cfg, FAST, tiny_space.qkv_dim)
    loop = EagerLoop(model, cfg, FAST, tiny_space.qkv_dim)
    with torch.no_grad():
        ref = loop.decode(loop.encode()).numpy()
    export_subnet(cfg, FAST, tiny_space.qkv_dim, tmp_path)
    ort_model = runner.OrtSubnet(str(tmp_path))
    feeds = ort_model.init_state(ort_model.encode(FAST.source_tokens()), FAST.beam)
    for step, toks in enumerate(FAST.target_tokens()):
        logits = ort_model.step(feeds, toks, step)
    assert logits.shape == ref.shape == (FAST.beam, FAST.vocab_size)
    assert np.abs(logits - ref).max() < 1e-4


def test_cuda_device_without_gpu(tiny_space):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(HatError, match="no CUDA GPU"):
        profile([tiny_space.smallest()], get_backend(load_device("gpu"), FAST, 128))


def test_threads_pinned_and_restored(tiny_space):
    before = torch.get_num_threads()
    dev = DeviceConfig(name="t2", runtime="eager", threads=2)
    (rec,) = profile([tiny_space.smallest()], get_backend(dev, FAST, 128))
    assert rec.threads == 2 and torch.get_num_threads() == before


def test_tvm_missing_is_a_clear_error(monkeypatch, tiny_space):
    import sys
    monkeypatch.setitem(sys.modules, "tvm", None)  # import tvm -> ImportError
    with pytest.raises(HatError, match=r"pip install 'hat\[tvm\]'"):
        profile([tiny_space.smallest()], get_backend(DeviceConfig(name="t", runtime="tvm"), FAST, 128))


@pytest.mark.slow
def test_tvm_backend_measures(tiny_space):
    pytest.importorskip("tvm")
    settings = ProfileSettings(src_len=6, tgt_len=3, beam=2, vocab_size=50, warmup=0, repeats=2)
    (rec,) = profile([tiny_space.smallest()], get_backend(DeviceConfig(name="t", runtime="tvm"), settings, 128))
    assert rec.runtime == "tvm" and rec.latency_mean_encoder > 0 and rec.latency_mean_decoder > 0
    assert "tvm" in rec.host
