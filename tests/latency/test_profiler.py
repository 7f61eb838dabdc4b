"""Profiler: interleaved rounds, exact resume after SIGKILL, drift and load warnings, estimators in the CSV."""

from __future__ import annotations

import pytest

from hat.latency.backends.debug import DebugBackend
from hat.latency.devices import load_device
from hat.latency.load import LoadReport
from hat.latency.profiler import LatencyWarning, profile, sample_configs
from hat.latency.protocol import ProfileSettings
from hat.latency.records import read_latency_csv

FAST = ProfileSettings(src_len=10, tgt_len=8, beam=5, vocab_size=500, warmup=1, repeats=3)


def _settings(**kw) -> ProfileSettings:
    import dataclasses
    return dataclasses.replace(FAST, **kw)


def test_rounds_time_every_config_once(tiny_space):
    """interleave 3: each round runs every config of the chunk once; chunks are measured one after another."""
    order = []

    class Recording(DebugBackend):
        def prepare(self, subnet):
            run = super().prepare(subnet)
            key = subnet.key()
            inner = run.run_once

            def run_once():
                order.append(key)
                return inner()
            run.run_once = run_once
            return run

    configs = sample_configs(tiny_space, 5, seed=2)
    keys = [c.key() for c in configs]
    s = _settings(interleave=3, warmup=1, repeats=2)
    recs = profile(configs, Recording(s, load_device("debug"), tiny_space.qkv_dim))
    assert [r.subnet for r in recs] == configs
    assert order == keys[:3] * 3 + keys[3:] * 3  # (warmup 1 + repeats 2) rounds per chunk


@pytest.mark.parametrize("estimator,expect", [("trimmed_mean", 3.0), ("median", 2.5), ("min", 1.0)])
def test_estimator_fills_latency_columns(estimator, expect, tmp_path, tiny_space):
    from hat.latency.backends.base import Measurement
    from hat.latency.profiler import make_record
    b = DebugBackend(_settings(estimator=estimator, trim=0.0), load_device("debug"), tiny_space.qkv_dim)
    m = Measurement([1.0, 2.0, 3.0, 6.0], [1.0, 2.0, 3.0, 6.0], host="h", threads=1, timer="thread_cpu")
    rec = make_record(tiny_space.smallest(), m, b)
    assert rec.latency_mean_encoder == pytest.approx(expect) and rec.latency_mean_decoder == pytest.approx(expect)
    assert (rec.timer, rec.estimator) == ("thread_cpu", estimator)
    from hat.latency.records import CsvAppender
    with CsvAppender(tmp_path / "l.csv") as out:
        out.append(rec)
    (back,) = read_latency_csv(tmp_path / "l.csv")
    assert (back.timer, back.estimator) == ("thread_cpu", estimator)


def _drift_warnings(tiny_space, drift: float) -> list[str]:
    s = _settings(drift_every=4, interleave=2)
    msgs = []
    b = DebugBackend(s, load_device("debug"), tiny_space.qkv_dim, drift=drift)
    profile(sample_configs(tiny_space, 12, seed=4), b, on_warning=msgs.append)
    return msgs


def test_drift_warning_fires_on_drifting_backend(tiny_space):
    msgs = _drift_warnings(tiny_space, drift=0.02)  # +2 % per config measured: > 5 % after 4 configs
    assert msgs and all("latency drift" in m for m in msgs)
    assert not _drift_warnings(tiny_space, drift=0.0)


def test_drift_default_goes_through_warnings(tiny_space):
    b = DebugBackend(_settings(drift_every=2), load_device("debug"), tiny_space.qkv_dim, drift=0.1)
    with pytest.warns(LatencyWarning, match="latency drift"):
        profile(sample_configs(tiny_space, 4, seed=4), b)


def test_busy_machine_warns_before_and_during(monkeypatch, tiny_space):
    """A busy report before profiling warns once; a machine that becomes busy mid-run warns again."""
    import hat.latency.load as load
    reports = iter([LoadReport(3.5, 2, [(1, "burn", 1.0), (2, "burn", 1.0)]), LoadReport(0.5, 2, []),
                    LoadReport(3.0, 2, [(3, "job", 0.9), (4, "job", 0.9)]), LoadReport(3.0, 2, [(3, "job", 0.9)])])
    monkeypatch.setattr(load.LoadMonitor, "sample", lambda self, wait_s=0.5: next(reports))

    class Measured(DebugBackend):
        name = "synthetic"  # the load check skips the debug runtime (nothing is timed there)

    msgs = []
    profile(sample_configs(tiny_space, 3, seed=1), Measured(FAST, load_device("debug"), 128), on_warning=msgs.append)
    assert len(msgs) == 2 and all(m.startswith("machine busy: load average") for m in msgs)
    assert "burn (pid 1, 100% CPU)" in msgs[0] and "job (pid 3" in msgs[1]


def test_interleaved_sigkill_then_resume_is_exact(tmp_path, sigkill_profile):
    """hat-profile with --interleave 4 killed by SIGKILL mid-run: no partial or duplicate rows, and --resume
    measures exactly the missing configs."""
    from hat.cli.profile import main
    from hat.space import load_space
    out = tmp_path / "lat.csv"
    fast = ["--src-len", "8", "--tgt-len", "5", "--vocab-size", "200", "--warmup", "1", "--repeats", "3"]
    args = ["--space", "multi30k_tiny", "--device", "cpu_eager", "--samples", "24", "--seed", "3", "--out",
            str(out), "--interleave", "4"] + fast
    sigkill_profile(args, out, 6, 180)  # header + the first chunk + 1
    first = read_latency_csv(out)
    assert 5 <= len(first) < 24
    assert main(args + ["--resume"]) == 0
    recs = read_latency_csv(out)
    expected = {c.key() for c in sample_configs(load_space("multi30k_tiny"), 24, seed=3, widen=False)}
    keys = [r.subnet.key() for r in recs]
    assert len(keys) == len(set(keys)) == 24 and set(keys) == expected
    assert out.read_text().endswith("\n") and out.read_text().count("\n") == 25
    assert [r.subnet for r in recs[:len(first)]] == [r.subnet for r in first]
