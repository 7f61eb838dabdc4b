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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from hat.config import from_dict, load_yaml
from hat.errors import ConfigError

TRANSPORTS = ("local", "ssh")
RUNTIMES = ("eager", "onnxruntime", "tvm", "debug")
ACCELERATORS = ("cpu", "cuda")


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


@dataclass
class DeviceConfig:
    """A measurement target (strict-loaded from YAML)."""

    name: str
    transport: str = "local"  # local | ssh
    runtime: str = "onnxruntime"  # eager | onnxruntime | tvm | debug
    threads: int = 1  # intra-op threads pinned during measurement
    timer: Optional[str] = None  # wall | thread_cpu; None: the profile settings' timer (see hat.latency.protocol)
    accelerator: str = "cpu"  # cpu | cuda (cuda: eager runtime, local only)
    description: str = ""
    ssh: Optional[SSHConfig] = None  # required when transport is ssh
    base_dir: str = field(default="", init=False, repr=False)  # YAML folder, for relative paths

    def __post_init__(self):
        where = f"device {self.name}"
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"{where}: transport must be one of {', '.join(TRANSPORTS)}, got '{self.transport}'")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"{where}: runtime must be one of {', '.join(RUNTIMES)}, got '{self.runtime}'")
        if self.accelerator not in ACCELERATORS:
            raise ConfigError(f"{where}: accelerator must be one of {', '.join(ACCELERATORS)}, "
                              f"got '{self.accelerator}'")
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

    def path(self, p: str) -> str:
        """Expand ``~`` and resolve ``p`` relative to the device YAML's folder."""
        q = Path(os.path.expanduser(p))
        if not q.is_absolute() and self.base_dir:
            q = Path(self.base_dir) / q
        return str(q)


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
