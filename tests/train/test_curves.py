"""Validation curves and the flattening rule (hat.train.curves)."""

import json

from hat.train.curves import (flattening_note, per_epoch_gain, train_until_flat, updates_per_epoch, valid_curve)


def write_log(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


ROWS = [{"type": "train", "update": 50, "epoch": 1},
        {"type": "valid", "update": 100, "epoch": 1, "nll_loss": 4.0},
        {"type": "valid", "update": 200, "epoch": 2, "nll_loss": 3.0},
        {"type": "valid", "update": 300, "epoch": 3, "nll_loss": 2.97},
        {"type": "valid", "update": 310, "epoch": 4, "nll_loss": 2.96}]


def test_gain_is_measured_over_at_least_one_epoch(tmp_path):
    """An off-epoch point (a run stopped mid-epoch) does not decide alone."""
    log = tmp_path / "train_log.jsonl"
    write_log(log, ROWS)
    curve = valid_curve(log)
    assert curve == [(100, 4.0), (200, 3.0), (300, 2.97), (310, 2.96)]
    assert updates_per_epoch(log) == 100
    # last point vs the latest point >= 1 epoch before it (200): (3.0 - 2.96) / 3.0 per 110 updates
    assert abs(per_epoch_gain(curve, 100) - 0.04 / 3.0 * 100 / 110) < 1e-12
    assert "NOT flattened" in flattening_note(curve[:2], 0.01, 100)
    assert "flattened" in flattening_note(curve[:3], 0.01, 100)


def test_train_until_flat_extends_by_steps_until_the_gain_is_small(tmp_path):
    log = tmp_path / "train_log.jsonl"
    calls = []

    def extend(n):  # each extension appends the validation rows up to update n
        calls.append(n)
        write_log(log, ROWS[:1 + len(calls)])
    res = train_until_flat(log, extend, step=100, max_updates=1000, flat_gain=0.02, log=lambda m: None)
    assert calls == [100, 200, 300] and res["updates"] == 300 and res["flattened"]
    assert [s["update"] for s in res["steps"]] == [100, 200, 300]
    capped = train_until_flat(log, extend, step=100, max_updates=300, flat_gain=0.0001, log=lambda m: None)
    assert capped["updates"] == 300 and not capped["flattened"] and len(calls) == 3
