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


# ----- a hostile or unlucky user (issue 28): each class of failure, one case or more; every refusal is one line,
# exit 2, and its peak memory is measured (the child's maxrss) against 1 GB -----

PEAK_LIMIT_MB = 1024


def _cli(tool: str, *argv, stdin=None, **popen) -> tuple[int, str, str, float]:
    """Run console script ``tool`` as a process; ``(returncode, stdout, stderr, peak RSS MB)`` of that process."""
    import subprocess
    import sys
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")
    exe = str(Path(sys.executable).parent / tool)
    r = subprocess.run([sys.executable, "-c", probe, exe, *map(str, argv)], capture_output=True, text=True,
                       stdin=stdin, timeout=300, **popen)
    *err, peak_kb = r.stderr.rstrip("\n").split("\n")
    return r.returncode, r.stdout, "\n".join(err), int(peak_kb) / 1024


def _refused(result, needle: str) -> None:
    rc, _, err, peak = result
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert "Traceback" not in err and peak < PEAK_LIMIT_MB, (peak, err)


@pytest.fixture(scope="module")
def onnx_export(fairseq_fixture, tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile") / "onnx"
    rc, _, err, _ = _cli("hat-export", "--checkpoint", fairseq_fixture / "checkpoint_best.pt", "--format", "onnx",
                         "--out", d, "--data", fairseq_fixture / "bin")
    assert rc == 0, err
    return d


@pytest.fixture
def lines_de(tmp_path):
    p = tmp_path / "in.de"
    p.write_text("Ein Mann fährt Fahrrad .\nZwei Hunde spielen .\nEine Frau lacht .\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("extra,needle", [
    (["--beam", "100000"], "--beam must be an integer in 1..256"),
    (["--max-len-a", "1e308"], "--max-len-a must be a number in 0..100"),
    (["--max-len-b", "-5"], "--max-len-b must be an integer in 0.."),
    (["--batch-size", "100000", "--beam", "5"], "--batch-size must be an integer in 1..4096"),
    (["--batch-size", "2000", "--beam", "5"], "at most 4,096 decoder rows"),
], ids=["beam", "max-len-a", "max-len-b", "batch", "rows"])
def test_decoding_bounds(onnx_export, lines_de, extra, needle):
    _refused(_cli("hat-translate", "--onnx", onnx_export, "--input", lines_de, *extra), needle)


def test_overlong_line_is_cut_and_the_others_translated(onnx_export, tmp_path):
    p = tmp_path / "long.de"
    p.write_text("Ein Mann .\n" + "Hund " * 100_000 + "\nZwei Frauen .\n", encoding="utf-8")
    rc, out, err, peak = _cli("hat-translate", "--onnx", onnx_export, "--input", p, "--quiet")
    assert rc == 0 and len(out.splitlines()) == 3 and peak < PEAK_LIMIT_MB, err
    assert err.count("warning: line 2:") == 1 and "Traceback" not in err


def test_killed_or_failed_reexport_leaves_the_old_export(onnx_export, fairseq_fixture, lines_de, tmp_path,
                                                         monkeypatch):
    """Re-exporting over an export writes a sibling folder and swaps it in: a failure midway (disk full while the
    decoder graph is written) leaves the old export, which still translates as before."""
    import errno
    import shutil

    from hat.cli import export as export_cli
    from hat.export import onnx as onnx_export_module
    d = tmp_path / "onnx"
    shutil.copytree(onnx_export, d)
    before = _snapshot(d)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(onnx_export_module, "build_step_graph", full)  # fails after the encoder is written
    rc = export_cli.main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--format", "onnx",
                          "--out", str(d), "--data", str(fairseq_fixture / "bin")])
    assert rc == 2 and _snapshot(d) == before
    assert not [p for p in tmp_path.iterdir() if ".hat-tmp-" in p.name]


def test_a_graph_copied_in_from_another_export_is_refused(onnx_export, fairseq_fixture, lines_de, tmp_path):
    import shutil
    d = tmp_path / "onnx"
    shutil.copytree(onnx_export, d)
    other = tmp_path / "other"
    rc, _, err, _ = _cli("hat-export", "--checkpoint", fairseq_fixture / "checkpoint_best.pt", "--format", "onnx",
                         "--out", other, "--quantize", "int8")
    assert rc == 0, err
    shutil.copyfile(other / "encoder.onnx", d / "encoder.onnx")
    _refused(_cli("hat-translate", "--onnx", d, "--input", lines_de), "files of different exports")


@pytest.mark.parametrize("change,needle", [
    (lambda m: m.pop("padding_idx"), "'padding_idx' is None"),
    (lambda m: m.update(padding_idx="x"), "'padding_idx' is 'x'"),
    (lambda m: m.update(eos_idx=99999999), "'eos_idx' 99999999 is outside the vocabulary"),
    (lambda m: m.update(decoder_layers=[]), "'decoder_layers' must describe"),
    (lambda m: m["encoder"].update(file="../other/encoder.onnx"), "not a file of the export directory"),
], ids=["no-padding-idx", "padding-idx-x", "eos-out-of-range", "no-decoder-layers", "graph-outside"])
def test_bad_meta_json_is_one_line(onnx_export, lines_de, tmp_path, change, needle):
    import json
    import shutil
    d = tmp_path / "onnx"
    shutil.copytree(onnx_export, d)
    meta = json.loads((d / "meta.json").read_text())
    meta.pop("files")  # the checks behind the digests (an edited meta.json of an unsealed export)
    change(meta)
    (d / "meta.json").write_text(json.dumps(meta))
    _refused(_cli("hat-translate", "--onnx", d, "--input", lines_de), needle)


def test_input_lines_same_from_file_and_stdin_and_closed_streams(onnx_export, tmp_path):
    p = tmp_path / "cr.de"
    p.write_bytes("Ein Mann .\rZwei Frauen .\r\nEin Hund .\n".encode())
    rc, from_file, err, _ = _cli("hat-translate", "--onnx", onnx_export, "--input", p, "--quiet")
    assert rc == 0, err
    with open(p, "rb") as f:
        rc, from_stdin, err, _ = _cli("hat-translate", "--onnx", onnx_export, "--input", "-", "--quiet", stdin=f)
    assert rc == 0 and from_stdin == from_file and len(from_file.splitlines()) == 2, err
    _refused(_closed(onnx_export, "stdin"), "stdin is closed")
    _refused(_closed(onnx_export, "stdout", p), "stdout is closed")


def _closed(export, stream: str, input_file=None):
    """hat-translate with stdin (``<&-``) or stdout (``>&-``) closed, through a shell."""
    import shlex
    import subprocess
    import sys
    exe = shlex.quote(str(Path(sys.executable).parent / "hat-translate"))
    redirect = "<&-" if stream == "stdin" else ">&-"
    src = "-" if stream == "stdin" else shlex.quote(str(input_file))
    r = subprocess.run(["bash", "-c", f"{exe} --onnx {shlex.quote(str(export))} --input {src} {redirect}"],
                       stdout=subprocess.PIPE if stream == "stdin" else None, stderr=subprocess.PIPE, text=True,
                       timeout=120)
    return r.returncode, "", r.stderr, 0.0


def test_output_streams_by_chunk(onnx_export, tmp_path, monkeypatch, capsys):
    """A long input's translations are written chunk by chunk: a failure in a later chunk keeps the earlier ones."""
    from hat.cli import translate as translate_cli
    from hat.runtime.onnx import OnnxTranslator
    p = tmp_path / "in.de"
    p.write_text("".join(f"Ein Mann {i} .\n" for i in range(7)), encoding="utf-8")
    monkeypatch.setattr(translate_cli, "STREAM_LINES", 3)
    real = OnnxTranslator.translate

    def flaky(self, texts, *a, first_line=1, **k):
        if first_line > 3:
            raise KeyboardInterrupt
        return real(self, texts, *a, first_line=first_line, **k)
    monkeypatch.setattr(OnnxTranslator, "translate", flaky)
    rc = translate_cli.main(["--onnx", str(onnx_export), "--input", str(p), "--output", str(tmp_path / "out.en")])
    assert rc == 130 and len((tmp_path / "out.en").read_text().splitlines()) == 3


def test_no_writes_through_planted_links(onnx_export, fairseq_fixture, tmp_path):
    """Links planted in an output folder are replaced or refused, never written through."""
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    out = tmp_path / "export"
    out.mkdir()
    (out / "dict.de.txt").symlink_to(victim)
    rc, _, err, _ = _cli("hat-export", "--checkpoint", fairseq_fixture / "checkpoint_best.pt", "--format", "fairseq",
                         "--out", out, "--data", fairseq_fixture / "bin")
    assert rc == 0 and victim.read_text() == "keep\n", err
    save = tmp_path / "save"
    save.mkdir()
    (save / "train_log.jsonl").symlink_to(victim)
    (save / "checkpoint_last.pt").write_bytes(b"")  # resume: the log is appended to, not rewritten
    from hat.io import open_append
    with pytest.raises(Exception, match="symbolic link"):
        open_append(save / "train_log.jsonl")
    assert victim.read_text() == "keep\n"


def test_lock_follows_symlink_aliases(tmp_path):
    from hat.io import LockHeld, exclusive_lock
    real = tmp_path / "lat.csv"
    real.write_text("")
    alias = tmp_path / "alias.csv"
    alias.symlink_to(real)
    with exclusive_lock(real):
        with pytest.raises(LockHeld):
            with exclusive_lock(alias):
                pass


@pytest.mark.parametrize("answer,needle", [
    ('{"id": "x", "translation": "a"}', "answered id 'x'"),
    ('{"id": 7, "translation": "a"}', "answered id 7"),
    ('{"id": 0, "translation": {"a": 1}}', "is dict, not text"),
    ('{"id": ["0"], "translation": "a"}', "answered id ['0']"),
    ('{"summary": {"seconds": "abc"}}', "seconds 'abc'"),
], ids=["id-text", "id-out-of-range", "dict-translation", "id-list", "seconds-text"])
def test_device_answers_are_checked(answer, needle):
    from hat.errors import HatError
    from hat.runtime.remote import read_answers
    lines = [answer, '{"id": 0, "translation": "ok"}', '{"summary": {"seconds": 1.0}}']
    with pytest.raises(HatError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("'", "'")):
        read_answers(lines, 1, "device d")


def test_device_profile_result_threads_checked():
    from hat.errors import HatError
    from hat.latency.backends.runner import measurement_from_result
    with pytest.raises(HatError, match="threads"):
        measurement_from_result({"id": "0", "encoder_ms": [1.0], "decoder_ms": [2.0], "threads": 1e30}, 1, "d")


def test_symlink_inside_an_export_is_not_sent_to_a_device(onnx_export, tmp_path):
    import shutil

    from hat.errors import HatError
    from hat.runtime.remote import copy_export
    d = tmp_path / "onnx"
    shutil.copytree(onnx_export, d)
    (d / "secret.txt").symlink_to("/etc/hostname")
    with pytest.raises(HatError, match="symbolic link"):
        copy_export(d, tmp_path / "job")


def _hat_checkpoint_with_args(shared_dir, tmp_path, **args) -> Path:
    import copy

    import torch

    from hat.interop.hat_original import read_checkpoint
    ck = read_checkpoint(shared_dir / "fixtures" / "hat_supertransformer_tiny" / "checkpoint.pt")
    a = copy.copy(ck["args"])
    for k, v in args.items():
        setattr(a, k, v)
    p = tmp_path / "hat.pt"
    torch.save({"args": a, "model": ck["model"]}, p)
    return p


@pytest.mark.parametrize("args,needle", [
    ({"encoder_layers": 100_000_000}, "state dict holds 2 encoder layers"),
    ({"max_source_positions": 20_000_000}, "computed tables of"),
    ({"encoder_embed_dim": "abc"}, "encoder_embed_dim is 'abc', not an integer"),
], ids=["layers-1e8", "positions-2e7", "embed-abc"])
def test_hat_checkpoint_sizes_checked_before_allocating(shared_dir, tmp_path, args, needle):
    p = _hat_checkpoint_with_args(shared_dir, tmp_path, **args)
    _refused(_cli("hat-export", "--checkpoint", p, "--format", "onnx", "--out", tmp_path / "o"), needle)


def test_hat_checkpoint_whose_space_describes_a_huge_model(tmp_path):
    import dataclasses

    import torch

    from hat.checkpoints import save_checkpoint
    from hat.nn import ModelConfig, Transformer
    from hat.space import load_space
    space = load_space("multi30k_tiny")
    cfg = ModelConfig(src_vocab_size=100, tgt_vocab_size=100)
    model = Transformer(space.smallest(), cfg, space.qkv_dim)
    big = dataclasses.replace(space, encoder_ffn_embed_dim=[512, 4_000_000])  # a ~40 GB SuperTransformer
    save_checkpoint({"model": model.state_dict(), "space": big.to_dict(), "model_config": dataclasses.asdict(cfg),
                     "subnet": None}, tmp_path / "big.pt")
    assert torch.load(tmp_path / "big.pt", weights_only=True)
    _refused(_cli("hat-export", "--checkpoint", tmp_path / "big.pt", "--format", "onnx", "--out", tmp_path / "o",
                  "--subnet", Path(__file__).resolve().parents[1] / "configs" / "spaces" / "multi30k_tiny.yaml"),
             "refused before")


@pytest.mark.parametrize("corrupt,needle", [
    (lambda m: m["w"].__setitem__(3, float("nan")), "not finite"),
    (lambda m: m.__setitem__("w", -m["w"]), "cannot rank them"),
    (lambda m: m.__setitem__("w", m["w"][:20]), "do not fit its features"),
], ids=["nan", "negated", "short"])
def test_predictor_artifacts_checked_at_load(tmp_path, corrupt, needle):
    import copy

    import torch
    d = copy.deepcopy(torch.load(GOOD_PRED, weights_only=True))
    corrupt(d["model"])
    torch.save(d, tmp_path / "p.pt")
    _refused(_cli("hat-predictor", "eval", "--predictor", tmp_path / "p.pt", "--data", GOOD_CSV, "--report",
                  tmp_path / "r.json"), needle)


def test_predictor_on_another_space_or_mixed_devices(tmp_path):
    xeon = REPO / "latency_predictors" / "hat_wmt14_space0_xeon_e5_2640.pt"
    _refused(_cli("hat-predictor", "eval", "--predictor", xeon, "--data", GOOD_CSV, "--report", tmp_path / "r.json"),
             "outside the predictor's space 'wmt14_space0'")
    lines = GOOD_CSV.read_text().splitlines()
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join(lines[:40] + [l.replace(",cpu,", ",gpu,") for l in lines[40:80]]) + "\n")
    rc, _, err, _ = _cli("hat-predictor", "fit", "--data", mixed, "--device", "cpu", "--space", "multi30k_tiny",
                         "--out", tmp_path / "p.pt", "--cv", "0")
    assert rc == 0 and "measured on 2 devices (cpu, gpu)" in err, err


def test_refused_pickle_is_one_line(tmp_path):
    import os as _os

    import torch

    class Pwn:
        def __reduce__(self):
            return (_os.system, ("touch PWNED",))
    torch.save({"model": Pwn()}, tmp_path / "pwn.pt")
    for tool, *argv in (("hat-average-checkpoints", "--inputs", tmp_path / "pwn.pt", "--output", tmp_path / "a.pt"),
                        ("hat-predictor", "eval", "--predictor", tmp_path / "pwn.pt", "--data", GOOD_CSV, "--report",
                         tmp_path / "r.json")):
        _refused(_cli(tool, *argv, cwd=tmp_path), "its pickle references posix.system")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("env,needle", [({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not an integer"),
                                        ({"WORLD_SIZE": "2"}, "RANK is not set")], ids=["abc", "no-rank"])
def test_distributed_environment_checked(tmp_path, fairseq_fixture, env, needle):
    full = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    _refused(_cli("hat-train", "--config", "multi30k_de_en", "--data", fairseq_fixture / "bin", "--save-dir",
                  tmp_path / "s", env={**full, **env}), needle)


def test_disk_full_during_a_checkpoint_save_is_one_line(tmp_path, monkeypatch):
    import errno

    import torch

    from hat import io as hat_io
    from hat.errors import cli_main
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(hat_io, "open", lambda *a, **k: Full(real_open(*a, **k)), raising=False)
    (tmp_path / "old.pt").write_bytes(b"old")

    @cli_main("probe")
    def main(argv=None):
        hat_io.save_torch({"w": torch.zeros(10)}, tmp_path / "old.pt")
    assert main([]) == 2 and (tmp_path / "old.pt").read_bytes() == b"old"
