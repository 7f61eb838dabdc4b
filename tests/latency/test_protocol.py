"""Timing protocol, device profiles and analytic FLOPs."""

from __future__ import annotations

import pytest

from hat.errors import ConfigError
from hat.latency.devices import load_device
from hat.latency.flops import subnet_macs
from hat.latency.protocol import ProfileSettings, trimmed_stats


def test_trimmed_stats_drops_ends():
    xs = [1.0] * 8 + [100.0, 0.0]  # one outlier each side of 10 samples: both dropped
    mean, std = trimmed_stats(xs, 0.1)
    assert mean == 1.0 and std == 0.0
    assert trimmed_stats([3.0], 0.1) == (3.0, 0.0)


def test_runner_stats_match_protocol():
    from hat.latency.backends.onnxruntime import load_runner
    runner = load_runner()
    xs = [5.0, 1.0, 2.5, 7.0, 3.0, 9.0, 4.0, 0.5, 6.0, 8.0, 2.0]
    assert runner.trimmed_stats(xs, 0.1) == pytest.approx(trimmed_stats(xs, 0.1))
    s = ProfileSettings(vocab_size=100, seed=4)
    assert runner.source_tokens(s.to_json_dict(), 100) == s.source_tokens()


def test_settings():
    s = ProfileSettings()
    assert (s.batch_size, s.src_len, s.tgt_len, s.beam) == (1, 30, 30, 5)
    assert ProfileSettings.hat("iwslt").src_len == 23
    toks = s.source_tokens()
    assert toks == ProfileSettings().source_tokens() and len(toks[0]) == 30
    assert all(4 <= t < s.vocab_size for t in toks[0])
    tgt = s.target_tokens()
    assert len(tgt) == 30 and tgt[0] == [2] * 5
    with pytest.raises(ConfigError, match="trim"):
        ProfileSettings(trim=0.5)
    with pytest.raises(ConfigError, match="repeats"):
        ProfileSettings(repeats=0)


@pytest.mark.parametrize("name", ["cpu", "cpu_eager", "gpu", "rpi4", "debug"])
def test_shipped_devices_load(name):
    d = load_device(name)
    assert d.name == name
    if name == "rpi4":
        assert d.transport == "ssh" and d.ssh.host and d.runtime == "onnxruntime"


@pytest.mark.parametrize("text,match", [
    ("name: x\nruntime: onnxruntime\nbogus: 1\n", "unknown key"),
    ("name: x\nruntime: caffe\n", "runtime must be one of"),
    ("name: x\ntransport: ssh\n", "needs an 'ssh:' section"),
    ("name: x\ntransport: ssh\nruntime: eager\nssh: {host: h, user: u}\n", "runtime eager supports transport local"),
    ("name: x\nssh: {host: h, user: u, port: 70000}\n", "port"),
    ("name: [x\n", "malformed YAML"),
])
def test_bad_device_yaml(tmp_path, text, match):
    p = tmp_path / "dev.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_device(p)


def test_unknown_device_lists_shipped():
    with pytest.raises(ConfigError, match="cpu_eager"):
        load_device("no_such_device")


def test_relative_key_paths_resolve_next_to_yaml(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("name: d\ntransport: ssh\nssh: {host: h, user: u, key_file: keys/id, known_hosts: kh}\n")
    d = load_device(p)
    assert d.path(d.ssh.key_file) == str(tmp_path / "keys" / "id")


def test_flops(tiny_space):
    small, large = tiny_space.smallest(), tiny_space.largest()
    ms, ml = subnet_macs(small, 128), subnet_macs(large, 128)
    assert 0 < ms.total < ml.total
    # Encoder of the smallest: 3 layers x (4 S C q + 2 S^2 q + 2 S C F) at S=30, C=96, q=128, F=128.
    assert ms.encoder == 3 * (4 * 30 * 96 * 128 + 2 * 30 * 30 * 128 + 2 * 30 * 96 * 128)
    assert subnet_macs(small, 128, vocab_size=1000).output == 30 * 96 * 1000
    assert subnet_macs(small, 128, rows=5).decoder == 5 * ms.decoder
    assert ms.flops == 2 * ms.total


@pytest.mark.parametrize("timer,threads,accelerator,runtime,error", [
    ("wall", 4, "cpu", "onnxruntime", None),
    ("wall", 1, "cuda", "eager", None),
    ("thread_cpu", 1, "cpu", "onnxruntime", None),
    ("thread_cpu", 1, "cpu", "eager", None),
    ("thread_cpu", 2, "cpu", "onnxruntime", "2 intra-op threads"),
    ("thread_cpu", 4, "cpu", "eager", "4 intra-op threads"),
    ("thread_cpu", 1, "cuda", "eager", "accelerator cuda"),
    ("thread_cpu", 1, "cpu", "tvm", "runtime tvm is not verified"),
    ("cpu_time", 1, "cpu", "eager", "timer must be one of"),
])
def test_check_timer(timer, threads, accelerator, runtime, error):
    from hat.latency.protocol import check_timer
    if error is None:
        check_timer(timer, threads, accelerator, runtime)
        return
    with pytest.raises(ConfigError, match=error) as e:
        check_timer(timer, threads, accelerator, runtime, "device d")
    assert "\n" not in str(e.value) and str(e.value).startswith("device d")


def test_device_yaml_timer(tmp_path):
    p = tmp_path / "dev.yaml"
    p.write_text("name: d\nruntime: onnxruntime\nthreads: 1\ntimer: thread_cpu\n")
    assert load_device(p).timer == "thread_cpu"
    p.write_text("name: d\nruntime: onnxruntime\nthreads: 4\ntimer: thread_cpu\n")
    with pytest.raises(ConfigError, match="timer thread_cpu is invalid here: 4 intra-op threads"):
        load_device(p)
    p.write_text("name: d\ntransport: ssh\nthreads: 4\ntimer: thread_cpu\nssh: {host: h, user: u}\n")
    with pytest.raises(ConfigError, match="thread_cpu"):
        load_device(p)


@pytest.mark.parametrize("estimator,expect", [("trimmed_mean", 2.75), ("median", 2.5), ("min", 1.0)])
def test_summarize(estimator, expect):
    from hat.latency.protocol import summarize
    xs = [1.0, 2.0, 3.0, 5.0]
    value, spread = summarize(xs, estimator, trim=0.0)
    assert value == pytest.approx(expect)
    assert spread == pytest.approx(trimmed_stats(xs, 0.0)[1])
    with pytest.raises(ConfigError, match="estimator"):
        ProfileSettings(estimator="mean")
    with pytest.raises(ConfigError, match="timer"):
        ProfileSettings(timer="cpu")
