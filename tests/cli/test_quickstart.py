"""Smoke run of every hat-quickstart stage on real Multi30k (few updates/samples), then resume and bad input."""

import json
from pathlib import Path

import pytest

from hat.cli import quickstart


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, request):
    shared = request.getfixturevalue("shared_dir")
    work = tmp_path_factory.mktemp("qs")
    rc = quickstart.main(["--data-dir", str(shared / "data" / "multi30k"), "--workdir", str(work),
                          "--preset", "smoke", "--threads", "1"])
    assert rc == 0
    return work


@pytest.mark.slow
def test_every_artifact_exists_and_loads(smoke_run, capsys):
    import onnx
    import torch

    from hat.latency.records import read_latency_csv
    from hat.predictor import load_predictor
    from hat.space import SubnetConfig
    from hat.checkpoints import load_model

    w = smoke_run
    assert (w / "data-bin" / "spm.model").is_file() and (w / "data-bin" / "dict.en.txt").is_file()
    supernet, ckpt = load_model(w / "supernet" / "checkpoint_best.pt")
    assert ckpt["subnet"] is None
    torch.load(w / "supernet" / "checkpoint_best.pt", weights_only=True)
    records = read_latency_csv(w / "latency_cpu.csv")
    assert len(records) == quickstart.PRESETS["smoke"].profile_samples
    assert all(r.latency_ms > 0 and r.subnet is not None for r in records)
    pred = load_predictor(w / "predictor_cpu.pt")
    assert pred.predict_ms([records[0].subnet]).shape == (1,)
    assert (w / "predictor_scatter.png").stat().st_size > 0
    assert (w / "search" / "front.png").stat().st_size > 0
    summary = json.loads((w / "summary.json").read_text())
    assert len(summary["models"]) == 3
    for row in summary["models"]:
        supernet.space.check(SubnetConfig.load_yaml(row["subnet"]))
        assert row["measured_ms"] > 0
    kept = summary["kept"]
    model, kept_ckpt = load_model(kept["checkpoint"])
    assert SubnetConfig.from_dict(kept_ckpt["subnet"]) == SubnetConfig.load_yaml(kept["subnet"])
    assert 0 <= kept["bleu"] <= 100 and 0 <= kept["loop_share"] <= 1 and 0 <= kept["loop_share_refs"] <= 1
    hyp = Path(kept["checkpoint"]).parent / "test.hyp"
    assert len(hyp.read_text().splitlines()) == quickstart.PRESETS["smoke"].test_sentences
    assert summary["predictor_cv"]["n"] == quickstart.PRESETS["smoke"].profile_samples
    meta = json.loads((w / "export_onnx" / "meta.json").read_text())
    assert meta["subnet"]
    for name in ("encoder.onnx", "decoder_step.onnx"):
        onnx.checker.check_model(str(w / "export_onnx" / name))


@pytest.mark.slow
def test_search_for_ctranslate2_on_the_quickstart_supernet(smoke_run, tmp_path, capsys):
    """Issue 24's acceptance: hat-search --device cpu_ct2 on the quickstart's SuperTransformer (the registered
    multi30k_tiny / cpu_ct2 predictor) returns a SubTransformer that exports to CTranslate2 and translates."""
    pytest.importorskip("ctranslate2")
    from hat.cli import export, search, translate
    from hat.export.ctranslate2 import ctranslate2_blockers
    from hat.space import SubnetConfig
    w = smoke_run
    (tmp_path / "s.yaml").write_text("population_size: 8\nparent_size: 2\nmutation_size: 3\ncrossover_size: 3\n"
                                     "iterations: 2\nvalid_subset: 8\nvalid_max_tokens: 300\n")
    assert search.main(["--supernet", str(w / "supernet" / "checkpoint_best.pt"), "--device", "cpu_ct2",
                        "--latency", "200ms", "--data", str(w / "data-bin"), "--config", str(tmp_path / "s.yaml"),
                        "--out", str(tmp_path / "search"), "--no-progress"]) == 0
    sub = SubnetConfig.load_yaml(tmp_path / "search" / "subnet.yaml")
    assert ctranslate2_blockers(sub) == []
    assert export.main(["--checkpoint", str(w / "supernet" / "checkpoint_best.pt"), "--subnet",
                        str(tmp_path / "search" / "subnet.yaml"), "--format", "ctranslate2", "--out",
                        str(tmp_path / "ct2"), "--data", str(w / "data-bin")]) == 0
    (tmp_path / "in.de").write_text("Ein Mann fährt Fahrrad.\nZwei Hunde spielen im Schnee.\n", encoding="utf-8")
    capsys.readouterr()
    assert translate.main(["--ctranslate2", str(tmp_path / "ct2"), "--input", str(tmp_path / "in.de"),
                           "--output", str(tmp_path / "out.en"), "--quiet"]) == 0
    assert len((tmp_path / "out.en").read_text(encoding="utf-8").splitlines()) == 2


@pytest.mark.slow
def test_rerun_resumes_every_stage(smoke_run, capsys):
    rc = quickstart.main(["--data-dir", "unused-because-done", "--workdir", str(smoke_run), "--preset", "smoke"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "[train_supernet] done already" in out and "[search] done already" in out
    assert "HAT@" in out and "SacreBLEU" in out and "what next:" in out


def test_missing_data_dir_is_one_line_exit_2(tmp_path, capsys):
    rc = quickstart.main(["--data-dir", str(tmp_path / "nope"), "--workdir", str(tmp_path / "w"), "--preset", "smoke"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hat-quickstart: error:") and "\n" not in err


def block_network(monkeypatch):
    """Every socket connection fails, as with ``unshare -n``."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable (blocked by the test)")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_readme_command_offline_finds_the_local_copy(tmp_path, monkeypatch, shared_dir):
    """The README's main command (``hat-quickstart --preset tiny``, no --data-dir) resolves its data with the
    network blocked: ``$HAT_MULTI30K_DIR`` first, then the project's shared data beside the checkout."""
    from hat.pipeline import find_multi30k
    block_network(monkeypatch)
    monkeypatch.setenv("HAT_MULTI30K_DIR", str(shared_dir / "data" / "multi30k"))
    raw = find_multi30k(None, tmp_path / "w")
    assert raw["train"].parent == shared_dir / "data" / "multi30k" and not (tmp_path / "w" / "raw").exists()
    monkeypatch.delenv("HAT_MULTI30K_DIR")
    assert find_multi30k(None, tmp_path / "w")["train"].parent.resolve() == (shared_dir / "data" / "multi30k").resolve()


def test_readme_command_offline_without_a_copy_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    """Without a local copy the command downloads Multi30k; offline it stops with one line that names --data-dir."""
    import hat.data.multi30k
    block_network(monkeypatch)
    monkeypatch.setattr(hat.data.multi30k, "local_multi30k", lambda *a, **k: None)
    rc = quickstart.main(["--preset", "tiny", "--workdir", str(tmp_path / "w")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hat-quickstart: error: cannot download") and "\n" not in err
    assert "--data-dir" in err
    assert not list((tmp_path / "w" / "raw").glob("*.part"))  # no partial download left behind
