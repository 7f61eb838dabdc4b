import gzip
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
TASKS = {
    "prepare_multi30k.sh": "--destdir data-bin/multi30k_de_en",
    "prepare_wmt14_en_de.sh": "--destdir data-bin/wmt14_en_de --bpe-vocab 32000",
    "prepare_wmt14_en_fr.sh": "--destdir data-bin/wmt14_en_fr --bpe-vocab 40000",
    "prepare_wmt19_en_de.sh": "--destdir data-bin/wmt19_en_de --bpe-vocab 32000",
    "prepare_iwslt14_de_en.sh": "--destdir data-bin/iwslt14_de_en --bpe-vocab 10000",
}

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash not available")


def _run(args, cwd):
    return subprocess.run(["bash", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60)


@needs_bash
@pytest.mark.parametrize("script", sorted(TASKS))
def test_dry_run_prints_preprocess_command(script, tmp_path):
    r = _run([SCRIPTS / script, "--dry-run"], tmp_path)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("hat-preprocess ") and TASKS[script] in last
    assert list(tmp_path.iterdir()) == []  # nothing done


@needs_bash
@pytest.mark.parametrize("script", sorted(TASKS))
def test_unknown_argument_exit_2(script, tmp_path):
    r = _run([SCRIPTS / script, "--bogus"], tmp_path)
    assert r.returncode == 2 and "unknown argument" in r.stderr


@needs_bash
def test_multi30k_options(tmp_path):
    r = _run([SCRIPTS / "prepare_multi30k.sh", "--dry-run", "--download", "--src", "en", "--tgt", "fr", "--",
              "--max-train-lines", "100"], tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert "-m hat.data.multi30k data/raw/multi30k" in lines[0]
    assert "--destdir data-bin/multi30k_en_fr" in lines[-1] and lines[-1].endswith("--max-train-lines 100")
    r = _run([SCRIPTS / "prepare_multi30k.sh", "--data-dir", tmp_path / "nope"], tmp_path)
    assert r.returncode == 2 and "no such directory" in r.stderr


@pytest.fixture(scope="module")
def fc():
    spec = importlib.util.spec_from_file_location("fetch_corpus", SCRIPTS / "fetch_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_concat_filters_like_clean_corpus(fc, tmp_path):
    (tmp_path / "a.en").write_text("one two\n\nx y z w\nok\nkept  here\n")
    with gzip.open(tmp_path / "a.de.gz", "wt") as f:
        f.write("eins zwei\nleer\nx\nok\nbleibt   hier\n")
    assert fc.main(["concat", "--src", "en", "--tgt", "de", "--out", str(tmp_path / "t"), "--max-len", "3",
                    str(tmp_path / "a")]) == 0
    assert (tmp_path / "t.en").read_text() == "one two\nok\nkept here\n"
    assert (tmp_path / "t.de").read_text() == "eins zwei\nok\nbleibt hier\n"
    assert fc.main(["concat", "--src", "en", "--tgt", "de", "--out", str(tmp_path / "u"), "--no-filter",
                    str(tmp_path / "a")]) == 0
    assert (tmp_path / "u.en").read_text().count("\n") == 5


def test_xml2txt_tsv_holdout(fc, tmp_path):
    (tmp_path / "train.tags").write_text(
        "<url>http://x</url>\n<talkid>1</talkid>\n<title>My Talk</title>\nHello World.\n"
        "<description>About &amp; it</description>\n  Second line \n")
    assert fc.main(["xml2txt", str(tmp_path / "train.tags"), str(tmp_path / "o.txt"), "--lowercase"]) == 0
    assert (tmp_path / "o.txt").read_text().splitlines() == ["my talk", "hello world.", "about &amp; it",
                                                             "second line"]
    (tmp_path / "d.xml").write_text('<doc><seg id="1"> A &amp; B </seg>\n<seg id="2">C</seg></doc>\n')
    assert fc.main(["xml2txt", str(tmp_path / "d.xml"), str(tmp_path / "d.txt")]) == 0
    assert (tmp_path / "d.txt").read_text() == "A & B\nC\n"
    with gzip.open(tmp_path / "c.tsv.gz", "wt") as f:
        f.write("Hallo\tHello\nnur eins\n" + "".join(f"de{i}\ten{i}\n" for i in range(4)))
    assert fc.main(["tsv", str(tmp_path / "c.tsv.gz"), str(tmp_path / "c"), "--langs", "de,en"]) == 0
    assert (tmp_path / "c.en").read_text().splitlines()[:2] == ["Hello", "en0"]
    assert fc.main(["holdout", "--src", "de", "--tgt", "en", "--every", "2", str(tmp_path / "c"),
                    str(tmp_path / "tr"), str(tmp_path / "va")]) == 0
    assert (tmp_path / "va.de").read_text().splitlines() == ["Hallo", "de1", "de3"]
    assert (tmp_path / "tr.en").read_text().splitlines() == ["en0", "en2"]


def test_fetch_errors_are_one_line(fc, tmp_path, capsys):
    assert fc.main(["download", "http://127.0.0.1:9/x.tgz", str(tmp_path / "x.tgz")]) == 2
    assert not list(tmp_path.iterdir())
    assert fc.main(["extract", str(tmp_path / "missing.tgz"), str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "cannot download" in err and "no such file" in err
