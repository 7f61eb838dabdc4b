"""Is this machine busy? Load average against the core count, and other processes using CPU (from ``/proc``).

Latency measured while other jobs compete for the cores is inflated (wall clock) or disturbed (caches, frequency,
even with ``timer: thread_cpu``). :class:`LoadMonitor` samples the CPU time of every other process between two
calls, so the profiler can warn before it starts and whenever the machine becomes busy while it runs::

    mon = LoadMonitor()
    report = mon.sample(wait_s=0.5)   # first call: CPU use over wait_s
    if report.busy:
        print(report.message())
    ...
    report = mon.sample()             # later calls: CPU use since the previous call
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Optional

# A process counts as busy when it used at least this fraction of one core over the sampling window.
BUSY_PROCESS_CPU = 0.5


@dataclass
class LoadReport:
    """One look at the machine."""

    load1: float  # 1-minute load average (includes the profiler itself)
    cores: int
    busy_processes: list[tuple[int, str, float]] = field(default_factory=list)  # (pid, name, cores used)
    window_s: float = 0.0

    @property
    def other_cpu(self) -> float:
        """Cores used by the busy other processes."""
        return sum(c for _, _, c in self.busy_processes)

    @property
    def busy(self) -> bool:
        """The profiler does not have a core to itself: busy processes + the profiler > cores, or the load average
        is above the core count."""
        return len(self.busy_processes) + 1 > self.cores or self.load1 > self.cores

    def message(self) -> str:
        """One line for a warning."""
        procs = ", ".join(f"{name} (pid {pid}, {cpu:.0%} CPU)" for pid, name, cpu in self.busy_processes[:5])
        more = f" and {len(self.busy_processes) - 5} more" if len(self.busy_processes) > 5 else ""
        return (f"machine busy: load average {self.load1:.2f} on {self.cores} cores; "
                f"{len(self.busy_processes)} other busy process(es)" + (f": {procs}{more}" if procs else "")
                + "; latencies may be inflated (timer thread_cpu does not count descheduled time; "
                  "profile on an idle machine for final numbers)")


def _cpu_ticks() -> dict[int, tuple[int, str]]:
    """``pid -> (utime + stime in clock ticks, name)`` of every process readable in /proc."""
    out = {}
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        try:
            name = text[text.index("(") + 1:text.rindex(")")]
            rest = text[text.rindex(")") + 2:].split()
            out[pid] = (int(rest[11]) + int(rest[12]), name)
        except (ValueError, IndexError):
            continue
    return out


class LoadMonitor:
    """Samples load average and the CPU use of other processes (this process and its threads excluded).

    Args:
        exclude_pids: pids not counted (default: this process).
    """

    def __init__(self, exclude_pids: Optional[set] = None):
        self.exclude = set(exclude_pids or ()) | {os.getpid()}
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last: Optional[tuple[float, dict]] = None

    def sample(self, wait_s: float = 0.5) -> LoadReport:
        """CPU use of other processes since the previous call (first call: over ``wait_s`` seconds)."""
        if self._last is None:
            self._last = (time.monotonic(), _cpu_ticks())
            time.sleep(wait_s)
        t0, before = self._last
        t1, after = time.monotonic(), _cpu_ticks()
        self._last = (t1, after)
        window = max(t1 - t0, 1e-3)
        busy = []
        for pid, (ticks, name) in after.items():
            if pid in self.exclude or pid not in before:
                continue
            cpu = (ticks - before[pid][0]) / self.hz / window
            if cpu >= BUSY_PROCESS_CPU:
                busy.append((pid, name, cpu))
        busy.sort(key=lambda x: -x[2])
        try:
            load1 = os.getloadavg()[0]
        except OSError:
            load1 = 0.0
        return LoadReport(load1=load1, cores=os.cpu_count() or 1, busy_processes=busy, window_s=window)


__all__ = ["LoadMonitor", "LoadReport", "BUSY_PROCESS_CPU"]
