"""Issue 13: latency CSVs are validated, escaped, single-writer, and never mix devices; fit sees duplicates."""

from __future__ import annotations

import dataclasses
import errno
import random

import pytest

from hat.errors import HatError
from hat.io import LockHeld
from hat.latency.records import (CsvAppender, LatencyRecord, dedupe_records, escape_text, existing_keys,
                                 read_latency_csv, unescape_text)
from hat.space import load_space

FAST = ["--src-len", "8", "--tgt-len", "5", "--vocab-size", "200", "--warmup", "1", "--repeats", "3"]


def _rec(i=0, seed=0, **kw):
    cfg = load_space("multi30k_tiny").sample(random.Random(seed + i))
    base = dict(runtime="debug", device="debug", host="h", threads=1, timestamp="2026-01-01T00:00:00Z")
    base.update(kw)
    enc = base.pop("enc", 10.0 + i)
    dec = base.pop("dec", 20.0 + i)
    return LatencyRecord.from_subnet(cfg, enc, dec, 0.1, 0.2, **base)


@pytest.mark.parametrize("enc,dec", [(float("nan"), 1.0), (float("inf"), 1.0), (-1.0, 5.0), (1e300, 1.0),
                                     (0.0, 0.0), (1.0, -float("inf"))])
def test_bad_latencies_refused_before_writing(tmp_path, enc, dec):
    p = tmp_path / "lat.csv"
    with CsvAppender(p) as out:
        out.append(_rec(0))
        before = p.read_bytes()
        with pytest.raises(HatError, match="refusing to write"):
            out.append(_rec(1, enc=enc, dec=dec))
    assert p.read_bytes() == before
    assert len(read_latency_csv(p)) == 1


def test_reader_rejects_absurd_latency(tmp_path):
    p = tmp_path / "lat.csv"
    with CsvAppender(p) as out:
        out.append(_rec(0))
    text = p.read_text().replace(",10,20,", ",1e300,20,", 1)
    assert "1e300" in text
    p.write_text(text)
    with pytest.raises(HatError, match="sanity bound"):
        read_latency_csv(p)


@pytest.mark.parametrize("text", ["plain", "=1+2", "+x", "-x", "@SUM(A1)", "'=already", "a\nb", "c\r\nd", "\x1b[31m",
                                  "tab\there", "u\u2028v", "x\x0by", r"back\u0041slash", "'", "''x", "'x"])
def test_escape_round_trip(text):
    e = escape_text(text)
    assert not any(ord(c) < 32 for c in e) and "\u2028" not in e
    assert e[:1] not in "=+-@" or e == ""
    assert unescape_text(e) == text


def test_text_cells_one_line_and_neutralised(tmp_path):
    p = tmp_path / "lat.csv"
    host = "=cmd|' /C calc'!A0\nsecond,line\x0b\x85"
    with CsvAppender(p) as out:
        out.append(_rec(0, host=host))
        out.append(_rec(1))
    lines = p.read_text().split("\n")
    assert len(lines) == 4 and lines[-1] == ""
    back = read_latency_csv(p)
    assert back[0].host == host and len(back) == 2


def test_second_writer_refused_while_first_holds_the_file(tmp_path):
    p = tmp_path / "lat.csv"
    with CsvAppender(p) as out:
        out.append(_rec(0))
        with pytest.raises(LockHeld, match="another process is writing"):
            CsvAppender(p).open()
    with CsvAppender(p) as out:  # released on close
        out.append(_rec(1))
    assert len(read_latency_csv(p)) == 2


def test_hat_profile_with_held_lock_is_one_line(tmp_path, capsys):
    from hat.cli.profile import main
    p = tmp_path / "lat.csv"
    with CsvAppender(p):
        rc = main(["--samples", "2", "--space", "multi30k_tiny", "--device", "debug", "--out", str(p), "--resume"]
                  + FAST)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "lock" in err[0]


def test_new_file_header_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "lat.csv"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("hat.latency.records.atomic_write", full)
    with pytest.raises(OSError):
        CsvAppender(p).open()
    assert not p.exists()  # no half header for a second writer to append to
    monkeypatch.undo()
    with CsvAppender(p) as out:
        out.append(_rec(0))
    assert p.read_text().count("latency_mean_encoder") == 1


def test_resume_refuses_another_device(tmp_path, capsys):
    from hat.cli.profile import main
    p = tmp_path / "lat.csv"
    assert main(["--samples", "2", "--space", "multi30k_tiny", "--device", "debug", "--out", str(p)] + FAST) == 0
    before = p.read_bytes()
    (tmp_path / "other.yaml").write_text("name: other\nruntime: debug\n")
    capsys.readouterr()
    rc = main(["--samples", "3", "--space", "multi30k_tiny", "--device", str(tmp_path / "other.yaml"), "--out",
               str(p), "--resume"] + FAST)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "device 'debug'" in err[0]
    assert p.read_bytes() == before
    with pytest.raises(HatError, match="runtime"):
        existing_keys(p, runtime="onnxruntime")


def test_samples_bounded(capsys, tmp_path):
    from hat.cli.profile import main
    rc = main(["--samples", "100000000", "--space", "multi30k_tiny", "--device", "debug", "--out",
               str(tmp_path / "l.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--samples" in err[0]
    assert not (tmp_path / "l.csv").exists()


def test_dedupe_averages_duplicates():
    a, b = _rec(0), _rec(1)
    a2 = dataclasses.replace(a, latency_mean_encoder=14.0, latency_mean_decoder=30.0)
    out, n = dedupe_records([a, b, a2])
    assert n == 1 and len(out) == 2
    assert out[0].latency_mean_encoder == pytest.approx(12.0) and out[0].latency_mean_decoder == pytest.approx(25.0)
    assert out[1] is b


def test_fit_warns_about_duplicates_and_dedupe_averages(tmp_path, capsys):
    from hat.cli.predictor import main
    p = tmp_path / "lat.csv"
    recs = [_rec(i) for i in range(12)]
    with CsvAppender(p) as out:
        for r in recs + recs[:5]:  # two writers on one file
            out.append(r)
    args = ["fit", "--data", str(p), "--device", "debug", "--space", "multi30k_tiny"]
    assert main(args + ["--out", str(tmp_path / "a.pt")]) == 0
    err = capsys.readouterr().err
    assert "5 row(s) repeat" in err and "--dedupe" in err
    assert main(args + ["--out", str(tmp_path / "b.pt"), "--dedupe"]) == 0
    err = capsys.readouterr().err
    assert "averaged 5 duplicate row(s)" in err and "(17 -> 12 rows)" in err
