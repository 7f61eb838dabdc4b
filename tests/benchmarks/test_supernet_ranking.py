"""benchmarks/supernet_ranking.py: ranks only the SubTransformers it is given; a missing one is one line, exit 2;
from-scratch results can come from an earlier record of it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("supernet_ranking", REPO_ROOT / "benchmarks" / "supernet_ranking.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_named_subtransformer_without_result_is_one_line_exit_2(tmp_path, capsys):
    stages = tmp_path / ".stages"
    stages.mkdir()
    for name in ("a", "b", "c"):
        (stages / f"scratch_{name}_seed0.json").write_text(json.dumps({"name": name}))
    rc = _load().main(["--workdir", str(tmp_path), "--out", str(tmp_path / "r.json"), "--names", "a", "nope"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "nope" in err and not (tmp_path / "r.json").exists()


def test_scratch_results_from_the_committed_record():
    """The committed record holds the ranking set's from-scratch results, readable as the benchmark's input."""
    rows = _load().recorded_results(REPO_ROOT / "benchmarks" / "results" / "supernet_ranking.json")
    assert len(rows) == 10 and "Transformer-largest" in rows
    big = rows["Transformer-largest"]
    assert big["subnet"].encoder_layer_num == 3 and 1.0 < big["valid_nll_loss"] < 3.0 and big["bleu"] > 30


def test_a_bad_scratch_record_or_a_name_missing_from_it_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    record = str(REPO_ROOT / "benchmarks" / "results" / "supernet_ranking.json")
    for extra in (["--scratch-from", str(tmp_path / "none.json")], ["--scratch-from", str(bad)],
                  ["--scratch-from", record, "--names", "Transformer-largest", "nope"]):
        rc = _load().main(["--workdir", str(tmp_path), "--out", str(tmp_path / "r.json"), *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and err.count("\n") == 0 and err.startswith("supernet_ranking: error: "), err
    assert "nope" in err and not (tmp_path / "r.json").exists()
