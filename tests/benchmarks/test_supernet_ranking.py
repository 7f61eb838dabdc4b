"""benchmarks/supernet_ranking.py: ranks only the SubTransformers it is given; a missing one is one line, exit 2."""

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
