"""benchmarks/record.py: the raw record every benchmark writes (command, versions, host, load average, samples)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.record import RunRecord  # noqa: E402


def test_record_has_everything_to_recheck(tmp_path):
    rec = RunRecord("x", out=tmp_path / "x.json", argv=[str(REPO_ROOT / "benchmarks" / "x.py"), "--runs", "5"])
    path = rec.write(samples=[{"run": 0, "ms": 1.5}, {"run": 1, "ms": 1.7}], summary={"median_ms": 1.6},
                     args={"runs": 5}, complete=False, budget_ms=20.0)
    r = json.loads(path.read_text())
    assert r["command"] == "python benchmarks/x.py --runs 5"
    assert r["samples"] == [{"run": 0, "ms": 1.5}, {"run": 1, "ms": 1.7}] and r["summary"] == {"median_ms": 1.6}
    assert r["complete"] is False and r["budget_ms"] == 20.0 and r["args"] == {"runs": 5}
    assert {"python", "torch", "numpy", "hat_commit"} <= set(r["versions"])
    assert r["host"]["cpu_count"] >= 1 and r["host"]["cpu"]
    assert len(r["load_average_start"]) == 3 and len(r["load_average_end"]) == 3
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
