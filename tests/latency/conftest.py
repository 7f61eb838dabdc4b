"""A real OpenSSH server on 127.0.0.1 for the remote-profiling tests (skipped when sshd is not installed), and
hat-profile killed mid-run for the resume tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {proc.stderr.read().decode()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {timeout_s} s")


def _descendants(pid: int) -> list[int]:
    """All descendant pids of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


class SshServer:
    """sshd -D on 127.0.0.1:port with a generated host key and one authorized client key."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.host_key = root / "ssh_host_ed25519_key"
        self.client_key = root / "id_ed25519"
        self.authorized_keys = root / "authorized_keys"
        self.known_hosts = root / "known_hosts"
        self.config = root / "sshd_config"
        self.proc = None
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        self.authorized_keys.write_text(Path(str(self.client_key) + ".pub").read_text())
        host_pub = Path(str(self.host_key) + ".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.authorized_keys}", "PermitRootLogin yes", "StrictModes no", "UsePAM no",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "Subsystem sftp internal-sftp", f"PidFile {root / 'sshd.pid'}",
            "LogLevel ERROR", "",
        ]))

    def start(self) -> None:
        os.makedirs("/run/sshd", exist_ok=True)
        # Own session, so signals sent to the test process group never reach it.
        self.proc = subprocess.Popen([SSHD, "-f", str(self.config), "-D", "-e"], stderr=subprocess.PIPE,
                                     start_new_session=True)
        _wait_port(self.port, self.proc)

    def stop(self) -> None:
        """Kill the listener and every process it spawned (per-connection sshd call setsid(), so a process-group
        kill would leave live sessions running): this drops open connections like a device losing power."""
        if self.proc is not None and self.proc.poll() is None:
            for pid in [self.proc.pid] + _descendants(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=10)
        self.proc = None

    def device_yaml(self, path: Path, known_hosts: Path | None = None, **ssh_overrides) -> Path:
        """A device YAML for this server running the test venv's python (numpy + onnxruntime)."""
        import yaml
        ssh = {"host": "127.0.0.1", "port": self.port, "user": os.environ.get("USER") or "root",
               "key_file": str(self.client_key), "known_hosts": str(known_hosts or self.known_hosts),
               "remote_workdir": str(self.root / "remote"), "remote_python": sys.executable,
               "connect_timeout_s": 5.0, "run_timeout_s": 120.0, "retries": 2, "backoff_s": 0.1}
        ssh.update(ssh_overrides)
        path.write_text(yaml.safe_dump({"name": "loopback_ssh", "transport": "ssh", "runtime": "onnxruntime",
                                        "threads": 1, "ssh": ssh}))
        return path


@pytest.fixture
def sshd(tmp_path):
    """A running loopback sshd (stopped after the test)."""
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        pytest.skip(f"OpenSSH server not installed ({SSHD} / ssh-keygen missing)")
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd fixture needs root (sshd privilege separation)")
    server = SshServer(tmp_path / "ssh")
    server.start()
    yield server
    server.stop()


def _sigkill_profile(args: list[str], out: Path, lines: int, timeout_s: float) -> None:
    """Run ``hat-profile args`` in a subprocess and SIGKILL it once ``out`` has ``lines`` lines (the header
    included); fails if it finished before that."""
    cmd = [sys.executable, "-c", "import sys; from hat.cli.profile import main; sys.exit(main())"] + args
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_file() and out.read_text().count("\n") >= lines:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)


@pytest.fixture
def sigkill_profile():
    """``sigkill_profile(args, out, lines, timeout_s)``: hat-profile SIGKILLed mid-run (see ``_sigkill_profile``)."""
    return _sigkill_profile
