"""The quickstart's own pieces (the steps are tests/test_pipeline.py; the whole run tests/cli/test_quickstart.py)."""

import pytest

from hat import quickstart as qs
from hat.errors import HatError
from hat.space import load_space


@pytest.mark.parametrize("kwargs", [{"preset": "huge"}, {"threads": 0}])
def test_settings_reject_bad_values(tmp_path, kwargs):
    with pytest.raises(HatError):
        qs.QuickstartSettings(workdir=tmp_path, **kwargs)


def test_result_row_and_summary(tmp_path):
    sub = tmp_path / "subnet_12.5ms.yaml"
    load_space(qs.SPACE).smallest().save_yaml(sub, predicted_latency_ms=11.0, params=1234, valid_loss=5.5)
    row = qs.result_row(12.5, sub, {"latency_ms": 10.5})
    assert row["name"] == "HAT@12.5ms" and row["predicted_ms"] == 11.0 and row["measured_ms"] == 10.5
    assert row["params"] == 1234 and row["valid_loss_inherited"] == 5.5 and row["subnet"] == str(sub)
    summary = {"workdir": str(tmp_path), "models": [row], "predictor_cv": {"mape": 0.04, "kendall_tau": 0.9, "n": 150},
               "kept": {**row, "checkpoint": "k.pt", "finetune_updates": 1200, "bleu": 30.1, "loop_share": 0.01,
                        "loop_share_refs": 0.0}}
    text = qs.format_summary(summary)
    assert "HAT@12.5ms" in text and "1,234" in text and "30.10" in text and "MAPE 0.040" in text
    assert "1.0% of hypotheses loop (references 0.0%)" in text
    assert "hat-translate --onnx" in text.split("what next:")[1]


def test_the_kept_model_has_the_lowest_inherited_validation_loss(tmp_path):
    space = load_space(qs.SPACE)
    found = {}
    for b, loss in (("5.0", 6.1), ("7.5", 5.2), ("9.0", 5.4)):
        found[b] = str(tmp_path / f"{b}.yaml")
        space.smallest().save_yaml(found[b], valid_loss=loss)
    assert qs.kept_budget(found) == "7.5"
