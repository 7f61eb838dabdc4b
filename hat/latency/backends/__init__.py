"""Latency backends, one class per runtime (optional dependencies are imported lazily, when measuring).

The registry (:mod:`hat.latency.runtimes`) maps runtime names to these classes; each class declares what it supports
(:class:`~hat.latency.backends.base.Backend`'s capability attributes). Use :func:`get_backend`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from hat.errors import ConfigError
from hat.latency.backends.base import Backend, Measurement
from hat.latency.devices import DeviceConfig
from hat.latency.protocol import ProfileSettings
from hat.latency.runtimes import RUNTIMES, backend_class, list_runtimes, register_runtime


def get_backend(device: DeviceConfig, settings: Optional[ProfileSettings] = None, qkv_dim: int = 512,
                trust_on_first_use: bool = False) -> Backend:
    """The backend measuring on ``device`` with its runtime, over its transport.

    Args:
        device: a loaded device profile (:func:`hat.latency.devices.load_device`).
        settings: the measurement protocol (HAT's WMT defaults when None); its ``threads`` is overridden by the
            device's, and its ``timer``, ``estimator`` and ``interleave`` by the device's when the device YAML sets
            them.
        qkv_dim: the search space's q/k/v projection width.
        trust_on_first_use: ssh devices only: accept and save an unknown host key.

    Raises:
        ConfigError: unknown runtime; a timer the runtime cannot use; a predictor-only device.
    """
    where = f"device {device.name}"
    if device.predictor_only:
        raise ConfigError(f"device {device.name} is predictor-only ({device.description or 'published measurements'}"
                          f"): it cannot be profiled here; profile a device you have (e.g. --device cpu)")
    settings = settings or ProfileSettings()
    settings = dataclasses.replace(settings, threads=device.threads, timer=device.timer or settings.timer,
                                   estimator=device.estimator or settings.estimator,
                                   interleave=device.interleave or settings.interleave)
    cls = backend_class(device.runtime, where)
    cls.check_device(device, where)
    cls.check_timer(settings.timer, settings.threads, device.accelerator, where)
    return cls(settings, device, qkv_dim, trust_on_first_use=trust_on_first_use)


__all__ = ["RUNTIMES", "Backend", "Measurement", "backend_class", "get_backend", "list_runtimes",
           "register_runtime"]
