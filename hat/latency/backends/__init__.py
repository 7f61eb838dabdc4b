"""Latency backends, one class per runtime (optional dependencies are imported lazily, when measuring).

* ``eager``: PyTorch eager, static Transformer with random weights (CPU or CUDA);
* ``onnxruntime``: exported ONNX encoder + decoder step, timed by ``device_profiling/runner.py`` (locally, or on a
  remote device over SSH);
* ``tvm``: Apache TVM Relax, compiled for the local CPU (extra ``hat[tvm]``);
* ``debug``: deterministic synthetic latency from the analytic FLOPs, for tests.

Use :func:`get_backend`; :data:`RUNTIMES` / :func:`list_runtimes` enumerate the runtimes.
"""

from __future__ import annotations

from typing import Optional

from hat.errors import ConfigError
from hat.latency.backends.base import Backend, Measurement
from hat.latency.devices import DeviceConfig
from hat.latency.protocol import ProfileSettings

# The registry of runtimes: name -> "module:Class", imported on demand so a missing optional runtime breaks only its
# own use. Device YAMLs are validated against it; tests/latency/test_backend_contract.py measures every member.
RUNTIMES = {
    "eager": "hat.latency.backends.eager:EagerBackend",
    "onnxruntime": "hat.latency.backends.onnxruntime:OnnxRuntimeBackend",
    "tvm": "hat.latency.backends.tvm:TvmBackend",
    "debug": "hat.latency.backends.debug:DebugBackend",
}


def get_backend(device: DeviceConfig, settings: Optional[ProfileSettings] = None, qkv_dim: int = 512,
                trust_on_first_use: bool = False) -> Backend:
    """The backend measuring on ``device`` with its runtime.

    Args:
        device: a loaded device profile (:func:`hat.latency.devices.load_device`).
        settings: the measurement protocol (HAT's WMT defaults when None); its ``threads`` is overridden by the
            device's, and its ``timer`` and ``estimator`` by the device's when the device YAML sets them.
        qkv_dim: the search space's q/k/v projection width.
        trust_on_first_use: ssh devices only: accept and save an unknown host key.

    Raises:
        ConfigError: unknown runtime; ``timer: thread_cpu`` where the thread clock would miss work.
    """
    import dataclasses
    if device.predictor_only:
        raise ConfigError(f"device {device.name} is predictor-only ({device.description or 'published measurements'}"
                          f"): it cannot be profiled here; profile a device you have (e.g. --device cpu)")
    from hat.latency.protocol import check_timer
    settings = settings or ProfileSettings()
    settings = dataclasses.replace(settings, threads=device.threads, timer=device.timer or settings.timer,
                                   estimator=device.estimator or settings.estimator)
    check_timer(settings.timer, settings.threads, device.accelerator, device.runtime, f"device {device.name}")
    if device.transport == "ssh":
        from hat.latency.ssh import RemoteOnnxRuntimeBackend
        return RemoteOnnxRuntimeBackend(settings, device, qkv_dim, trust_on_first_use=trust_on_first_use)
    return backend_class(device.runtime, f"device {device.name}")(settings, device, qkv_dim)


def list_runtimes() -> list[str]:
    """The registered runtime names, in registry order."""
    return list(RUNTIMES)


def backend_class(runtime: str, where: str = "runtime") -> type[Backend]:
    """The :class:`Backend` subclass measuring with ``runtime`` (its module is imported now).

    Raises:
        ConfigError: ``runtime`` is not registered.
    """
    import importlib
    if runtime not in RUNTIMES:
        raise ConfigError(f"{where}: unknown runtime '{runtime}' (known: {', '.join(RUNTIMES)})")
    module, cls = RUNTIMES[runtime].split(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["RUNTIMES", "Backend", "Measurement", "backend_class", "get_backend", "list_runtimes"]
