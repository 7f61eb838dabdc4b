"""Deployment smoke test over a real loopback sshd: translate with an ONNX export on the "device"."""

from __future__ import annotations

import pytest

from hat.errors import HatError
from hat.latency.devices import load_device
from hat.translate import translate_on_device


@pytest.fixture(scope="module")
def export_dir(fairseq_fixture, tmp_path_factory):
    from hat.cli.export import main as export_main
    out = tmp_path_factory.mktemp("dev_export") / "onnx"
    assert export_main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--format", "onnx",
                        "--out", str(out), "--data", str(fairseq_fixture / "bin"), "--no-check"]) == 0
    return out


def test_translate_on_ssh_device_equals_local(sshd, export_dir, fairseq_fixture, tmp_path):
    from hat.runtime import OnnxTranslator
    lines = (fairseq_fixture / "raw" / "valid.de").read_text(encoding="utf-8").splitlines()[:4]
    dev = load_device(sshd.device_yaml(tmp_path / "dev.yaml"))
    res = translate_on_device(dev, export_dir, lines, beam=2)
    assert res.translations == OnnxTranslator(export_dir, beam_size=2, threads=1).translate(lines)
    assert "onnxruntime" in res.runtime_version and res.quantize == "none" and res.seconds > 0
    assert not list((sshd.root / "remote").iterdir()), "the remote folder must be removed"


def test_cli_device_flag_and_device_side_error(sshd, export_dir, fairseq_fixture, tmp_path, capsys):
    from hat.cli.translate import main
    (tmp_path / "in.txt").write_text("Ein Mann .\n", encoding="utf-8")
    yaml_path = sshd.device_yaml(tmp_path / "dev.yaml")
    rc = main(["--onnx", str(export_dir), "--device", str(yaml_path), "--input", str(tmp_path / "in.txt"),
               "--beam", "2", "--output", str(tmp_path / "out.txt"), "--quiet"])
    assert rc == 0 and len((tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()) == 1
    # A device whose python cannot run the script: one error naming the device (hat-translate: one line, exit 2).
    bad_yaml = sshd.device_yaml(tmp_path / "bad.yaml", remote_python="/bin/false")
    with pytest.raises(HatError, match="loopback_ssh"):
        translate_on_device(load_device(bad_yaml), export_dir, ["Ein Mann ."])
    capsys.readouterr()
    rc = main(["--onnx", str(export_dir), "--device", str(bad_yaml), "--input", str(tmp_path / "in.txt")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "loopback_ssh" in err
