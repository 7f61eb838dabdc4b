"""Device profiles: where and with which runtime latency is measured (``configs/devices/*.yaml``).

A device is either ``local`` (this machine: backends ``eager``, ``onnxruntime``, ``tvm``, ``debug``) or ``ssh`` (a
remote board reached with paramiko; runtime ``onnxruntime`` only: the remote side runs
``device_profiling/runner.py``, which needs just Python 3, numpy and onnxruntime). Example::

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

TRANSPORTS = ("local", "ssh")
ACCELERATORS = ("cpu", "cuda")
QUANTIZE = ("none", "int8")


@dataclass
class SSHConfig:
    """How to reach a remote device. Paths may use ``~``; relative paths are relative to the device YAML."""

    host: str
    user: str
    port: int = 22
    key_file: str = "~/.ssh/id_ed25519"  # private key (no passphrase, or loaded in an agent)
    known_hosts: str = "~/.ssh/known_hosts"  # host keys are verified against this file (RejectPolicy)
    remote_workdir: str = "/tmp/hat_profile"  # scratch folder on the device (a subfolder per batch, removed after)
    remote_python: str = "python3"  # interpreter with numpy + onnxruntime on the device
    connect_timeout_s: float = 10.0
    run_timeout_s: float = 600.0  # max silence (no result line) from the remote runner before giving up
    retries: int = 3  # reconnect attempts after a failure (connection refused, auth, timeout, dropped)
    backoff_s: float = 1.0  # first retry delay; doubles per attempt
    batch_size: int = 20  # configs per upload + remote run

    def __post_init__(self):
        if not 0 < self.port < 65536:
            raise ConfigError(f"ssh: port must be in 1..65535, got {self.port}")
        if self.retries < 0 or self.backoff_s < 0 or self.batch_size < 1:
            raise ConfigError("ssh: retries and backoff_s must be >= 0 and batch_size >= 1")
        if self.connect_timeout_s <= 0 or self.run_timeout_s <= 0:
            raise ConfigError("ssh: timeouts must be positive")


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
    runtime: str = "onnxruntime"  # a name in hat.latency.backends.RUNTIMES (eager, onnxruntime, tvm, debug)
    threads: int = 1  # intra-op threads pinned during measurement
    timer: Optional[str] = None  # wall | thread_cpu; None: the profile settings' timer (see hat.latency.protocol)
    # trimmed_mean | median | min: the statistic in the latency columns; None: the profile settings' estimator
    estimator: Optional[str] = None
    accelerator: str = "cpu"  # cpu | cuda (cuda: eager runtime, local only)
    # none | int8: int8 measures ONNX exports with dynamically quantized MatMul weights (hat-export --quantize int8)
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
        from hat.latency.backends import RUNTIMES  # the runtime registry (imported here: backends import devices)
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"{where}: runtime must be one of {', '.join(RUNTIMES)}, got '{self.runtime}'")
        if self.accelerator not in ACCELERATORS:
            raise ConfigError(f"{where}: accelerator must be one of {', '.join(ACCELERATORS)}, "
                              f"got '{self.accelerator}'")
        if self.quantize not in QUANTIZE:
            raise ConfigError(f"{where}: quantize must be one of {', '.join(QUANTIZE)}, got '{self.quantize}'")
        if self.quantize != "none" and self.runtime != "onnxruntime":
            raise ConfigError(f"{where}: quantize {self.quantize} needs runtime onnxruntime, got '{self.runtime}'")
        if self.threads < 1:
            raise ConfigError(f"{where}: threads must be >= 1, got {self.threads}")
        if self.transport == "ssh":
            if self.ssh is None:
                raise ConfigError(f"{where}: transport ssh needs an 'ssh:' section (host, user, ...)")
            if self.runtime != "onnxruntime":
                raise ConfigError(f"{where}: remote (ssh) devices run the onnxruntime runtime only, got "
                                  f"'{self.runtime}'")
        if self.accelerator == "cuda" and (self.runtime != "eager" or self.transport != "local"):
            raise ConfigError(f"{where}: accelerator cuda needs transport local and runtime eager")
        if self.timer is not None:
            from hat.latency.protocol import check_timer
            check_timer(self.timer, self.threads, self.accelerator, self.runtime, where)
        if self.estimator is not None:
            from hat.latency.protocol import ESTIMATORS
            if self.estimator not in ESTIMATORS:
                raise ConfigError(f"{where}: estimator must be one of {', '.join(ESTIMATORS)}, got '{self.estimator}'")

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
