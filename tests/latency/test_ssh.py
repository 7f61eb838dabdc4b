"""Remote profiling through a real loopback sshd: records, retries after the server dies, host-key refusal."""

from __future__ import annotations

import pytest

from hat.errors import HatError
from hat.latency.backends import get_backend
from hat.latency.devices import load_device
from hat.latency.profiler import profile
from hat.latency.protocol import ProfileSettings
from hat.latency.records import read_latency_csv

SETTINGS = ProfileSettings(src_len=6, tgt_len=4, beam=2, vocab_size=64, warmup=1, repeats=3)
# Slow enough (~1 s per config) that the server can be killed while the runner is still measuring.
SLOW = ProfileSettings(src_len=30, tgt_len=30, beam=5, vocab_size=2000, warmup=1, repeats=30)


def _tiny_configs(space, n):
    import random
    rng = random.Random(5)
    out = [space.smallest()]
    while len(out) < n:
        c = space.sample(rng)
        if c not in out:
            out.append(c)
    return out


def test_remote_profile_records(sshd, tiny_space, tmp_path):
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", batch_size=2))
    configs = _tiny_configs(tiny_space, 3)
    out = tmp_path / "lat.csv"
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        recs = profile(configs, backend, out=out)
    assert [r.subnet for r in recs] == configs
    back = read_latency_csv(out)
    assert [r.subnet for r in back] == configs
    for r in back:
        assert r.runtime == "onnxruntime" and r.device == "loopback_ssh" and r.threads == 1
        assert r.latency_mean_encoder > 0 and r.latency_mean_decoder > 0
        assert "onnxruntime" in r.host and r.timestamp
    assert not list((sshd.root / "remote").iterdir()), "remote batch folders must be removed"


def test_server_dies_mid_run(sshd, tiny_space, tmp_path):
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", batch_size=4, retries=2, backoff_s=0.05))
    configs = _tiny_configs(tiny_space, 4)
    out = tmp_path / "lat.csv"
    seen = []

    def kill_after_first(rec):
        seen.append(rec)
        if len(seen) == 1:
            sshd.stop()

    with get_backend(dev, SLOW, tiny_space.qkv_dim) as backend:
        with pytest.raises(HatError, match="loopback_ssh") as e:
            profile(configs, backend, out=out, on_record=kill_after_first)
    assert "retries" in str(e.value)
    back = read_latency_csv(out)
    assert 1 <= len(back) < len(configs)
    assert [r.subnet for r in back] == configs[:len(back)]
    assert out.read_text().endswith("\n")


def test_unknown_host_key_refused(sshd, tiny_space, tmp_path):
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", known_hosts=empty))
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        with pytest.raises(HatError, match="host key not found"):
            profile([tiny_space.smallest()], backend)


def test_trust_on_first_use_saves_key(sshd, tiny_space, tmp_path):
    kh = tmp_path / "kh"
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", known_hosts=kh))
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim, trust_on_first_use=True) as backend:
        recs = profile([tiny_space.smallest()], backend)
    assert len(recs) == 1
    assert f"[127.0.0.1]:{sshd.port}" in kh.read_text()


def test_connection_refused_names_device(tiny_space, tmp_path):
    """Nothing listens: bounded retries, then one HatError naming the device (no sshd needed)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import subprocess
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kh = tmp_path / "kh"
    kh.write_text("")
    (tmp_path / "dev.yaml").write_text(
        f"name: ghost\ntransport: ssh\nruntime: onnxruntime\nssh: {{host: 127.0.0.1, port: {port}, user: x, "
        f"key_file: {key}, known_hosts: {kh}, retries: 2, backoff_s: 0.01, connect_timeout_s: 2}}\n")
    dev = load_device(tmp_path / "dev.yaml")
    sleeps = []
    from hat.latency.backends.onnxruntime import OnnxRuntimeBackend
    backend = OnnxRuntimeBackend(SETTINGS, dev, tiny_space.qkv_dim, sleep=sleeps.append)
    with pytest.raises(HatError, match=r"device ghost .*gave up after 2 retries"):
        profile([tiny_space.smallest()], backend)
    assert sleeps == [0.01, 0.02]


def test_auth_failure_retried_then_named(sshd, tiny_space, tmp_path):
    import subprocess
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", key_file=str(other), retries=1, backoff_s=0.01))
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        with pytest.raises(HatError, match=r"device loopback_ssh .*authentication failed.*1 retries"):
            profile([tiny_space.smallest()], backend)


def test_changed_host_key_refused(sshd, tiny_space, tmp_path):
    import subprocess
    fake = tmp_path / "fake_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(fake)], check=True)
    kind, key = (tmp_path / "fake_host_key.pub").read_text().split()[:2]
    kh = tmp_path / "kh"
    kh.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", known_hosts=kh))
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        with pytest.raises(HatError, match="does not match"):
            profile([tiny_space.smallest()], backend)


def test_remote_runner_thread_cpu_interleaved(sshd, tiny_space, tmp_path):
    """The uploaded runner.py honours timer thread_cpu and interleave; the CSV records the timer."""
    import dataclasses
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", batch_size=3))
    settings = dataclasses.replace(SETTINGS, timer="thread_cpu", interleave=2, estimator="min")
    configs = _tiny_configs(tiny_space, 3)
    out = tmp_path / "lat.csv"
    with get_backend(dev, settings, tiny_space.qkv_dim) as backend:
        profile(configs, backend, out=out)
    back = read_latency_csv(out)
    assert [r.subnet for r in back] == configs
    assert all(r.timer == "thread_cpu" and r.estimator == "min" and r.latency_mean_decoder > 0 for r in back)


def test_remote_thread_cpu_refused_with_threads(tmp_path):
    """A remote device with 4 threads cannot use thread_cpu: refused before connecting (no sshd needed)."""
    (tmp_path / "dev.yaml").write_text("name: pi\ntransport: ssh\nthreads: 4\nssh: {host: h, user: u}\n")
    import dataclasses
    with pytest.raises(HatError, match="device pi: timer thread_cpu is invalid here: 4 intra-op threads"):
        get_backend(load_device(tmp_path / "dev.yaml"), dataclasses.replace(SETTINGS, timer="thread_cpu"), 128)
