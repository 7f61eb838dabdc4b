"""Issue 13 (medium/low): a full disk, closed pipes, corrupt archives and checkpoints give one line, never a
traceback, and never damage what was written before."""

from __future__ import annotations

import errno
import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hat.errors import HatError
from hat.io import TEMP_MARK

REPO = Path(__file__).resolve().parents[2]
GOOD_CSV = REPO / "latency_predictors" / "data" / "multi30k_tiny_cpu_ort.csv"


def _one_line(capsys, rc, prog):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(f"{prog}: error:") and "Traceback" not in err, err
    return err


def _temps(d: Path):
    return [p for p in d.rglob("*") if TEMP_MARK in p.name or p.name.endswith(".tmp")]


def test_disk_full_during_predictor_save(tmp_path, capsys, monkeypatch):
    from hat.cli.predictor import main
    out = tmp_path / "p.pt"
    args = ["fit", "--data", str(GOOD_CSV), "--device", "cpu", "--space", "multi30k_tiny", "--out", str(out)]
    assert main(args) == 0
    before = out.read_bytes()
    capsys.readouterr()
    real_save = torch.save

    def save_then_full(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        raise OSError(errno.ENOSPC, "No space left on device")  # after the bytes went to the temp file

    monkeypatch.setattr(torch, "save", save_then_full)
    err = _one_line(capsys, main(args), "hat-predictor")
    assert "no space left on device" in err
    assert out.read_bytes() == before and _temps(tmp_path) == []


def test_disk_full_during_checkpoint_average(tmp_path, capsys, monkeypatch):
    from hat.cli.average_checkpoints import main
    from hat.checkpoints import save_checkpoint
    for i in (1, 2):
        save_checkpoint({"model": {"w": torch.full((4,), float(i))}, "update": i}, tmp_path / f"checkpoint{i}.pt")
    out = tmp_path / "avg.pt"
    out.write_bytes(b"old")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    err = _one_line(capsys, main(["--inputs", str(tmp_path / "checkpoint1.pt"), str(tmp_path / "checkpoint2.pt"),
                                  "--output", str(out)]), "hat-average-checkpoints")
    assert "no space" in err and out.read_bytes() == b"old" and _temps(tmp_path) == []


def test_copy_checkpoint_fsyncs_before_replace(tmp_path, monkeypatch):
    from hat.checkpoints import save_checkpoint
    from hat.train import checkpoint as ck
    src = tmp_path / "checkpoint1.pt"
    save_checkpoint({"update": 1}, src)
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", Path(b).name)), real_replace(a, b))[1])
    ck.copy_checkpoint(src, tmp_path / "checkpoint_last.pt")
    assert events.index("fsync") < events.index(("replace", "checkpoint_last.pt"))
    assert (tmp_path / "checkpoint_last.pt").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("content", [b"", b"\x80\x02}q\x00.", b"PK\x03\x04garbage"], ids=["empty", "trunc", "zip"])
def test_corrupt_checkpoint_last_falls_back_to_newest_good(tmp_path, content, capsys):
    from hat.checkpoints import save_checkpoint
    from hat.train import checkpoint as ck
    save_checkpoint({"update": 10, "epoch": 1}, tmp_path / "checkpoint1.pt")
    save_checkpoint({"update": 25, "epoch": 2}, tmp_path / "checkpoint_2_25.pt")
    save_checkpoint({"update": 20, "epoch": 2}, tmp_path / "checkpoint2.pt")
    (tmp_path / "checkpoint_last.pt").write_bytes(content)
    said = []
    path, state = ck.load_resume_checkpoint(tmp_path, warn=said.append)
    assert path.name == "checkpoint_2_25.pt" and state["update"] == 25
    assert len(said) == 1 and "checkpoint_last.pt" in said[0] and "checkpoint_2_25.pt" in said[0]
    (tmp_path / "checkpoint_2_25.pt").write_bytes(b"")
    (tmp_path / "checkpoint2.pt").write_bytes(b"")
    (tmp_path / "checkpoint1.pt").write_bytes(b"")
    with pytest.raises(HatError, match="no other readable checkpoint"):
        ck.load_resume_checkpoint(tmp_path)


def test_empty_checkpoint_message_is_not_empty(tmp_path):
    from hat.checkpoints import load_checkpoint
    (tmp_path / "e.pt").write_bytes(b"")
    with pytest.raises(HatError, match=r"EOFError: empty or truncated file"):
        load_checkpoint(tmp_path / "e.pt")


def test_checkpoint_weights_that_do_not_fit(tmp_path, fairseq_fixture):
    from hat.checkpoints import load_model
    tmp_ck = tmp_path / "good.pt"
    # A hat checkpoint from the fixture model's metadata but with a wrong tensor shape.
    from hat.nn import ModelConfig, SuperTransformer
    from hat.config import to_dict
    from hat.space import load_space
    space = load_space("multi30k_tiny")
    mcfg = ModelConfig(src_vocab_size=40, tgt_vocab_size=40)
    sd = SuperTransformer(space, mcfg).state_dict()
    name = next(iter(sd))
    sd[name] = torch.zeros(3, 3)
    torch.save({"model": sd, "space": space.to_dict(), "model_config": to_dict(mcfg), "subnet": None}, tmp_ck)
    with pytest.raises(HatError, match="weights do not fit"):
        load_model(tmp_ck)


@pytest.mark.parametrize("payload", [{"format": "hat-latency-predictor"}, {"format": None}, [1, 2, 3]],
                         ids=["missing-keys", "bad-format", "list"])
def test_predictor_with_wrong_structure(tmp_path, payload):
    from hat.predictor import load_predictor
    from hat.predictor.predictor import FORMAT, VERSION
    if isinstance(payload, dict) and payload.get("format"):
        payload = {"format": FORMAT, "version": VERSION, "model_kind": "cost_linear", "model": {"w": "x"}}
    torch.save(payload, tmp_path / "p.pt")
    with pytest.raises(HatError, match="p.pt"):
        load_predictor(tmp_path / "p.pt")


@pytest.mark.parametrize("kind", ["truncated", "random"])
def test_corrupt_gz_corpus(tmp_path, capsys, kind):
    from hat.cli.preprocess import main
    data = gzip.compress(("Ein Haus.\n" * 2000).encode())
    bad = data[: len(data) // 2] if kind == "truncated" else b"\x1f\x8b\x08\x00" + os.urandom(200)
    for lang in ("de", "en"):
        (tmp_path / f"train.{lang}.gz").write_bytes(bad)
    rc = main(["-s", "de", "-t", "en", "--trainpref", str(tmp_path / "train"), "--destdir", str(tmp_path / "out"),
               "-q"])
    err = _one_line(capsys, rc, "hat-preprocess")
    assert "compressed" in err or "gzip" in err.lower()


def test_translate_non_utf8_stdin(fairseq_fixture, tmp_path, capsys, monkeypatch):
    from hat.cli.translate import main
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ein \xff Haus\n"), encoding="utf-8"))
    rc = main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--data", str(fairseq_fixture / "bin"),
               "--input", "-", "--output", str(tmp_path / "o.txt"), "--quiet"])
    err = _one_line(capsys, rc, "hat-translate")
    assert "UTF-8" in err and not (tmp_path / "o.txt").exists()


@pytest.mark.parametrize("args,needle", [
    (["--sacrebleu-tokenize", "nope"], "unknown SacreBLEU tokenizer"),
    (["--empty"], "empty file"),
])
def test_score_bad_options(tmp_path, capsys, args, needle):
    from hat.cli.score import main
    (tmp_path / "h.txt").write_text("ein Haus\n")
    (tmp_path / "e.txt").write_text("")
    hyp = tmp_path / ("e.txt" if args == ["--empty"] else "h.txt")
    extra = [] if args == ["--empty"] else args
    err = _one_line(capsys, main(["--hyp", str(hyp), "--ref", str(hyp)] + extra), "hat-score")
    assert needle in err


def test_broken_pipe_exits_quietly(tmp_path):
    hyp = tmp_path / "h.txt"
    hyp.write_text("ein Haus steht da\n" * 50)
    code = "import sys; from hat.cli.score import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "--hyp", str(hyp), "--ref", str(hyp), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    proc.stdout.close()  # like `| head` exiting before the tool writes
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and err.strip() == ""
    assert rc == 141
