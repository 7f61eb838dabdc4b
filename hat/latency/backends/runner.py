"""Runtimes timed by ``device_profiling/runner.py`` over exported model folders, wherever the device is.

Per batch of configs (the transport's ``batch_size``): every SubTransformer is exported here by the runtime's
:meth:`RunnerBackend.export_config` (the device needs no torch), the folder (``runner.py``, ``jobs.json``,
``cfg_<i>/...``) is handed to the device's transport (:mod:`hat.transport`: a subprocess on this machine, or an
upload to a remote device over SSH), the runner is started once, and its result lines are read as they come (one
JSON object per finished config, flushed per interleaved chunk). The runner runs in a process of its own, so its
process CPU clock counts only the runtime's threads (timer ``process_cpu``).

Results are checked before they reach the CSV (:func:`measurement_from_result`): latency samples must be a non-empty
list of finite, positive numbers, the host string is cut to 500 characters (its control characters are escaped by
the CSV writer). Transport faults (:class:`~hat.transport.TransportFault`) are retried ``retries`` times with
exponential backoff, resuming with the configs that have no result yet; then a :class:`~hat.errors.HatError` naming
the device is raised. Results already yielded (and so already written by the caller) are kept.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from hat.errors import HatError
from hat.latency.backends.base import Backend, Measurement
from hat.space import SubnetConfig
from hat.transport import Transport, TransportFault

log = logging.getLogger(__name__)

MAX_TIMINGS = 100_000  # timed runs one result line may carry (the protocol asks for tens)
MAX_THREADS = 4096


def runner_path() -> Path:
    """``device_profiling/runner.py`` (run on the measuring device: a subprocess here, or uploaded over SSH)."""
    from hat.resources import project_root
    p = project_root() / "device_profiling" / "runner.py"
    if not p.is_file():
        raise HatError(f"{p}: latency runner missing (hat must be installed editable from its repository, or set "
                       f"HAT_HOME to the repository root)")
    return p


class RunnerBackend(Backend):
    """A runtime whose models are files and whose timing loop is ``device_profiling/runner.py``.

    Subclasses set :attr:`runner_runtime` (the runner's name for the engine) and implement
    :meth:`export_config`. The device's transport (local or ssh) decides where the runner runs.

    Args:
        settings, device, qkv_dim, trust_on_first_use: as :class:`~hat.latency.backends.base.Backend`.
        sleep: delay function for the retry backoff (tests pass a fake).
    """

    transports = ("local", "ssh")
    timers = ("wall", "process_cpu")
    runner_runtime = ""

    def __init__(self, settings, device=None, qkv_dim: int = 512, trust_on_first_use: bool = False,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(settings, device, qkv_dim, trust_on_first_use)
        self.sleep = sleep

    def export_config(self, subnet: SubnetConfig, out_dir: str) -> None:
        """Write the random-init model of ``subnet`` (``settings.vocab_size``, ``settings.seed``) to ``out_dir``."""
        raise NotImplementedError

    def runner_settings(self) -> dict:
        """The ``settings`` object of the runner's ``jobs.json``."""
        return dict(self.settings.to_json_dict(), threads=self.threads, runtime=self.runner_runtime,
                    quantize=self.device.quantize)

    def transport(self) -> Transport:
        """A transport to the device (a new one per batch: an SSH connection is opened and closed per run)."""
        return self.device.open_transport(self.trust_on_first_use)

    def measure(self, subnet: SubnetConfig) -> Measurement:
        return next(iter(self.measure_many([subnet])))[1]

    def measure_many(self, subnets: Iterable[SubnetConfig]) -> Iterator[tuple[SubnetConfig, Measurement]]:
        subnets = list(subnets)
        n = max(self.transport().batch_size, self.settings.interleave)
        for i in range(0, len(subnets), n):
            yield from self._batch(subnets[i:i + n], later=max(len(subnets) - (i + n), 0))

    def _batch(self, subnets: list[SubnetConfig], later: int = 0) -> Iterator[tuple[SubnetConfig, Measurement]]:
        """Export and measure one batch; ``later``: configs in the batches after it (counted in a give-up line)."""
        local = tempfile.mkdtemp(prefix=f"hat_{self.name}_")
        try:
            for i, s in enumerate(subnets):
                self.export_config(s, os.path.join(local, f"cfg_{i}"))
            shutil.copy(runner_path(), os.path.join(local, "runner.py"))
            from hat.runtime.remote import copy_runtime_files
            copy_runtime_files(local)  # the ONNX Runtime loop is hat's own runtime
            yield from self._run_with_retries(local, {str(i): s for i, s in enumerate(subnets)}, later)
        finally:
            shutil.rmtree(local, ignore_errors=True)

    def _run_with_retries(self, local: str, pending: dict, later: int) -> Iterator[tuple[SubnetConfig, Measurement]]:
        failures = 0
        while pending:
            # Only the configs without a result are (re)run after a retry.
            jobs = {"settings": self.runner_settings(), "jobs": [{"id": k, "dir": f"cfg_{k}"} for k in pending]}
            with open(os.path.join(local, "jobs.json"), "w") as f:
                json.dump(jobs, f)
            transport = self.transport()
            progressed = False
            try:
                for subnet, m in self._results(transport, local, pending):
                    progressed = True
                    yield subnet, m
                if pending:
                    raise TransportFault(f"runner ended without results for {len(pending)} config(s)")
            except TransportFault as e:
                failures = 1 if progressed else failures + 1
                if failures > transport.retries:
                    raise HatError(f"{transport.where}: {e}; gave up after {transport.retries} retries "
                                   f"({len(pending) + later} config(s) not measured; finished ones are kept)") \
                        from None
                delay = transport.backoff_s * 2 ** max(failures - 1, 0)
                log.warning("%s: %s; retry %d/%d in %.1f s", transport.where, e, failures, transport.retries, delay)
                self.sleep(delay)
            finally:
                transport.close()

    def _results(self, transport: Transport, local: str, pending: dict
                 ) -> Iterator[tuple[SubnetConfig, Measurement]]:
        where = f"device {self.device.name}"
        for line in transport.run(local, ["runner.py", "jobs.json"]):
            res = parse_result_line(line)
            if res is None or not isinstance(res.get("id"), str) or res["id"] not in pending:
                continue
            if "error" in res:
                raise HatError(f"{where}: measuring config {res['id']} failed on the device: "
                               f"{str(res['error'])[:300]}")
            m = measurement_from_result(res, self.threads, where)
            subnet = pending.pop(res["id"])
            shutil.rmtree(os.path.join(local, f"cfg_{res['id']}"), ignore_errors=True)  # a retry uploads less
            yield subnet, m


def parse_result_line(line: str) -> Optional[dict]:
    """The JSON object on a runner output line, or None for any other line (log output, a torn line)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def measurement_from_result(res: dict, default_threads: int, where: str) -> Measurement:
    """A :class:`Measurement` from one result line of the runner, every field checked.

    Raises:
        HatError: samples missing, empty, too many, or not finite positive numbers; threads not an integer in
            1..4096; an unknown timer.
    """
    samples = {}
    for k in ("encoder_ms", "decoder_ms"):
        v = res.get(k)
        if not isinstance(v, list) or not v or len(v) > MAX_TIMINGS:
            raise HatError(f"{where}: result for config {res.get('id')}: {k} must be a list of 1..{MAX_TIMINGS} "
                           f"timings")
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
                raise HatError(f"{where}: result for config {res.get('id')}: {k} holds {str(x)[:40]!r} (timings "
                               f"must be finite positive numbers of ms)")
        samples[k] = [float(x) for x in v]
    threads = res.get("threads", default_threads)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise HatError(f"{where}: result for config {res.get('id')}: threads {str(threads)[:40]!r} is not an "
                       f"integer in 1..{MAX_THREADS}")
    from hat.latency.protocol import TIMERS
    timer = res.get("timer", "wall")
    if timer not in TIMERS:
        raise HatError(f"{where}: result for config {res.get('id')}: timer {str(timer)[:40]!r} is not one of "
                       f"{', '.join(TIMERS)}")
    host, version = res.get("host", ""), res.get("runtime_version", "")
    return Measurement(samples["encoder_ms"], samples["decoder_ms"], host=str(host)[:500], threads=threads,
                       runtime_version=str(version)[:200], timer=timer)
