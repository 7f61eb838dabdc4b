"""Remote latency measurement over SSH (paramiko): export locally, upload, run ``device_profiling/runner.py``.

Per batch of ``ssh.batch_size`` configs: every SubTransformer is exported to ONNX here (the device needs no torch),
the folder (``runner.py``, ``jobs.json``, ``cfg_<i>/{encoder.onnx, decoder_step.onnx, meta.json}``) is uploaded over
SFTP to ``<remote_workdir>/hat_<random>/``, the runner is started once, and its result lines are read as they come
(one JSON object per finished config). The remote folder is removed afterwards.

Security: host keys are verified against the device's ``known_hosts`` file (paramiko ``RejectPolicy``); only
``trust_on_first_use=True`` (CLI ``--trust-on-first-use``) accepts an unknown key, and then saves it. Every argument
of a remote command goes through ``shlex.quote``. Password auth is never used: key file (or agent) only.

Faults (connection refused, authentication failure, timeout, connection dropped mid-run) are retried
``ssh.retries`` times with exponential backoff (``backoff_s``, doubling), resuming with the configs that have no
result yet; then a :class:`~hat.errors.HatError` naming the device is raised. Results already yielded (and so
already written by the caller) are kept. An unknown or changed host key is never retried.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import shlex
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from hat.errors import HatError
from hat.latency.backends.base import Backend, Measurement
from hat.latency.devices import DeviceConfig
from hat.latency.protocol import ProfileSettings
from hat.space import SubnetConfig

log = logging.getLogger(__name__)


class _Transient(Exception):
    """A fault worth a retry (the message says what happened)."""


def _paramiko():
    try:
        import paramiko
    except ImportError:
        raise HatError("ssh devices need paramiko: pip install paramiko") from None
    return paramiko


class SSHTransport:
    """One SSH connection to a device: connect (host key checked), upload a folder, run a command streaming lines.

    Args:
        device: a device with ``transport: ssh``.
        trust_on_first_use: accept and save an unknown host key (never a changed one).
    """

    def __init__(self, device: DeviceConfig, trust_on_first_use: bool = False):
        if device.ssh is None:
            raise HatError(f"device {device.name}: not an ssh device")
        self.device = device
        self.cfg = device.ssh
        self.trust_on_first_use = trust_on_first_use
        self.client = None

    @property
    def where(self) -> str:
        return f"device {self.device.name} ({self.cfg.user}@{self.cfg.host}:{self.cfg.port})"

    def connect(self) -> None:
        """Open the connection.

        Raises:
            HatError: unknown/changed host key, missing key or known_hosts file (not retried).
            _Transient: refused, timed out, authentication failed, protocol error (retried by the caller).
        """
        paramiko = _paramiko()
        key_file = self.device.path(self.cfg.key_file)
        known_hosts = self.device.path(self.cfg.known_hosts)
        if not os.path.isfile(key_file):
            raise HatError(f"{self.where}: ssh key_file {key_file} does not exist")
        client = paramiko.SSHClient()
        if os.path.isfile(known_hosts):
            client.load_host_keys(known_hosts)
        elif not self.trust_on_first_use:
            raise HatError(f"{self.where}: known_hosts file {known_hosts} does not exist; add the device's host key "
                           f"(ssh-keyscan -p {self.cfg.port} {self.cfg.host} >> {known_hosts}, after checking its "
                           f"fingerprint) or pass --trust-on-first-use")
        if self.trust_on_first_use:
            Path(known_hosts).parent.mkdir(parents=True, exist_ok=True)
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(_RejectUnknown())
        try:
            client.connect(self.cfg.host, port=self.cfg.port, username=self.cfg.user, key_filename=key_file,
                           timeout=self.cfg.connect_timeout_s, banner_timeout=self.cfg.connect_timeout_s,
                           auth_timeout=self.cfg.connect_timeout_s, allow_agent=False, look_for_keys=False)
        except _UnknownHostKey:
            client.close()
            raise HatError(f"{self.where}: host key not found in {known_hosts}; refusing to connect (verify the "
                           f"key and add it, or pass --trust-on-first-use)") from None
        except paramiko.BadHostKeyException:
            client.close()
            raise HatError(f"{self.where}: host key does not match the one in {known_hosts} (possible "
                           f"man-in-the-middle); refusing to connect") from None
        except paramiko.AuthenticationException as e:
            client.close()
            raise _Transient(f"authentication failed ({e})") from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            client.close()
            raise _Transient(f"cannot connect ({type(e).__name__}: {e})") from None
        if self.trust_on_first_use:
            client.save_host_keys(known_hosts)
        self.client = client

    def exec(self, command: str) -> tuple[int, str]:
        """Run a short command; returns ``(exit status, stderr)``."""
        chan = self._session()
        try:
            chan.exec_command(command)
            out = _drain(chan)
        except (OSError, EOFError, _paramiko().SSHException) as e:
            raise _Transient(f"remote command failed ({type(e).__name__}: {e})") from None
        return chan.recv_exit_status(), out

    def upload_dir(self, local_dir: str, remote_dir: str) -> None:
        """Copy the tree ``local_dir`` to ``remote_dir`` (created) over SFTP."""
        status, err = self.exec(f"mkdir -p {shlex.quote(remote_dir)}")
        if status != 0:
            raise HatError(f"{self.where}: cannot create {remote_dir}: {err.strip()[-300:]}")
        try:
            sftp = self.client.open_sftp()
            try:
                for root, dirs, files in os.walk(local_dir):
                    rel = os.path.relpath(root, local_dir)
                    rroot = remote_dir if rel == "." else posixpath.join(remote_dir, *Path(rel).parts)
                    for d in dirs:
                        sftp.mkdir(posixpath.join(rroot, d))
                    for f in files:
                        sftp.put(os.path.join(root, f), posixpath.join(rroot, f))
            finally:
                sftp.close()
        except (OSError, EOFError, _paramiko().SSHException) as e:
            raise _Transient(f"upload over SFTP failed ({type(e).__name__}: {e}; is the sftp subsystem enabled?)") \
                from None

    def stream_lines(self, command: str) -> Iterator[str]:
        """Run ``command`` and yield its stdout lines as they arrive.

        Raises:
            _Transient: no output for ``run_timeout_s``, or the connection dropped before the command exited.
            HatError: the command exited non-zero (its stderr tail is in the message).
        """
        chan = self._session()
        chan.settimeout(self.cfg.run_timeout_s)
        try:
            chan.exec_command(command)
        except (OSError, EOFError, _paramiko().SSHException) as e:
            raise _Transient(f"cannot start the remote runner ({type(e).__name__}: {e})") from None
        buf = b""
        try:
            while True:
                data = chan.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    yield line.decode("utf-8", "replace")
        except socket.timeout:
            raise _Transient(f"no result from the remote runner for {self.cfg.run_timeout_s:g} s") from None
        except (OSError, EOFError) as e:
            raise _Transient(f"connection dropped mid-run ({type(e).__name__}: {e})") from None
        transport = self.client.get_transport()
        if not chan.exit_status_ready() and (transport is None or not transport.is_active()):
            raise _Transient("connection dropped mid-run")
        status = chan.recv_exit_status()
        if status == -1:
            raise _Transient("connection dropped mid-run (no exit status)")
        if status != 0:
            err = _drain_stderr(chan)
            raise HatError(f"{self.where}: remote runner exited with status {status}: "
                           f"{' '.join(err.split())[-400:] or '(no stderr)'}")

    def _session(self):
        transport = self.client.get_transport() if self.client else None
        if transport is None or not transport.is_active():
            raise _Transient("connection dropped")
        try:
            return transport.open_session(timeout=self.cfg.connect_timeout_s)
        except (OSError, EOFError, _paramiko().SSHException) as e:
            raise _Transient(f"cannot open a session ({type(e).__name__}: {e})") from None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class _UnknownHostKey(Exception):
    pass


class _RejectUnknown:
    """paramiko missing-host-key policy: refuse (like RejectPolicy) with an exception we can tell apart."""

    def missing_host_key(self, client, hostname, key):
        raise _UnknownHostKey(hostname)


def _drain(chan) -> str:
    """Read a finished short command's stdout+stderr."""
    out = b""
    while True:
        data = chan.recv(65536)
        if not data:
            break
        out += data
    return out.decode("utf-8", "replace") + _drain_stderr(chan)


def _drain_stderr(chan) -> str:
    err = b""
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(65536)
    return err.decode("utf-8", "replace")


class RemoteOnnxRuntimeBackend(Backend):
    """ONNX Runtime on a remote device over SSH (see the module docstring).

    Args:
        settings, device, qkv_dim: as :class:`~hat.latency.backends.base.Backend`; ``device.transport`` is ssh.
        trust_on_first_use: accept and save an unknown host key.
        sleep: delay function for the backoff (tests pass a fake).
    """

    name = "onnxruntime"

    def __init__(self, settings: ProfileSettings, device: DeviceConfig, qkv_dim: int = 512,
                 trust_on_first_use: bool = False, sleep: Callable[[float], None] = time.sleep):
        super().__init__(settings, device, qkv_dim)
        self.trust_on_first_use = trust_on_first_use
        self.sleep = sleep

    def measure(self, subnet: SubnetConfig) -> Measurement:
        return next(iter(self.measure_many([subnet])))[1]

    def measure_many(self, subnets: Iterable[SubnetConfig]) -> Iterator[tuple[SubnetConfig, Measurement]]:
        subnets = list(subnets)
        n = self.device.ssh.batch_size
        for i in range(0, len(subnets), n):
            yield from self._batch(subnets[i:i + n])

    def _batch(self, subnets: list[SubnetConfig]) -> Iterator[tuple[SubnetConfig, Measurement]]:
        from hat.latency.backends.onnxruntime import export_subnet, runner_path
        local = tempfile.mkdtemp(prefix="hat_remote_")
        try:
            for i, s in enumerate(subnets):
                export_subnet(s, self.settings, self.qkv_dim, os.path.join(local, f"cfg_{i}"))
            shutil.copy(runner_path(), os.path.join(local, "runner.py"))
            pending = {str(i): s for i, s in enumerate(subnets)}
            yield from self._run_with_retries(local, pending)
        finally:
            shutil.rmtree(local, ignore_errors=True)

    def _run_with_retries(self, local: str, pending: dict) -> Iterator[tuple[SubnetConfig, Measurement]]:
        ssh = self.device.ssh
        failures = 0
        while pending:
            # Only the configs without a result are (re)run after a retry.
            jobs = {"settings": dict(self.settings.to_json_dict(), threads=self.threads),
                    "jobs": [{"id": k, "dir": f"cfg_{k}"} for k in pending]}
            with open(os.path.join(local, "jobs.json"), "w") as f:
                json.dump(jobs, f)
            transport = SSHTransport(self.device, self.trust_on_first_use)
            remote = posixpath.join(ssh.remote_workdir, f"hat_{uuid.uuid4().hex[:12]}")
            progressed = False
            try:
                transport.connect()
                transport.upload_dir(local, remote)
                cmd = f"cd {shlex.quote(remote)} && {shlex.quote(ssh.remote_python)} runner.py jobs.json"
                for line in transport.stream_lines(cmd):
                    res = _parse_result(line)
                    if res is None or res.get("id") not in pending:
                        continue
                    if "error" in res:
                        raise HatError(f"device {self.device.name}: measuring config {res['id']} failed on the "
                                       f"device: {res['error']}")
                    subnet = pending.pop(res["id"])
                    # A retry uploads only what is still pending.
                    shutil.rmtree(os.path.join(local, f"cfg_{res['id']}"), ignore_errors=True)
                    progressed = True
                    yield subnet, Measurement(res["encoder_ms"], res["decoder_ms"], host=res.get("host", ""),
                                              threads=int(res.get("threads", self.threads)),
                                              runtime_version=res.get("runtime_version", ""),
                                              timer=res.get("timer", "wall"))
                if pending:
                    raise _Transient(f"remote runner ended without results for {len(pending)} config(s)")
            except _Transient as e:
                failures = 1 if progressed else failures + 1
                if failures > ssh.retries:
                    raise HatError(f"{transport.where}: {e}; gave up after {ssh.retries} retries "
                                   f"({len(pending)} config(s) not measured; finished ones are kept)") from None
                delay = ssh.backoff_s * 2 ** max(failures - 1, 0)
                log.warning("%s: %s; retry %d/%d in %.1f s", transport.where, e, failures, ssh.retries, delay)
                self.sleep(delay)
            finally:
                if transport.client is not None:
                    try:
                        transport.exec(f"rm -rf {shlex.quote(remote)}")
                    except Exception:  # best effort: the connection may be the thing that failed
                        pass
                transport.close()


def _parse_result(line: str) -> Optional[dict]:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None
