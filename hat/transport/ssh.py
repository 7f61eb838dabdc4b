"""SSH transport (paramiko): connect with the host key checked, upload a job folder over SFTP, run a command there
and stream its output lines, remove the remote folder.

Security: host keys are verified against the device's ``known_hosts`` file (paramiko ``RejectPolicy``); only
``trust_on_first_use=True`` (CLI ``--trust-on-first-use``) accepts an unknown key, and then *appends* one line for
it (one ``write`` under a lock on ``<known_hosts>.lock``, fsync'd): every existing byte of the user's file is left
alone (paramiko's ``save_host_keys`` would rewrite it and drop comments and keys it cannot parse). Lines paramiko
cannot parse (``sk-ssh-ed25519@openssh.com`` keys, ``@cert-authority``) are skipped when loading, so they never stop
the check of the host being verified; a key listed under ``@revoked`` is refused. Every argument of a remote
command goes through ``shlex.quote``. Password auth is never used: key file only.

Faults (connection refused, authentication failure, timeout, connection dropped mid-run) raise
:class:`~hat.transport.TransportFault` (the caller retries ``retries`` times with exponential backoff); an unknown
or changed host key is a :class:`~hat.errors.HatError`, never retried.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shlex
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from hat.errors import ConfigError, HatError
from hat.optional import require
from hat.transport import Transport, TransportFault

log = logging.getLogger(__name__)


def _paramiko():
    return require("paramiko", "ssh devices")


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



class SSHTransport(Transport):
    """One SSH connection to a device: connect (host key checked), upload a folder, run a command streaming lines.

    Args:
        cfg: how to reach the device.
        name: the device's name (messages).
        base_dir: folder that relative ``key_file`` / ``known_hosts`` paths are relative to (the device YAML's).
        trust_on_first_use: accept and save an unknown host key (never a changed one).
    """

    def __init__(self, cfg: SSHConfig, name: str, base_dir: str = "", trust_on_first_use: bool = False):
        self.cfg = cfg
        self.name = name
        self.base_dir = base_dir
        self.trust_on_first_use = trust_on_first_use
        self.client = None
        self.retries, self.backoff_s, self.batch_size = cfg.retries, cfg.backoff_s, cfg.batch_size

    @property
    def where(self) -> str:
        return f"device {self.name} ({self.cfg.user}@{self.cfg.host}:{self.cfg.port})"

    def path(self, p: str) -> str:
        """Expand ``~`` and resolve ``p`` relative to :attr:`base_dir`."""
        q = Path(os.path.expanduser(p))
        if not q.is_absolute() and self.base_dir:
            q = Path(self.base_dir) / q
        return str(q)

    def run(self, local_dir: str, argv: Sequence[str], python: Optional[str] = None) -> Iterator[str]:
        """Connect, upload ``local_dir`` to a fresh folder under ``remote_workdir``, run ``python argv...`` there
        (``python``: the device's ``remote_python`` by default) and yield its stdout lines; the remote folder is
        removed and the connection closed afterwards, also on error."""
        remote = posixpath.join(self.cfg.remote_workdir, f"hat_{uuid.uuid4().hex[:12]}")
        try:
            self.connect()
            self.upload_dir(local_dir, remote)
            cmd = " ".join(shlex.quote(a) for a in [python or self.cfg.remote_python, *argv])
            yield from self.stream_lines(f"cd {shlex.quote(remote)} && {cmd}")
        finally:
            self.remove_and_close(remote)

    def connect(self) -> None:
        """Open the connection.

        Raises:
            HatError: unknown/changed host key, missing key or known_hosts file (not retried).
            TransportFault: refused, timed out, authentication failed, protocol error (retried by the caller).
        """
        paramiko = _paramiko()
        key_file = self.path(self.cfg.key_file)
        known_hosts = self.path(self.cfg.known_hosts)
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
            raise TransportFault(f"authentication failed ({e})") from None
        except (OSError, EOFError, paramiko.SSHException) as e:
            client.close()
            raise TransportFault(f"cannot connect ({type(e).__name__}: {e})") from None
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
            raise TransportFault(f"remote command failed ({type(e).__name__}: {e})") from None
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
            raise TransportFault(f"upload over SFTP failed ({type(e).__name__}: {e}; is the sftp subsystem enabled?)") \
                from None

    def stream_lines(self, command: str) -> Iterator[str]:
        """Run ``command`` and yield its stdout lines as they arrive.

        Raises:
            TransportFault: no output for ``run_timeout_s``, or the connection dropped before the command exited.
            HatError: the command exited non-zero (its stderr tail is in the message).
        """
        chan = self._session()
        chan.settimeout(self.cfg.run_timeout_s)
        try:
            chan.exec_command(command)
        except (OSError, EOFError, _paramiko().SSHException) as e:
            raise TransportFault(f"cannot start the remote runner ({type(e).__name__}: {e})") from None
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
            raise TransportFault(f"no result from the remote runner for {self.cfg.run_timeout_s:g} s") from None
        except (OSError, EOFError) as e:
            raise TransportFault(f"connection dropped mid-run ({type(e).__name__}: {e})") from None
        transport = self.client.get_transport()
        if not chan.exit_status_ready() and (transport is None or not transport.is_active()):
            raise TransportFault("connection dropped mid-run")
        status = chan.recv_exit_status()
        if status == -1:
            raise TransportFault("connection dropped mid-run (no exit status)")
        if status != 0:
            err = _drain_stderr(chan)
            raise HatError(f"{self.where}: remote runner exited with status {status}: "
                           f"{' '.join(err.split())[-400:] or '(no stderr)'}")

    def _session(self):
        transport = self.client.get_transport() if self.client else None
        if transport is None or not transport.is_active():
            raise TransportFault("connection dropped")
        try:
            return transport.open_session(timeout=self.cfg.connect_timeout_s)
        except (OSError, EOFError, _paramiko().SSHException) as e:
            raise TransportFault(f"cannot open a session ({type(e).__name__}: {e})") from None

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


def open_ssh(device, trust_on_first_use: bool = False) -> SSHTransport:
    """The ``ssh`` transport to ``device`` (a :class:`~hat.latency.devices.DeviceConfig` with an ``ssh:`` section)."""
    return SSHTransport(device.ssh, device.name, device.base_dir, trust_on_first_use)
