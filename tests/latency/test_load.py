"""Load check: busy processes found in /proc, load average against the core count."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hat.latency.load import LoadMonitor, LoadReport


@pytest.mark.parametrize("load1,busy,expect", [(0.3, [], False), (1.2, [(9, "x", 1.0)], False),
                                               (1.0, [(9, "x", 1.0), (8, "y", 0.7)], True), (2.5, [], True)])
def test_busy_rule(load1, busy, expect):
    r = LoadReport(load1=load1, cores=2, busy_processes=busy)
    assert r.busy is expect
    assert r.message().startswith(f"machine busy: load average {load1:.2f} on 2 cores")


def test_monitor_sees_a_busy_loop(monkeypatch):
    import os
    import time

    import hat.latency.load as load
    # The loop competes with other jobs on a shared machine: it still gets well over a fifth of a core.
    monkeypatch.setattr(load, "BUSY_PROCESS_CPU", 0.2)
    code = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 10: pass\n"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        time.sleep(0.3)
        mon = LoadMonitor()
        report = mon.sample(wait_s=1.0)
        assert report.cores == os.cpu_count() and report.window_s >= 0.9
        assert proc.pid in {p for p, _, _ in report.busy_processes}
        assert os.getpid() not in {p for p, _, _ in report.busy_processes}
        time.sleep(0.5)
        assert proc.pid in {p for p, _, _ in mon.sample().busy_processes}  # later calls: since the previous one
    finally:
        proc.kill()
        proc.wait()
