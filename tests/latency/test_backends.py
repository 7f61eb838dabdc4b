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


def test_ort_loop_is_hats_whole_decode_with_forced_length(tiny_space, tmp_path):
    """The ONNX Runtime latency loop times hat's runtime as it ships (its beam search, beam bookkeeping included),
    with exactly ``tgt_len`` decoder steps."""
    from hat.latency.backends.onnxruntime import export_subnet, load_runner
    runner = load_runner()
    cfg = sample_configs(tiny_space, 1, seed=11)[0]
    export_subnet(cfg, FAST, tiny_space.qkv_dim, tmp_path)
    loop = runner.Loop(str(tmp_path), dict(FAST.to_json_dict(), threads=1))
    steps, real = [], loop.tr.step_candidates
    loop.tr.step_candidates = lambda state, tok, step, *rest: (steps.append(step), real(state, tok, step, *rest))[1]
    enc_ms, dec_ms = loop.run_once()
    assert steps == list(range(FAST.tgt_len)) and enc_ms > 0 and dec_ms > 0


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


def test_int8_device_measures_quantized_exports(tiny_space, tmp_path):
    """A device YAML with ``quantize: int8`` profiles int8 ONNX exports and says so in the CSV provenance."""
    from hat.latency.records import read_latency_csv
    yaml_path = tmp_path / "cpu_int8.yaml"
    yaml_path.write_text("name: cpu_int8\ntransport: local\nruntime: onnxruntime\nthreads: 1\nquantize: int8\n")
    dev = load_device(yaml_path)
    out = tmp_path / "lat.csv"
    (rec,) = profile([tiny_space.smallest()], get_backend(dev, FAST, tiny_space.qkv_dim), out=out)
    assert rec.quantize == "int8" and rec.latency_ms > 0
    assert read_latency_csv(out)[0].quantize == "int8"
    with pytest.raises(HatError, match="quantize"):
        DeviceConfig(name="bad", runtime="eager", quantize="int8")


@pytest.mark.parametrize("device", ["cpu", "cpu_eager"])
def test_thread_cpu_timer_recorded(device, tiny_space, tmp_path):
    """ORT and eager with 1 thread compute on the calling thread: thread_cpu is accepted, used and recorded."""
    import dataclasses
    dev = dataclasses.replace(load_device(device), timer="thread_cpu", estimator="median")
    out = tmp_path / "lat.csv"
    with get_backend(dev, FAST, tiny_space.qkv_dim) as b:
        assert b.settings.timer == "thread_cpu"
        (rec,) = profile([tiny_space.smallest()], b, out=out, load_check=False)
    (back,) = read_latency_csv(out)
    assert (back.timer, back.estimator) == ("thread_cpu", "median") == (rec.timer, rec.estimator)
    assert back.latency_mean_encoder > 0 and back.latency_mean_decoder > 0


def test_device_timer_overrides_settings(tiny_space):
    import dataclasses
    settings = dataclasses.replace(FAST, timer="thread_cpu")
    assert get_backend(DeviceConfig(name="w", runtime="eager", timer="wall"), settings, 128).settings.timer == "wall"
    assert get_backend(DeviceConfig(name="u", runtime="eager"), settings, 128).settings.timer == "thread_cpu"


def test_device_estimator_overrides_settings():
    import dataclasses
    settings = dataclasses.replace(FAST, estimator="median")
    assert get_backend(DeviceConfig(name="m", runtime="eager", estimator="min"), settings, 128).settings.estimator == "min"
    assert get_backend(DeviceConfig(name="u", runtime="eager"), settings, 128).settings.estimator == "median"
    with pytest.raises(HatError, match="estimator must be one of"):
        DeviceConfig(name="bad", runtime="eager", estimator="mean")


@pytest.mark.parametrize("device", [DeviceConfig(name="t2", runtime="eager", threads=2),
                                    DeviceConfig(name="t4", runtime="onnxruntime", threads=4),
                                    DeviceConfig(name="g", runtime="eager", accelerator="cuda"),
                                    DeviceConfig(name="tv", runtime="tvm")])
def test_thread_cpu_refused_where_invalid(device):
    import dataclasses
    with pytest.raises(HatError, match=rf"device {device.name}: timer thread_cpu is invalid here"):
        get_backend(device, dataclasses.replace(FAST, timer="thread_cpu"), 128)


def test_thread_cpu_guard_catches_work_on_other_threads():
    """The empirical check behind thread_cpu: work done by another thread during the measurement is refused."""
    import threading
    from hat.latency.backends.base import ThreadCpuGuard

    def burn():
        t = __import__("time").thread_time()
        while __import__("time").thread_time() - t < 0.1:
            pass

    with ThreadCpuGuard("thread_cpu", "device x"):
        burn()  # on the calling thread: fine
    with pytest.raises(HatError, match="device x: timer thread_cpu is invalid: other threads"):
        with ThreadCpuGuard("thread_cpu", "device x"):
            th = threading.Thread(target=burn)
            th.start()
            th.join()
    with ThreadCpuGuard("wall", "device x"):  # wall: not checked
        th = threading.Thread(target=burn)
        th.start()
        th.join()


def test_runner_refuses_thread_cpu_with_threads(tiny_space, tmp_path, monkeypatch):
    """runner.py (torch-free) refuses thread_cpu with more than one intra-op thread, and its own guard refuses a
    session that computes on worker threads (ORT forced to 2 intra-op threads behind the check's back)."""
    from hat.latency.backends.onnxruntime import export_subnet, load_runner
    runner = load_runner()
    export_subnet(tiny_space.largest(), FAST, tiny_space.qkv_dim, tmp_path / "m")
    settings = dict(FAST.to_json_dict(), threads=2, timer="thread_cpu")
    with pytest.raises(ValueError, match="thread_cpu is invalid with 2 intra-op threads"):
        runner.measure_many([str(tmp_path / "m")], settings)
    enc, dec = runner.measure(str(tmp_path / "m"), dict(settings, threads=1))
    assert len(enc) == len(dec) == FAST.repeats and min(enc) > 0
    monkeypatch.setattr(runner, "check_timer", lambda settings: None)
    with pytest.raises(RuntimeError, match="thread_cpu is invalid: other threads used"):
        runner.measure_many([str(tmp_path / "m")], dict(settings, vocab_size=10000, src_len=30, tgt_len=30))
