"""hat.io: atomic writes leave the old file or the new one, never a temp file; stale temps of dead writers are
removed; a full disk (ENOSPC, simulated) changes nothing; strict JSON; one writer per lock."""

from __future__ import annotations

import errno
import json
import os

import pytest

from hat.io import (LockHeld, TEMP_MARK, atomic_open, atomic_path, atomic_write, atomic_write_json,
                    clean_stale_temps, exclusive_lock, finite_json, save_torch, temp_name)


def _temps(d):
    return [p.name for p in d.iterdir() if TEMP_MARK in p.name]


@pytest.mark.parametrize("data", ["new text\n", b"\x00new bytes"])
def test_atomic_write_replaces_and_leaves_no_temp(tmp_path, data):
    p = tmp_path / "sub" / "f.txt"
    atomic_write(p, "old\n")
    atomic_write(p, data)
    assert p.read_bytes() == (data.encode() if isinstance(data, str) else data)
    assert _temps(p.parent) == []


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_enospc_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    p = tmp_path / "f.json"
    atomic_write(p, "good\n")
    real_open = open

    class Half:
        """A file that takes a few bytes, then the disk is full."""

        def __init__(self, f):
            self.f = f

        def write(self, b):
            self.f.write(b[:3])
            self.f.flush()
            _enospc()

        def __getattr__(self, k):
            return getattr(self.f, k)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    monkeypatch.setattr("builtins.open", lambda f, mode="r", *a, **k: Half(real_open(f, mode, *a, **k))
                        if "w" in mode else real_open(f, mode, *a, **k))
    with pytest.raises(OSError) as e:
        atomic_write(p, "x" * 10000)
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert p.read_text() == "good\n" and _temps(tmp_path) == []


def test_save_torch_enospc_is_oserror_not_runtimeerror(tmp_path, monkeypatch):
    import torch
    p = tmp_path / "m.pt"
    save_torch({"a": torch.ones(3)}, p)
    monkeypatch.setattr("os.fsync", _enospc)  # the disk fills up when the data is flushed
    with pytest.raises(OSError):
        save_torch({"a": torch.zeros(3)}, p)
    monkeypatch.undo()
    assert torch.equal(torch.load(p, weights_only=True)["a"], torch.ones(3)) and _temps(tmp_path) == []


def test_exception_in_block_removes_temp_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out") as tmp:
            tmp.mkdir()
            (tmp / "x").write_text("x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_stale_temps_of_dead_writers_removed_live_and_foreign_kept(tmp_path):
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    target = tmp_path / "checkpoint_last.pt"
    stale = tmp_path / f".checkpoint_last.pt{TEMP_MARK}{dead}-deadbeef"
    stale.write_bytes(b"x" * 1000)  # a writer SIGKILLed mid-save
    live = tmp_path / f".checkpoint_last.pt{TEMP_MARK}{os.getppid()}-cafecafe"
    live.write_bytes(b"y")
    foreign = tmp_path / ".checkpoint_last.pt.tmp123"
    foreign.write_bytes(b"z")
    other_target = tmp_path / f".other.pt{TEMP_MARK}{dead}-deadbeef"
    other_target.write_bytes(b"w")
    atomic_write(target, b"ckpt")
    assert not stale.exists() and live.exists() and foreign.exists() and other_target.exists()
    assert clean_stale_temps(tmp_path / "other.pt") == [other_target]


def test_temp_name_pattern(tmp_path):
    t = temp_name(tmp_path / "encoder.so", keep_suffix=True)
    assert t.name.startswith(".encoder.so" + TEMP_MARK) and t.suffix == ".so" and t.parent == tmp_path


def test_atomic_open_lines(tmp_path):
    with atomic_open(tmp_path / "l.txt") as f:
        f.write("a\nb\n")
    assert (tmp_path / "l.txt").read_text() == "a\nb\n"


def test_finite_json(tmp_path):
    obj = {"a": float("inf"), "b": [1.0, float("nan"), -float("inf")], "c": "x", "d": 2}
    assert finite_json(obj) == {"a": None, "b": [1.0, None, None], "c": "x", "d": 2}
    atomic_write_json(tmp_path / "r.json", obj)
    text = (tmp_path / "r.json").read_text()
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_exclusive_lock_one_holder(tmp_path):
    p = tmp_path / "lat.csv"
    with exclusive_lock(p, "latency CSV"):
        with pytest.raises(LockHeld, match="another process is writing this latency CSV"):
            with exclusive_lock(p, "latency CSV"):
                pass
    with exclusive_lock(p):  # released
        pass
