"""hat-profile: dataset and single-config modes; bad input is one stderr line and exit 2."""

from __future__ import annotations

import pytest

from hat.cli.profile import main
from hat.latency.records import read_latency_csv

FAST = ["--src-len", "8", "--tgt-len", "5", "--vocab-size", "200", "--warmup", "1", "--repeats", "3"]


def _one_error_line(capsys, rc):
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("hat-profile: error:"), err
    return err


def test_dataset_mode_and_resume(tmp_path, capsys):
    out = tmp_path / "lat.csv"
    assert main(["--space", "multi30k_tiny", "--device", "debug", "--samples", "4", "--out", str(out),
                 "--widen", "--seed", "2"] + FAST) == 0
    first = read_latency_csv(out)
    assert len(first) == 4 and all(r.device == "debug" for r in first)
    assert main(["--space", "multi30k_tiny", "--device", "debug", "--samples", "6", "--out", str(out),
                 "--widen", "--seed", "2", "--resume"] + FAST) == 0
    recs = read_latency_csv(out)
    assert len(recs) == 6 and [r.subnet for r in recs[:4]] == [r.subnet for r in first]
    assert len({r.subnet.key() for r in recs}) == 6
    assert "2 SubTransformers" in capsys.readouterr().out


def test_single_config_ort(tmp_path, capsys, tiny_space):
    p = tmp_path / "subnet.yaml"
    tiny_space.smallest().save_yaml(p, space="multi30k_tiny")
    assert main(["--config", str(p), "--device", "cpu"] + FAST) == 0
    out = capsys.readouterr().out
    for key in ("latency_encoder_ms", "latency_decoder_ms", "latency_total_ms", "params:", "flops:"):
        assert key in out


@pytest.mark.parametrize("case", ["unknown_device", "malformed_yaml", "outside_space", "malformed_device",
                                  "no_space", "samples_without_out"])
def test_bad_input_exit_2(tmp_path, capsys, tiny_space, case):
    sub = tmp_path / "subnet.yaml"
    tiny_space.smallest().save_yaml(sub)
    args = ["--config", str(sub), "--device", "debug", "--space", "multi30k_tiny"]
    if case == "unknown_device":
        args[3] = "no_such_device"
    elif case == "malformed_yaml":
        sub.write_text("subnet: {encoder_embed_dim: [96\n")
    elif case == "outside_space":
        args[5] = "wmt14_space0"
    elif case == "malformed_device":
        (tmp_path / "d.yaml").write_text("name: d\nruntime: onnxruntime\nthreads: many\n")
        args[3] = str(tmp_path / "d.yaml")
    elif case == "no_space":
        args = args[:4]
    elif case == "samples_without_out":
        args = ["--samples", "3", "--device", "debug", "--space", "multi30k_tiny"]
    err = _one_error_line(capsys, main(args))
    expect = {"unknown_device": "no_such_device", "malformed_yaml": "malformed YAML",
              "outside_space": "outside search space", "malformed_device": "threads",
              "no_space": "--space", "samples_without_out": "--out"}[case]
    assert expect in err


def test_sigkill_mid_run_leaves_valid_csv(tmp_path, sigkill_profile):
    """hat-profile killed while measuring: every line in the file is a complete record; --resume finishes."""
    out = tmp_path / "lat.csv"
    sigkill_profile(["--space", "multi30k_tiny", "--device", "cpu_eager", "--samples", "50", "--out", str(out)] + FAST,
                    out, 3, 120)  # header + 2 records
    n = len(read_latency_csv(out))  # a row cut by the kill would be skipped here (with a warning) ...
    assert 2 <= n < 50
    # ... and dropped when the file is reopened; the same seed regenerates the same configs, the first n are skipped.
    assert main(["--space", "multi30k_tiny", "--device", "cpu_eager", "--samples", f"{n + 1}", "--out", str(out),
                 "--resume"] + FAST) == 0
    recs = read_latency_csv(out)
    assert len(recs) == n + 1 and len({r.subnet.key() for r in recs}) == n + 1
    assert [r.device for r in recs[n:]] == ["cpu_eager"]


@pytest.mark.parametrize("extra,expect", [(["--threads", "2", "--timer", "thread_cpu"], "2 intra-op threads"),
                                          (["--device", "gpu", "--timer", "thread_cpu"], "accelerator cuda")])
def test_thread_cpu_refused_one_line(tmp_path, capsys, tiny_space, extra, expect):
    sub = tmp_path / "subnet.yaml"
    tiny_space.smallest().save_yaml(sub)
    args = ["--config", str(sub), "--device", "cpu", "--space", "multi30k_tiny"] + FAST + extra
    err = _one_error_line(capsys, main(args))
    assert "timer thread_cpu is invalid here" in err and expect in err


def test_timer_and_estimator_recorded(tmp_path):
    out = tmp_path / "lat.csv"
    assert main(["--space", "multi30k_tiny", "--device", "cpu_eager", "--samples", "3", "--out", str(out),
                 "--timer", "thread_cpu", "--estimator", "min", "--interleave", "2", "--drift-every", "2"]
                + FAST) == 0
    recs = read_latency_csv(out)
    assert len(recs) == 3 and {(r.timer, r.estimator) for r in recs} == {("thread_cpu", "min")}
