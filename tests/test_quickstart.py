"""The quickstart pipeline's library pieces (the whole run is tests/cli/test_quickstart.py)."""

import json

import pytest

from hat import quickstart as qs
from hat.errors import HatError
from hat.space import load_space


@pytest.mark.parametrize("kwargs", [{"preset": "huge"}, {"threads": 0}])
def test_settings_reject_bad_values(tmp_path, kwargs):
    with pytest.raises(HatError):
        qs.QuickstartSettings(workdir=tmp_path, **kwargs)


def test_pipeline_skips_finished_stages(tmp_path):
    calls, lines = [], []
    pl = qs.Pipeline(tmp_path, qs.PRESETS["smoke"], "smoke", log=lines.append)
    first = pl.stage("x", lambda: calls.append(1) or {"a": 1})
    again = pl.stage("x", lambda: calls.append(2) or {"a": 2})
    assert calls == [1] and first["a"] == again["a"] == 1
    assert json.loads((tmp_path / ".stages" / "x.json").read_text())["a"] == 1
    assert "done already" in lines[-1]


def test_finished_stages_reads_results_by_pattern(tmp_path):
    assert qs.finished_stages(tmp_path / "missing") == {}
    pl = qs.Pipeline(tmp_path, None, "x", log=lambda m: None)
    assert pl.result("scratch_a_seed0") is None
    pl.stage("scratch_a_seed0", lambda: {"bleu": 1.0})
    pl.stage("scratch_a_seed1", lambda: {"bleu": 2.0})
    pl.stage("search", lambda: {})
    assert pl.result("scratch_a_seed0")["bleu"] == 1.0 and pl.marker("search").is_file()
    assert list(qs.finished_stages(tmp_path, "scratch_*_seed0")) == ["scratch_a_seed0"]
    assert sorted(qs.finished_stages(tmp_path)) == ["scratch_a_seed0", "scratch_a_seed1", "search"]


def test_result_row_and_summary(tmp_path):
    sub = tmp_path / "subnet_12.5ms.yaml"
    load_space(qs.SPACE).smallest().save_yaml(sub, predicted_latency_ms=11.0, params=1234, valid_loss=5.5)
    row = qs.result_row(12.5, sub, tmp_path / "ckpt.pt", {"sacrebleu": 30.1, "tokenized_bleu": 31.2},
                        {"latency_ms": 10.5})
    assert row["name"] == "HAT@12.5ms" and row["predicted_ms"] == 11.0 and row["measured_ms"] == 10.5
    assert row["params"] == 1234 and row["bleu"] == 30.1 and row["subnet"] == str(sub)
    text = qs.format_summary([row], tmp_path)
    assert "HAT@12.5ms" in text and "1,234" in text and "30.10" in text


def test_budgets_are_latency_quartiles(tmp_path):
    from hat.latency.records import CsvAppender, LatencyRecord
    space = load_space(qs.SPACE)
    cfg = space.smallest()
    recs = [LatencyRecord.from_subnet(cfg, float(ms), 0.0, 0.0, 0.0) for ms in range(1, 10)]
    with CsvAppender(tmp_path / "lat.csv") as appender:
        for r in recs:
            appender.append(r)
    assert qs.choose_budgets(tmp_path / "lat.csv")["budgets_ms"] == [3.0, 5.0, 7.0]
