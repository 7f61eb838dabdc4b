"""Remote latency measurement over SSH (paramiko): export locally, upload, run ``device_profiling/runner.py``.

Per batch of ``ssh.batch_size`` configs: every SubTransformer is exported to ONNX here (the device needs no torch),
the folder (``runner.py``, ``jobs.json``, ``cfg_<i>/{encoder.onnx, decoder_step.onnx, meta.json}``) is uploaded over
SFTP to ``<remote_workdir>/hat_<random>/``, the runner is started once, and its result lines are read as they come
(one JSON object per finished config). The remote folder is removed afterwards.

Security: host keys are verified against the device's ``known_hosts`` file (paramiko ``RejectPolicy``); only
``trust_on_first_use=True`` (CLI ``--trust-on-first-use``) accepts an unknown key, and then *appends* one line for
it (one ``write`` under a lock on ``<known_hosts>.lock``, fsync'd): every existing byte of the user's file is left
alone (paramiko's ``save_host_keys`` would rewrite it and drop comments and keys it cannot parse). Lines paramiko
cannot parse (``sk-ssh-ed25519@openssh.com`` keys, ``@cert-authority``) are skipped when loading, so they never stop
the check of the host being verified; a key listed under ``@revoked`` is refused. Every argument of a remote
command goes through ``shlex.quote``. Password auth is never used: key file only.

Results from the device are checked before they reach the CSV: latency samples must be a non-empty list of finite,
positive numbers, the host string is cut to 500 characters (its control characters are escaped by the CSV writer).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from hat.errors import HatError
from hat.latency.backends.base import Backend, Measurement
from hat.latency.devices import DeviceConfig
from hat.latency.protocol import ProfileSettings
from hat.optional import require
from hat.space import SubnetConfig

log = logging.getLogger(__name__)


class _Transient(Exception):
    """A fault worth a retry (the message says what happened)."""


def _paramiko():
    return require("paramiko", "ssh devices")


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
        pkey = _load_private_key(key_file, self.where)
        client = paramiko.SSHClient()
        revoked = []
        if os.path.isfile(known_hosts):
            revoked = load_known_hosts(client.get_host_keys(), known_hosts)
        elif not self.trust_on_first_use:
            raise HatError(f"{self.where}: known_hosts file {known_hosts} does not exist; add the device's host key "
                           f"(ssh-keyscan -p {self.cfg.port} {self.cfg.host} >> {known_hosts}, after checking its "
                           f"fingerprint) or pass --trust-on-first-use")
        if self.trust_on_first_use:
            client.set_missing_host_key_policy(_AppendOnFirstUse(known_hosts))
        else:
            client.set_missing_host_key_policy(_RejectUnknown())
        try:
            client.connect(self.cfg.host, port=self.cfg.port, username=self.cfg.user, pkey=pkey,
                           timeout=self.cfg.connect_timeout_s, banner_timeout=self.cfg.connect_timeout_s,
                           auth_timeout=self.cfg.connect_timeout_s, allow_agent=False, look_for_keys=False)
        except _UnknownHostKey:
            client.close()
            raise HatError(f"{self.where}: host key not found in {known_hosts}; refusing to connect (verify the "
                           f"key and add it, or pass --trust-on-first-use)") from None
        except (paramiko.BadHostKeyException, _ChangedHostKey):
            client.close()
            raise HatError(f"{self.where}: host key does not match the one in {known_hosts} (possible "
                           f"man-in-the-middle); refusing to connect") from None
        except paramiko.AuthenticationException as e:
            client.close()
            raise _Transient(f"authentication failed ({e})") from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            client.close()
            raise _Transient(f"cannot connect ({type(e).__name__}: {e})") from None
        server_key = client.get_transport().get_remote_server_key()
        if any(k == server_key for k in revoked):
            client.close()
            raise HatError(f"{self.where}: host key is marked @revoked in {known_hosts}; refusing to connect")
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

    def remove_and_close(self, remote: str) -> None:
        """Delete the remote working directory ``remote`` (best effort) and close the connection."""
        if self.client is not None:
            try:
                self.exec(f"rm -rf {shlex.quote(remote)}")
            except Exception:  # best effort: the connection may be the thing that failed
                pass
        self.close()


class _UnknownHostKey(Exception):
    pass


class _RejectUnknown:
    """paramiko missing-host-key policy: refuse (like RejectPolicy) with an exception we can tell apart."""

    def missing_host_key(self, client, hostname, key):
        raise _UnknownHostKey(hostname)


class _ChangedHostKey(Exception):
    pass


def _load_private_key(key_file: str, where: str):
    """The private key in ``key_file`` (any type paramiko knows), or a one-line HatError for a garbage file."""
    paramiko = _paramiko()
    try:
        return paramiko.PKey.from_path(key_file)
    except paramiko.PasswordRequiredException:
        raise HatError(f"{where}: ssh key_file {key_file} is passphrase-protected; use a key without a "
                       f"passphrase for the device") from None
    except Exception as e:  # garbage bytes surface as UnicodeDecodeError, ValueError, SSHException ...
        raise HatError(f"{where}: cannot read ssh key_file {key_file} as a private key "
                       f"({type(e).__name__})") from None


def load_known_hosts(host_keys, path: str) -> list:
    """Add every line of the OpenSSH ``known_hosts`` file ``path`` that paramiko can parse to ``host_keys``.

    Comments, blank lines, ``@cert-authority`` lines and keys paramiko does not know (``sk-ssh-ed25519@openssh.com``,
    broken lines) are skipped, never fatal: they cannot vouch for the host being checked, and refusing to read the
    rest would make a valid entry useless. The file is only read.

    Returns:
        The keys listed under ``@revoked`` (a host presenting one is refused).
    """
    paramiko = _paramiko()
    from paramiko.hostkeys import HostKeyEntry
    revoked = []
    with open(path, "rb") as f:
        raw = f.read()
    for lineno, line in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        marker = None
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            if marker != "@revoked":
                continue  # @cert-authority: host certificates are not supported by paramiko's check
        try:
            entry = HostKeyEntry.from_line(line, lineno)
        except Exception:  # paramiko raises several types for lines it cannot parse
            entry = None
        if entry is None or entry.key is None:
            continue
        if marker == "@revoked":
            revoked.append(entry.key)
            continue
        for name in entry.hostnames:
            try:
                if name.startswith("|1|"):
                    paramiko.HostKeys.hash_host("probe", name)  # a malformed salt would fail every later lookup
                host_keys.add(name, entry.key.get_name(), entry.key)
            except Exception:  # includes AssertionError from paramiko's salt check
                continue
    return revoked


class _AppendOnFirstUse:
    """paramiko missing-host-key policy for ``--trust-on-first-use``: append one line for the new key to
    ``known_hosts`` (created 0600 if missing), atomically under a lock, leaving every existing byte alone."""

    def __init__(self, known_hosts: str):
        self.known_hosts = known_hosts

    def missing_host_key(self, client, hostname, key):
        from hat.io import exclusive_lock
        paramiko = _paramiko()
        path = Path(self.known_hosts)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with exclusive_lock(path, "known_hosts file", wait=True):
            # Another process may have added this host since we loaded the file: check again under the lock.
            if path.is_file():
                fresh = paramiko.HostKeys()
                load_known_hosts(fresh, str(path))
                known = fresh.lookup(hostname) or {}
                if key.get_name() in known:
                    if known[key.get_name()] == key:
                        return
                    raise _ChangedHostKey(hostname)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                needs_newline = False
                if size:
                    with open(path, "rb") as f:
                        f.seek(size - 1)
                        needs_newline = f.read(1) != b"\n"
                os.write(fd, (("\n" if needs_newline else "") + line).encode())  # one write: all or nothing
                os.fsync(fd)
            finally:
                os.close(fd)
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning("trusted the new host key of %s on first use (%s %s) and appended it to %s", hostname,
                    key.get_name(), key.get_fingerprint().hex(), path)


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
            yield from self._batch(subnets[i:i + n], later=max(len(subnets) - (i + n), 0))

    def _batch(self, subnets: list[SubnetConfig], later: int = 0) -> Iterator[tuple[SubnetConfig, Measurement]]:
        """Measure one batch; ``later``: configs in the batches after this one (counted in a give-up message)."""
        from hat.latency.backends.onnxruntime import export_subnet, runner_path
        local = tempfile.mkdtemp(prefix="hat_remote_")
        try:
            for i, s in enumerate(subnets):
                export_subnet(s, self.settings, self.qkv_dim, os.path.join(local, f"cfg_{i}"), self.device.quantize)
            shutil.copy(runner_path(), os.path.join(local, "runner.py"))
            pending = {str(i): s for i, s in enumerate(subnets)}
            yield from self._run_with_retries(local, pending, later)
        finally:
            shutil.rmtree(local, ignore_errors=True)

    def _run_with_retries(self, local: str, pending: dict, later: int = 0
                          ) -> Iterator[tuple[SubnetConfig, Measurement]]:
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
                    m = measurement_from_result(res, self.threads, f"device {self.device.name}")
                    subnet = pending.pop(res["id"])
                    # A retry uploads only what is still pending.
                    shutil.rmtree(os.path.join(local, f"cfg_{res['id']}"), ignore_errors=True)
                    progressed = True
                    yield subnet, m
                if pending:
                    raise _Transient(f"remote runner ended without results for {len(pending)} config(s)")
            except _Transient as e:
                failures = 1 if progressed else failures + 1
                if failures > ssh.retries:
                    raise HatError(f"{transport.where}: {e}; gave up after {ssh.retries} retries "
                                   f"({len(pending) + later} config(s) not measured; finished ones are kept)") \
                        from None
                delay = ssh.backoff_s * 2 ** max(failures - 1, 0)
                log.warning("%s: %s; retry %d/%d in %.1f s", transport.where, e, failures, ssh.retries, delay)
                self.sleep(delay)
            finally:
                transport.remove_and_close(remote)


MAX_SAMPLES = 100_000


def measurement_from_result(res: dict, default_threads: int, where: str) -> Measurement:
    """A :class:`Measurement` from one result line of the remote runner, checked.

    Raises:
        HatError: samples missing, empty, too many, or not finite positive numbers; threads not a positive integer;
            an unknown timer.
    """
    import math
    samples = {}
    for k in ("encoder_ms", "decoder_ms"):
        v = res.get(k)
        if not isinstance(v, list) or not v or len(v) > MAX_SAMPLES:
            raise HatError(f"{where}: result for config {res.get('id')}: {k} must be a list of 1..{MAX_SAMPLES} "
                           f"timings")
        for x in v:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
                raise HatError(f"{where}: result for config {res.get('id')}: {k} holds {str(x)[:40]!r} (timings "
                               f"must be finite positive numbers of ms)")
        samples[k] = [float(x) for x in v]
    threads = res.get("threads", default_threads)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise HatError(f"{where}: result for config {res.get('id')}: threads {str(threads)[:40]!r} is not an integer")
    timer = res.get("timer", "wall")
    if timer not in ("wall", "thread_cpu"):
        raise HatError(f"{where}: result for config {res.get('id')}: timer {str(timer)[:40]!r} is not wall or "
                       f"thread_cpu")
    host, version = res.get("host", ""), res.get("runtime_version", "")
    return Measurement(samples["encoder_ms"], samples["decoder_ms"], host=str(host)[:500], threads=threads,
                       runtime_version=str(version)[:200], timer=timer)


def _parse_result(line: str) -> Optional[dict]:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


# What device_profiling/translate.py imports from hat: the torch-free runtime and the plain modules it uses.
RUNTIME_FILES = ("hat/__init__.py", "hat/errors.py", "hat/score.py", "hat/runtime/__init__.py",
                 "hat/runtime/batching.py", "hat/runtime/onnx.py", "hat/runtime/search.py", "hat/runtime/text.py",
                 "hat/runtime/vocab.py")


@dataclass
class DeviceTranslation:
    """Result of :func:`translate_on_device`: hypotheses in input order and the device's summary line."""

    translations: list
    seconds: float
    host: str
    runtime_version: str
    quantize: str


def translate_on_device(device: DeviceConfig, export_dir: str | os.PathLike, sentences: list,
                        beam: int = 5, batch_size: int = 16, trust_on_first_use: bool = False) -> DeviceTranslation:
    """Deployment smoke test: upload an ONNX export (with its bundled dictionaries/spm.model), hat's torch-free
    runtime and ``device_profiling/translate.py`` to an SSH device, translate ``sentences`` there, read the result.

    One attempt (a smoke test should show a fault, not hide it behind retries); the remote folder is removed after.

    Raises:
        HatError: not an ssh device, a bad export directory, connection/host-key failures, or the device could not
            translate (its error line is in the message).
    """
    import hat
    from hat.resources import project_root
    from hat.runtime.onnx import load_meta
    from hat.runtime.text import load_export_codec

    if device.transport != "ssh":
        raise HatError(f"device {device.name}: not an ssh device (transport {device.transport})")
    meta = load_meta(export_dir)
    load_export_codec(export_dir, meta)  # fail here, not on the device, when the dictionaries are wrong
    pkg_root = Path(hat.__file__).resolve().parents[1]
    local = tempfile.mkdtemp(prefix="hat_translate_")
    transport = SSHTransport(device, trust_on_first_use)
    remote = posixpath.join(device.ssh.remote_workdir, f"hat_tr_{uuid.uuid4().hex[:12]}")
    try:
        shutil.copytree(export_dir, os.path.join(local, "export"))
        for rel in RUNTIME_FILES:
            dst = os.path.join(local, *rel.split("/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(pkg_root / rel, dst)
        shutil.copy(project_root() / "device_profiling" / "translate.py", os.path.join(local, "translate.py"))
        with open(os.path.join(local, "input.txt"), "w", encoding="utf-8") as f:
            f.write("".join(s.replace("\n", " ") + "\n" for s in sentences))
        try:
            transport.connect()
            transport.upload_dir(local, remote)
            cmd = (f"cd {shlex.quote(remote)} && {shlex.quote(device.ssh.remote_python)} translate.py export "
                   f"input.txt --beam {int(beam)} --batch-size {int(batch_size)} --threads {int(device.threads)}")
            out, summary = {}, None
            for line in transport.stream_lines(cmd):
                res = _parse_result(line)
                if res is None:
                    continue
                if "error" in res:
                    raise HatError(f"{transport.where}: translation failed on the device: {res['error']}")
                if "summary" in res:
                    summary = res["summary"]
                elif "id" in res:
                    out[int(res["id"])] = res["translation"]
        except _Transient as e:
            raise HatError(f"{transport.where}: {e}") from None
        if summary is None or len(out) != len(sentences):
            raise HatError(f"{transport.where}: the device returned {len(out)} of {len(sentences)} translations")
        return DeviceTranslation([out[i] for i in range(len(sentences))], float(summary["seconds"]),
                                 summary.get("host", ""), summary.get("runtime_version", ""),
                                 summary.get("quantize", ""))
    finally:
        transport.remove_and_close(remote)
        shutil.rmtree(local, ignore_errors=True)
