"""Issue 13 (high): known_hosts is only ever appended to; odd known_hosts lines never break the check; device results
are validated before they reach the CSV. Real loopback sshd; a fake remote runner prints crafted result lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hat.errors import HatError
from hat.latency.backends import get_backend
from hat.latency.devices import load_device
from hat.latency.profiler import profile
from hat.latency.protocol import ProfileSettings
from hat.latency.records import read_latency_csv

SETTINGS = ProfileSettings(src_len=6, tgt_len=4, beam=2, vocab_size=64, warmup=1, repeats=3)
SK_LINE = ("sk.example.org sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIIWv8vYJ3UQxT1mP"
           "8EfV4P3c7lC9Mb2c0TTi2oTdW9J6AAAABHNzaDo=")


def _other_pub(tmp_path, name="other"):
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    kind, b64 = (tmp_path / f"{name}.pub").read_text().split()[:2]
    return kind, b64


def _odd_known_hosts(tmp_path, extra: str = "") -> bytes:
    kind, b64 = _other_pub(tmp_path)
    return ("# my hosts, keep this comment\n"
            f"host1,10.0.0.1 {kind} {b64}\n"
            f"{SK_LINE}\n"
            f"@cert-authority *.example.org {kind} {b64}\n"
            "garbage line that is not a key\n"
            f"|1|abc=|def= {kind} {b64}\n" + extra
            + f"host2 {kind} {b64}").encode()  # no trailing newline on purpose


def test_tofu_appends_one_line_and_keeps_every_byte(sshd, tiny_space, tmp_path):
    kh = tmp_path / "known_hosts"
    before = _odd_known_hosts(tmp_path)
    kh.write_bytes(before)
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", known_hosts=kh))
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim, trust_on_first_use=True) as backend:
        assert len(profile([tiny_space.smallest()], backend)) == 1
    after = kh.read_bytes()
    assert after.startswith(before)
    added = after[len(before):].decode()
    host_kind, host_b64 = sshd.host_key.with_suffix(".pub").read_text().split()[:2]
    assert added == f"\n[127.0.0.1]:{sshd.port} {host_kind} {host_b64}\n"
    # A second run finds the key (nothing appended again) and verifies without --trust-on-first-use.
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        assert len(profile([tiny_space.smallest()], backend)) == 1
    assert kh.read_bytes() == after


def test_odd_known_hosts_lines_do_not_break_verification(sshd, tiny_space, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_bytes(_odd_known_hosts(tmp_path, extra=sshd.known_hosts.read_text()))
    before = kh.read_bytes()
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", known_hosts=kh))
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        assert len(profile([tiny_space.smallest()], backend)) == 1
    assert kh.read_bytes() == before


def _assert_profile_refused(sshd, tiny_space, tmp_path, match: str, **device) -> None:
    """Profiling one config on the sshd fixture with these device fields fails with one HatError matching ``match``."""
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", **device))
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        with pytest.raises(HatError, match=match):
            profile([tiny_space.smallest()], backend)


def test_odd_known_hosts_unknown_host_refused_cleanly(sshd, tiny_space, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_bytes(_odd_known_hosts(tmp_path))
    _assert_profile_refused(sshd, tiny_space, tmp_path, "host key not found", known_hosts=kh)


def test_revoked_key_refused(sshd, tiny_space, tmp_path):
    kh = tmp_path / "known_hosts"
    line = sshd.known_hosts.read_text()
    kh.write_text(line + "@revoked " + line)
    _assert_profile_refused(sshd, tiny_space, tmp_path, "revoked", known_hosts=kh)


def test_garbage_key_file_one_line(sshd, tiny_space, tmp_path):
    key = tmp_path / "garbage_key"
    key.write_bytes(b"\xff\xfe-----BEGIN OPENSSH PRIVATE KEY-----\n\x00\x81garbage\n")
    _assert_profile_refused(sshd, tiny_space, tmp_path, "cannot read ssh key_file", key_file=str(key))


def _fake_runner(tmp_path, results: list, sleep_after_first: float = 0.0):
    """An executable used as remote_python: prints ``results[i]`` (JSON-merged with the job id) per job."""
    script = tmp_path / "fake_python"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys, time\n"
        "jobs = json.load(open(sys.argv[2]))['jobs']\n"
        f"results = json.loads({json.dumps(results)!r})\n"
        "for i, j in enumerate(jobs):\n"
        "    r = dict(results[min(i, len(results) - 1)]); r['id'] = j['id']\n"
        "    sys.stdout.write(json.dumps(r) + '\\n'); sys.stdout.flush()\n"
        f"    time.sleep({sleep_after_first} if i == 0 else 0)\n")
    script.chmod(0o755)
    return str(script)


GOOD = {"encoder_ms": [1.0, 1.1, 1.2], "decoder_ms": [5.0, 5.5, 6.0], "host": "fake", "threads": 1}


@pytest.mark.parametrize("poison", [
    {"encoder_ms": [float("nan")] * 3},
    {"encoder_ms": [-1.0, -2.0, -3.0]},
    {"decoder_ms": [float("inf")] * 3},
    {"decoder_ms": [1e300] * 3},
    {"decoder_ms": "fast"},
    {"decoder_ms": []},
    {"threads": "one"},
], ids=["nan", "negative", "inf", "1e300", "string", "empty", "threads"])
def test_poisoned_results_refused_and_csv_stays_usable(sshd, tiny_space, tmp_path, poison):
    import random
    configs = [tiny_space.smallest(), tiny_space.sample(random.Random(3))]
    runner = _fake_runner(tmp_path, [GOOD, {**GOOD, **poison}])
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", remote_python=runner, batch_size=2, retries=0))
    out = tmp_path / "lat.csv"
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        with pytest.raises(HatError, match="loopback_ssh"):
            profile(configs, backend, out=out)
    recs = read_latency_csv(out)
    assert len(recs) == 1 and recs[0].subnet == configs[0]


def test_host_with_newline_and_formula_is_escaped(sshd, tiny_space, tmp_path):
    host = "=HYPERLINK(\"x\")\nrow2,1,2\r\x1b[31m"
    runner = _fake_runner(tmp_path, [{**GOOD, "host": host}])
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", remote_python=runner))
    out = tmp_path / "lat.csv"
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        profile([tiny_space.smallest()], backend, out=out)
    text = out.read_text()
    assert text.count("\n") == 2 and "\r" not in text and "\x1b" not in text
    import csv
    from hat.latency.records import CSV_COLUMNS, TEXT_COLUMNS
    row = dict(zip(CSV_COLUMNS, next(csv.reader([text.splitlines()[1]]))))
    assert not any(row[c].startswith(("=", "+", "-", "@")) for c in TEXT_COLUMNS)
    assert read_latency_csv(out)[0].host == host  # round-trips
    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:  # resume reads it
        assert profile([tiny_space.smallest()], backend, out=out, resume=True) == []


def test_server_death_counts_every_unmeasured_config(sshd, tiny_space, tmp_path):
    import random
    rng = random.Random(1)
    configs = [tiny_space.smallest()]
    while len(configs) < 5:
        c = tiny_space.sample(rng)
        if c not in configs:
            configs.append(c)
    runner = _fake_runner(tmp_path, [GOOD], sleep_after_first=30)
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml", remote_python=runner, batch_size=2, retries=1,
                                       backoff_s=0.01, connect_timeout_s=2))
    seen = []

    def kill(rec):
        seen.append(rec)
        sshd.stop()

    with get_backend(dev, SETTINGS, tiny_space.qkv_dim) as backend:
        with pytest.raises(HatError, match=r"\(4 config\(s\) not measured"):
            profile(configs, backend, out=tmp_path / "lat.csv", on_record=kill)
    assert len(seen) == 1


def test_device_name_with_newline_or_formula_refused(tmp_path):
    from hat.errors import ConfigError
    for name in ("bad\nname", "=cmd|' /C calc'!A0", "@x"):
        (tmp_path / "d.yaml").write_text(json.dumps({"name": name, "runtime": "debug"}))
        with pytest.raises(ConfigError, match="name"):
            load_device(tmp_path / "d.yaml")
