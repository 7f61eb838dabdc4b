import pytest

from hat.cli.preprocess import main
from hat.data.pair import load_split


def test_cli_small_run(fairseq_fixture, tmp_path, capsys):
    raw = fairseq_fixture / "raw"
    rc = main(["--src", "de", "--tgt", "en", "--trainpref", str(raw / "train"), "--validpref", str(raw / "valid"),
               "--destdir", str(tmp_path), "--bpe-vocab", "300", "--max-train-lines", "400", "-q"])
    assert rc == 0
    assert capsys.readouterr().out == ""
    assert len(load_split(tmp_path, "valid", "de", "en")) == 200
    assert (tmp_path / "spm.model").is_file()


@pytest.mark.parametrize("args,needle", [
    (["--trainpref", "{tmp}/missing/train"], "no such file"),
    (["--trainpref", "{raw}/train", "--max-train-lines", "0"], "--max-train-lines"),
    (["--trainpref", "{raw}/train", "--bpe-vocab", "2"], "--bpe-vocab"),
])
def test_cli_bad_input_one_line_exit_2(fairseq_fixture, tmp_path, capsys, args, needle):
    args = [a.format(tmp=tmp_path, raw=fairseq_fixture / "raw") for a in args]
    rc = main(["--src", "de", "--tgt", "en", "--destdir", str(tmp_path / "out"), *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hat-preprocess: error:") and needle in err
