"""Where a job folder runs: this machine (a subprocess) or a remote device over SSH.

A runtime says *what* is run (ONNX Runtime, CTranslate2: ``device_profiling/runner.py`` over exported model files,
or ``device_profiling/translate.py``); a transport says *where*. So "ONNX Runtime over SSH" and "CTranslate2 over SSH"
are one transport and one runtime each. A transport takes a local folder and a command line relative to it, runs it
(on a remote device after uploading the folder) and streams the command's stdout lines as they come; the remote copy
is removed afterwards.

* :class:`LocalTransport`: ``python <argv>`` in the folder, in a process of its own (so the process CPU clock
  counts only the measured runtime's threads);
* :class:`hat.transport.ssh.SSHTransport`: paramiko, host keys checked (``known_hosts``), SFTP upload.

Faults worth a retry (a dropped connection, a timeout) raise :class:`TransportFault`; the caller decides how often to
retry (``retries`` / ``backoff_s`` of the transport). Every other failure is a :class:`~hat.errors.HatError`.

Transports are registered by name (:data:`TRANSPORTS`: name -> ``open(device, trust_on_first_use) -> Transport``);
a device YAML's ``transport:`` names one and ``DeviceConfig.open_transport`` opens it. A transport from outside the
package: ``register_transport("name", opener)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Iterator, Optional, Sequence

from hat.errors import HatError
from hat.registry import Registry, make_register

# name -> opener ``(device, trust_on_first_use) -> Transport`` (built-ins imported on first use)
TRANSPORTS = Registry("transport", {"local": "hat.transport:open_local", "ssh": "hat.transport.ssh:open_ssh"})
register_transport = make_register(TRANSPORTS)


class TransportFault(Exception):
    """A fault worth a retry (the message says what happened)."""


class Transport:
    """Runs a job folder and streams its output lines (see the module docstring).

    Attributes:
        where: names the place in messages ("this machine", "device rpi4 (pi@host:22)").
        retries: reconnect attempts a caller may make after a :class:`TransportFault`.
        backoff_s: first retry delay (doubles per attempt).
        batch_size: configs per run (an upload and one remote process per batch).
    """

    where = ""
    retries = 0
    backoff_s = 0.0
    batch_size = 20

    def run(self, local_dir: str, argv: Sequence[str], python: Optional[str] = None) -> Iterator[str]:
        """Run ``python argv...`` with the folder ``local_dir`` as working directory; yield stdout lines.

        Raises:
            TransportFault: a fault worth a retry.
            HatError: the command failed (its stderr tail is in the message).
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalTransport(Transport):
    """This machine: the command runs in a subprocess (``sys.executable``, or ``python``), one per batch.

    Args:
        env: extra environment variables of the subprocess (e.g. ``PYTHONPATH`` of a bundle).
        batch_size: configs per subprocess (its start costs ~0.3 s).
    """

    where = "this machine"

    def __init__(self, env: Optional[dict] = None, batch_size: int = 20):
        self.env = dict(env or {})
        self.batch_size = batch_size

    def run(self, local_dir: str, argv: Sequence[str], python: Optional[str] = None) -> Iterator[str]:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([python or sys.executable, *argv], cwd=local_dir, stdout=subprocess.PIPE,
                                    stderr=err, stdin=subprocess.DEVNULL, env=env)
            try:
                for raw in proc.stdout:
                    yield raw.decode("utf-8", "replace").rstrip("\n")
                status = proc.wait()
            finally:
                if proc.poll() is None:  # the caller stopped reading (an error, Ctrl-C): end the runner too
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            if status != 0:
                err.seek(0)
                tail = " ".join(err.read().decode("utf-8", "replace").split())[-400:]
                raise HatError(f"{self.where}: {os.path.basename(argv[0])} exited with status {status}: "
                               f"{tail or '(no stderr)'}")


__all__ = ["TRANSPORTS", "LocalTransport", "Transport", "TransportFault", "open_local", "register_transport"]


def open_local(device=None, trust_on_first_use: bool = False) -> LocalTransport:
    """The ``local`` transport: a subprocess on this machine."""
    return LocalTransport()
