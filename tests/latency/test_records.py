"""Latency CSV records: round trip, HAT's files, truncated lines, bad input."""

from __future__ import annotations

import random

import pytest

from hat.errors import HatError
from hat.latency.records import (CSV_COLUMNS, HAT_COLUMNS, CsvAppender, LatencyRecord, existing_keys,
                                 read_latency_csv)
from hat.space import load_space

HAT_FILES = ["wmt14ende_cpu_raspberrypi_all.csv", "wmt14ende_cpu_xeon_all.csv", "wmt14ende_gpu_titanxp_all.csv",
             "iwslt14deen_gpu_titanxp_all.csv"]


def _records(n, seed=0):
    space = load_space("wmt14_space0")
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cfg = space.sample(rng)
        out.append(LatencyRecord.from_subnet(cfg, 10.0 + i, 20.5 + i, 0.1, 0.2, runtime="eager", device="cpu",
                                             host="h", threads=1, timestamp="2026-01-01T00:00:00Z"))
    return out


def test_round_trip(tmp_path):
    p = tmp_path / "lat.csv"
    recs = _records(5)
    with CsvAppender(p) as out:
        for r in recs[:3]:
            out.append(r)
    with CsvAppender(p) as out:  # reopen: header not repeated
        for r in recs[3:]:
            out.append(r)
    lines = p.read_text().splitlines()
    assert lines[0].split(",") == list(CSV_COLUMNS)
    assert len(lines) == 6
    back = read_latency_csv(p)
    assert back == recs
    assert back[0].latency_ms == pytest.approx(30.5)
    assert existing_keys(p) == {r.subnet.key() for r in recs}
    assert existing_keys(tmp_path / "missing.csv") == set()


@pytest.mark.parametrize("name", HAT_FILES)
def test_hat_files_load(shared_dir, name):
    recs = read_latency_csv(shared_dir / "data" / "hat_latency" / name)
    assert len(recs) == 2000
    assert all(r.subnet is None for r in recs)
    r = recs[0]
    assert r.latency_ms == r.latency_mean_encoder + r.latency_mean_decoder > 0
    assert len(r.features) == 10


def test_truncated_last_line_dropped_on_open(tmp_path):
    p = tmp_path / "lat.csv"
    recs = _records(3)
    with CsvAppender(p) as out:
        for r in recs[:2]:
            out.append(r)
    full = p.read_text()
    p.write_text(full + ",".join(recs[2].to_row())[:40])  # killed mid-row
    with pytest.warns(UserWarning, match="truncated"):
        assert len(read_latency_csv(p)) == 2
    with CsvAppender(p) as out:
        assert out.dropped_partial_line
        out.append(recs[2])
    assert read_latency_csv(p) == recs


def test_hat_file_without_trailing_newline_keeps_last_row(tmp_path):
    p = tmp_path / "hat.csv"
    p.write_text(",".join(HAT_COLUMNS) + "\n" + ",".join(["1"] * 14))
    assert len(read_latency_csv(p)) == 1


def _csv(tmp_path, header, row):
    p = tmp_path / "bad.csv"
    p.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    return p


@pytest.mark.parametrize("header,row,match", [
    (HAT_COLUMNS[:-2], ["1"] * 12, "missing column.*latency_std_encoder, latency_std_decoder"),
    (HAT_COLUMNS, ["1"] * 10 + ["abc"] + ["1"] * 3, "row 2 column 'latency_mean_encoder'"),
    (HAT_COLUMNS, ["1"] * 10 + ["__import__('os')"] + ["1"] * 3, "expected a number"),
    (HAT_COLUMNS, ["1"] * 10 + ["-1", "0.5", "0", "0"], "must not be negative"),
    (HAT_COLUMNS, ["1"] * 10 + ["0", "0", "0", "0"], "must be positive"),
    (HAT_COLUMNS, ["1"] * 10 + ["nan"] + ["1"] * 3, "finite"),
    (CSV_COLUMNS, ["1"] * 14 + ["{bad json"] + [""] * (len(CSV_COLUMNS) - 15), "row 2 column 'subnet'"),
])
def test_bad_inputs(tmp_path, header, row, match):
    with pytest.raises(HatError, match=match):
        read_latency_csv(_csv(tmp_path, header, row))


def test_missing_and_empty_file(tmp_path):
    with pytest.raises(HatError, match="no such"):
        read_latency_csv(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(HatError, match="empty"):
        read_latency_csv(tmp_path / "empty.csv")


def test_appender_refuses_other_header(tmp_path):
    p = tmp_path / "hat.csv"
    p.write_text(",".join(HAT_COLUMNS) + "\n")
    with pytest.raises(HatError, match="different header"):
        CsvAppender(p).open()
