"""Device profiles: where (transport) and with which runtime latency is measured (``configs/devices/*.yaml``).

A device is ``local`` (this machine) or ``ssh`` (a remote board reached with paramiko, :mod:`hat.transport.ssh`),
and names a registered runtime (:mod:`hat.latency.runtimes`). What a runtime supports (transports, timers,
quantization, accelerators) is declared by its backend class, which validates the device
(:meth:`hat.latency.backends.base.Backend.check_device`). Over SSH the remote side runs
``device_profiling/runner.py`` (Python 3, numpy and the runtime's package: onnxruntime or ctranslate2). Example::

    name: rpi4
    transport: ssh
    runtime: onnxruntime
    threads: 4
    timer: wall    # thread_cpu needs threads: 1 (see hat.latency.protocol)
    ssh: {host: raspberrypi.local, user: pi, key_file: ~/.ssh/id_ed25519, known_hosts: ~/.ssh/known_hosts}

``predictor_only: true`` marks hardware known only from published measurements (HAT's Xeon and TITAN Xp): search
uses its registered predictor, profiling refuses it. :func:`list_devices` names every shipped profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from hat.config import from_dict, load_yaml
from hat.errors import ConfigError
from hat.latency.runtimes import RUNTIMES, backend_class
from hat.transport import TRANSPORTS
from hat.transport.ssh import SSHConfig

ACCELERATORS = ("cpu", "cuda")
QUANTIZE = ("none", "int8")


def check_text_field(value: str, what: str) -> str:
    """Why ``value`` cannot be a device name written into latency CSVs ('' when it can): no control characters,
    no spreadsheet-formula lead (``= + - @``), at most 100 characters, not empty."""
    if not value or not value.strip():
        return f"{what} must not be empty"
    if len(value) > 100:
        return f"{what} is longer than 100 characters"
    if any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in value):
        return f"{what} must not contain control characters (newline, tab, ...)"
    if value[0] in "=+-@":
        return f"{what} must not start with '{value[0]}' (spreadsheets would run it as a formula)"
    return ""


@dataclass
class DeviceConfig:
    """A measurement target (strict-loaded from YAML)."""

    name: str
    transport: str = "local"  # local | ssh
    runtime: str = "onnxruntime"  # a registered runtime (hat.latency.runtimes: eager, onnxruntime, ctranslate2, ...)
    threads: int = 1  # intra-op threads pinned during measurement
    # wall | thread_cpu | process_cpu; None: the profile settings' timer (see hat.latency.protocol)
    timer: Optional[str] = None
    # trimmed_mean | median | min: the statistic in the latency columns; None: the profile settings' estimator
    estimator: Optional[str] = None
    # configs measured together in interleaved rounds; None: the profile settings' (hat-profile --interleave)
    interleave: Optional[int] = None
    accelerator: str = "cpu"  # cpu | cuda (cuda: eager runtime, local only)
    # none | int8: int8 weights (ONNX Runtime: dynamically quantized MatMul weights; CTranslate2: compute_type int8)
    quantize: str = "none"
    description: str = ""
    ssh: Optional[SSHConfig] = None  # required when transport is ssh
    # A device known only through published measurements (HAT's Xeon E5-2640, TITAN Xp): its registered predictor
    # serves hat-search, but hat-profile refuses it (this project has no access to the hardware).
    predictor_only: bool = False
    base_dir: str = field(default="", init=False, repr=False)  # YAML folder, for relative paths

    def __post_init__(self):
        where = f"device {self.name!r}"
        bad = check_text_field(self.name, "name")
        if bad:
            raise ConfigError(f"{where}: {bad}")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"{where}: transport must be one of {', '.join(TRANSPORTS)}, got '{self.transport}'")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"{where}: runtime must be one of {', '.join(RUNTIMES)}, got '{self.runtime}'")
        if self.accelerator not in ACCELERATORS:
            raise ConfigError(f"{where}: accelerator must be one of {', '.join(ACCELERATORS)}, "
                              f"got '{self.accelerator}'")
        if self.quantize not in QUANTIZE:
            raise ConfigError(f"{where}: quantize must be one of {', '.join(QUANTIZE)}, got '{self.quantize}'")
        if self.threads < 1:
            raise ConfigError(f"{where}: threads must be >= 1, got {self.threads}")
        if self.interleave is not None and not 1 <= self.interleave <= 1000:
            raise ConfigError(f"{where}: interleave must be in 1..1000, got {self.interleave}")
        if self.transport == "ssh" and self.ssh is None:
            raise ConfigError(f"{where}: transport ssh needs an 'ssh:' section (host, user, ...)")
        if self.estimator is not None:
            from hat.latency.protocol import ESTIMATORS
            if self.estimator not in ESTIMATORS:
                raise ConfigError(f"{where}: estimator must be one of {', '.join(ESTIMATORS)}, got '{self.estimator}'")
        # what the runtime supports: its backend class says (transport, accelerator, quantize, timer)
        backend_class(self.runtime, where).check_device(self, where)

    def open_transport(self, trust_on_first_use: bool = False):
        """A :class:`~hat.transport.Transport` to this device, opened by its registered transport (``local``: a
        subprocess here; ``ssh``: an SSH connection).

        Args:
            trust_on_first_use: ssh: accept and save an unknown host key.
        """
        return TRANSPORTS.get(self.transport, f"device {self.name}")(self, trust_on_first_use)

    def path(self, p: str) -> str:
        """Expand ``~`` and resolve ``p`` relative to the device YAML's folder."""
        q = Path(os.path.expanduser(p))
        if not q.is_absolute() and self.base_dir:
            q = Path(self.base_dir) / q
        return str(q)


def list_devices() -> list[str]:
    """Names of the shipped device profiles (``configs/devices/*.yaml``), sorted."""
    from hat.resources import project_root
    return sorted(p.stem for p in (project_root() / "configs" / "devices").glob("*.yaml"))


def load_device(name_or_path: str | os.PathLike) -> DeviceConfig:
    """Load ``configs/devices/<name>.yaml`` or a YAML path (strict: unknown keys are errors).

    Raises:
        ConfigError: unknown device (shipped names listed), malformed YAML, bad values.
    """
    from hat.resources import resolve_config
    path = resolve_config("devices", name_or_path)
    data = load_yaml(path)
    data.setdefault("name", Path(path).stem)
    dev = from_dict(DeviceConfig, data, str(path))
    dev.base_dir = str(Path(path).resolve().parent)
    return dev
