"""Every CLI against a corpus of bad inputs: exit 2, exactly one line on stderr, no traceback, nothing changed.

Each console script (setup.cfg) is called in-process through ``main(argv)``; one argument slot at a time gets a bad
file: missing, empty, truncated, random bytes, non-UTF-8 text, a directory instead of a file, a YAML alias bomb, a
malicious pickle (its payload would create ``PWNED``). Kinds that are valid for a slot (an alias bomb is fine text
for a text slot) are left out. Files that existed before the call must keep their bytes, and no file appears.
"""

from __future__ import annotations

import configparser
import os
import pickle
import random
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOOD_CSV = REPO / "latency_predictors" / "data" / "multi30k_tiny_cpu_ort.csv"
GOOD_PRED = REPO / "latency_predictors" / "multi30k_tiny_cpu_ort.pt"


def bomb(key: str) -> str:
    """537-byte-class "billion laughs": 9 levels of 9 aliases under one *known* key, so a loader that expands it
    and formats the value into an error message runs out of memory."""
    levels = [f"&a [{','.join(['lol'] * 9)}]"]
    levels += [f"&{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    return f"{key}: [{', '.join(levels)}, *i]\n"


# A key the slot's config type knows, so the bomb is reached by value validation, not by an unknown-key error.
BOMB_KEY = {"train": "data", "profile --config": "encoder_embed_dim", "profile --device": "name",
            "search --config": "population_size"}


class _Pwn:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _truncated(kind: str) -> bytes:
    if kind == "pt":
        import io

        import torch
        buf = io.BytesIO()
        torch.save({"model": {"w": torch.zeros(64)}, "space": {}}, buf)
        data = buf.getvalue()
        return data[: len(data) // 2]
    if kind == "csv":
        return GOOD_CSV.read_bytes()[:90]
    if kind == "yaml":
        return b"name: x\nruntime: onnx"
    return "Ein Mann läuft.\nZwei Hunde spielen ü".encode()[:-1]  # text: cut inside a UTF-8 character


def make_bad(root: Path, case: str, kind: str, bomb_key: str = "name") -> Path:
    """The bad input ``case`` for a slot of file ``kind`` (yaml, pt, csv, text) under ``root``."""
    p = root / f"bad_{case}.{ 'txt' if kind == 'text' else kind}"
    if case == "missing":
        return p
    if case == "directory":
        p.mkdir()
        return p
    data = {
        "empty": lambda: b"",
        "truncated": lambda: _truncated(kind),
        "random": lambda: random.Random(13).randbytes(4096),
        "non_utf8": lambda: "name: caf\xe9\nruntime: d\xe9bug\n".encode("latin-1"),
        "alias_bomb": lambda: bomb(bomb_key).encode(),
        "pickle": lambda: pickle.dumps(_Pwn(), protocol=2),
    }[case]()
    p.write_bytes(data)
    return p


ALL = ["missing", "empty", "truncated", "random", "non_utf8", "directory", "alias_bomb", "pickle"]
TEXT = ["missing", "empty", "truncated", "random", "non_utf8", "directory", "pickle"]


def _fx(name: str) -> str:
    return f"{{{name}}}"


# (cli module, argv with BAD where the bad file goes, kind of that slot, cases)
SLOTS = [
    ("preprocess", ["-s", "de", "-t", "en", "--trainpref", "BADPREFIX", "--destdir", "{tmp}/out"], "text", TEXT),
    ("train", ["--config", "BAD"], "yaml", ALL),
    ("profile", ["--config", "BAD", "--device", "debug", "--space", "multi30k_tiny"], "yaml", ALL),
    # An empty device YAML is a valid device (name from the file, defaults for the rest).
    ("profile", ["--samples", "2", "--device", "BAD", "--space", "multi30k_tiny", "--out", "{tmp}/lat.csv"], "yaml",
     [c for c in ALL if c != "empty"]),
    ("predictor", ["fit", "--data", "BAD", "--device", "x", "--out", "{tmp}/p.pt"], "csv", ALL),
    ("predictor", ["eval", "--predictor", "BAD", "--data", str(GOOD_CSV), "--report", "{tmp}/r.json"], "pt", ALL),
    ("search", ["--supernet", "BAD", "--device", "debug", "--latency", "100ms", "--out", "{tmp}/s"], "pt", ALL),
    ("search", ["--supernet", "{tmp}/none.pt", "--config", "BAD", "--device", "debug", "--latency", "100ms", "--out",
                "{tmp}/s"], "yaml", ALL),
    ("translate", ["--checkpoint", "BAD", "--data", "{tmp}", "--output", "{tmp}/o.txt"], "pt", ALL),
    ("score", ["--hyp", "BAD", "--ref", "{tmp}/ref.txt"], "text", TEXT),
    ("score", ["--hyp", "{tmp}/ref.txt", "--ref", "BAD"], "text", TEXT),
    ("average_checkpoints", ["--inputs", "BAD", "--output", "{tmp}/avg.pt"], "pt", ALL),
    ("export", ["--checkpoint", "BAD", "--format", "onnx", "--out", "{tmp}/exp"], "pt", ALL),
    ("quickstart", ["--data-dir", "BAD", "--workdir", "{tmp}/qs"], "text", ALL),
]


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def _cases():
    for module, argv, kind, cases in SLOTS:
        slot = argv[argv.index("BAD") - 1] if "BAD" in argv else "--trainpref"
        for case in cases:
            yield pytest.param(module, argv, kind, case, id=f"{module}-{argv[0] if argv[0] in ('fit', 'eval') else ''}"
                               f"{slot}-{kind}-{case}")


def test_every_console_script_is_covered():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scripts = [line.split("=")[1].strip() for line in cfg["options.entry_points"]["console_scripts"].splitlines()
               if "=" in line]
    covered = {f"hat.cli.{m}:main" for m, *_ in SLOTS}
    assert set(scripts) <= covered


def _run(module: str, argv: list, capsys) -> tuple[int, str]:
    import importlib
    main = importlib.import_module(f"hat.cli.{module}").main
    rc = main(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("module,argv,kind,case", list(_cases()))
def test_bad_input_one_line_exit_2(module, argv, kind, case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad_root = tmp_path / "bad"
    bad_root.mkdir()
    (tmp_path / "ref.txt").write_text("ein Haus\n", encoding="utf-8")
    if module == "preprocess":
        bad = make_bad(bad_root, case, kind)
        prefix = bad_root / "corpus"
        for lang in ("de", "en"):
            if case == "missing":
                continue
            target = Path(f"{prefix}.{lang}")
            if bad.is_dir():
                target.mkdir()
            else:
                shutil.copyfile(bad, target)
        argv = [str(prefix) if a == "BADPREFIX" else a for a in argv]
    else:
        slot = argv[argv.index("BAD") - 1]
        key = BOMB_KEY.get(module, BOMB_KEY.get(f"{module} {slot}", "name"))
        bad = make_bad(bad_root, case, kind, key)
        argv = [str(bad) if a == "BAD" else a for a in argv]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    before = _snapshot(tmp_path)
    rc, err = _run(module, argv, capsys)
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and len(lines[0]) < 1000
    assert not (tmp_path / "PWNED").exists()
    after = _snapshot(tmp_path)
    # hat-preprocess records its settings (its resume marker) in a fresh --destdir before reading the corpus.
    after.pop("out/preprocess.json", None)
    assert after == before, "a bad input changed or created files"


@pytest.mark.parametrize("module,argv", [
    ("translate", ["--checkpoint", "{ckpt}", "--data", "{bin}", "--subset", "valid", "--max-sentences", "2",
                   "--output", "{dir}"]),
    ("translate", ["--checkpoint", "{ckpt}", "--data", "{bin}", "--input", "{dir}", "--output", "{tmp}/o.txt"]),
    ("average_checkpoints", ["--inputs", "{ckpt}", "--output", "{dir}"]),
    ("export", ["--checkpoint", "{ckpt}", "--format", "fairseq", "--out", "{file}"]),
    ("predictor", ["fit", "--data", str(GOOD_CSV), "--device", "x", "--space", "multi30k_tiny", "--out", "{dir}"]),
    ("predictor", ["eval", "--predictor", str(GOOD_PRED), "--data", str(GOOD_CSV), "--report", "{dir}"]),
    ("score", ["--hyp", "{dir}", "--ref", "{tmp}/ref.txt"]),
], ids=["translate-output-dir", "translate-input-dir", "average-output-dir", "export-out-file", "fit-out-dir",
        "eval-report-dir", "score-hyp-dir"])
def test_directory_or_file_in_the_wrong_place(module, argv, fairseq_fixture, tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("keep\n")
    (tmp_path / "f").write_text("a file\n")
    (tmp_path / "ref.txt").write_text("ein Haus\n", encoding="utf-8")
    subs = {"{ckpt}": str(fairseq_fixture / "checkpoint_best.pt"), "{bin}": str(fairseq_fixture / "bin"),
            "{dir}": str(tmp_path / "d"), "{file}": str(tmp_path / "f"), "{tmp}": str(tmp_path)}
    for k, v in subs.items():
        argv = [a.replace(k, v) for a in argv]
    before = _snapshot(tmp_path)
    rc, err = _run(module, argv, capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert _snapshot(tmp_path) == before
