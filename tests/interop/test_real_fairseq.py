"""Interop against REAL fairseq (fairseq-fixed 0.12.3.1), installed in its own venv.

fairseq pins old numpy/hydra and cannot share our venv, so these tests call the fairseq venv's python and
``fairseq-generate`` as subprocesses. ``HAT_FAIRSEQ_PYTHON`` names that venv's python (``.ci/run`` builds
``.ci/fairseq-venv`` and sets it). Unset, the tests skip on a developer machine but FAIL under ``CI=true``: CI must
never pass without having run them.

    python3 -m venv .ci/fairseq-venv
    .ci/fairseq-venv/bin/pip install torch==2.13.0 && .ci/fairseq-venv/bin/pip install fairseq-fixed==0.12.3.1
    HAT_FAIRSEQ_PYTHON=$PWD/.ci/fairseq-venv/bin/python python -m pytest -q tests/interop/test_real_fairseq.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

FAIRSEQ_ENV = "HAT_FAIRSEQ_PYTHON"


@pytest.fixture(scope="session")
def fairseq_python() -> Path:
    """The fairseq venv's python (``$HAT_FAIRSEQ_PYTHON``); skip without it, fail without it under CI."""
    p = os.environ.get(FAIRSEQ_ENV)
    if not p:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {FAIRSEQ_ENV} is not set: the real-fairseq interop tests must run in CI")
        pytest.skip(f"{FAIRSEQ_ENV} not set (path to a venv python with fairseq-fixed==0.12.3.1)")
    if not Path(p).is_file():
        pytest.fail(f"{FAIRSEQ_ENV}={p}: no such file")
    return Path(p)


def _fairseq_env() -> dict:
    # fairseq 0.12 calls torch.load with the default weights_only=True of torch >= 2.6, which rejects its own
    # checkpoints (argparse.Namespace inside); this opt-out is set for the fairseq venv's commands only.
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)  # our checkout must not shadow anything in the fairseq venv
    return env


def _run_fairseq_python(python: Path, code: str, *args: str) -> str:
    r = subprocess.run([str(python), "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                       env=_fairseq_env(), timeout=600)
    assert r.returncode == 0, f"fairseq venv python failed:\n{r.stderr[-4000:]}"
    return r.stdout


def test_fairseq_venv_is_the_pinned_version(fairseq_python):
    out = _run_fairseq_python(fairseq_python, """
        import json, fairseq, torch
        print(json.dumps({"fairseq": fairseq.__version__, "torch": torch.__version__}))""")
    v = json.loads(out.strip().splitlines()[-1])
    assert v["fairseq"].startswith("0.12.3"), v


_LOAD_AND_SCORE = """
    import sys, numpy as np, torch
    from fairseq import checkpoint_utils
    torch.set_num_threads(1)
    ckpt, inputs, out = sys.argv[1:4]
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([ckpt])
    m = models[0].eval()
    z = np.load(inputs)
    with torch.no_grad():
        o = m(torch.from_numpy(z["src_tokens"]), torch.from_numpy(z["src_lengths"]),
              torch.from_numpy(z["prev_output_tokens"]))
        lp = m.get_normalized_probs(o, log_probs=True).numpy()
    np.savez(out, log_probs=lp, src_dict=len(task.source_dictionary), tgt_dict=len(task.target_dictionary))
"""


def _random_inputs(vocab: int, pad: int, path: Path) -> dict:
    g = torch.Generator().manual_seed(3)
    src = torch.randint(4, vocab, (3, 9), generator=g)
    src[1, :3] = pad  # left padding, as fairseq collates sources
    src[:, -1] = 2  # eos
    prev = torch.randint(4, vocab, (3, 6), generator=g)
    prev[:, 0] = 2
    z = {"src_tokens": src.numpy(), "src_lengths": src.ne(pad).sum(1).numpy(), "prev_output_tokens": prev.numpy()}
    np.savez(path, **z)
    return z


def _hat_log_probs(model, z: dict) -> np.ndarray:
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(z["src_tokens"]), torch.from_numpy(z["src_lengths"]),
                           torch.from_numpy(z["prev_output_tokens"]))
        return model.get_normalized_probs(out, log_probs=True).numpy()


@pytest.fixture(scope="module")
def exported_fixture(fairseq_fixture, tmp_path_factory) -> Path:
    """``hat-export --format fairseq`` of the fairseq-trained fixture (a trained model: real hypotheses)."""
    from hat.cli.export import main
    out = tmp_path_factory.mktemp("fs_export")
    assert main(["--checkpoint", str(fairseq_fixture / "checkpoint_best.pt"), "--format", "fairseq", "--out",
                 str(out), "--data", str(fairseq_fixture / "bin")]) == 0
    return out / "checkpoint_best.pt"


@pytest.fixture(scope="module")
def exported_supernet_subnet(fairseq_fixture, tmp_path_factory) -> tuple[Path, object]:
    """``hat-export --format fairseq`` of a uniform SubTransformer of one of OUR SuperTransformers (not fairseq's)."""
    from hat.cli.export import main
    from hat.data import Dictionary
    from hat.nn import ModelConfig, SuperTransformer
    from hat.space import load_space
    from hat.checkpoints import save_checkpoint
    d = tmp_path_factory.mktemp("fs_super")
    space = load_space("multi30k_tiny")
    vocab = len(Dictionary.load(fairseq_fixture / "bin" / "dict.de.txt"))
    cfg = ModelConfig(src_vocab_size=vocab, tgt_vocab_size=vocab, share_all_embeddings=True)
    torch.manual_seed(0)
    model = SuperTransformer(space, cfg)
    save_checkpoint({"model": model.state_dict(), "space": space.to_dict(), "model_config": dataclasses.asdict(cfg),
                     "subnet": None}, d / "supernet.pt")
    subnet = space.largest()  # uniform and qkv == embed: expressible as a plain fairseq transformer
    subnet.save_yaml(d / "subnet.yaml")
    assert main(["--checkpoint", str(d / "supernet.pt"), "--subnet", str(d / "subnet.yaml"), "--format", "fairseq",
                 "--out", str(d / "fs"), "--data", str(fairseq_fixture / "bin")]) == 0
    return d / "fs" / "checkpoint_best.pt", model.get_active_subnet(subnet)


@pytest.mark.parametrize("which", ["fairseq_fixture", "our_supernet_subnet"])
def test_fairseq_loads_hat_export(which, fairseq_python, exported_fixture, exported_supernet_subnet, tmp_path):
    """fairseq's own loader accepts what hat-export writes and computes the same log-probs as our model."""
    from hat.interop.fairseq import load_transformer
    if which == "fairseq_fixture":
        ckpt, ours = exported_fixture, load_transformer(exported_fixture)
    else:
        ckpt, ours = exported_supernet_subnet
    z = _random_inputs(ours.cfg.src_vocab_size, ours.cfg.padding_idx, tmp_path / "in.npz")
    _run_fairseq_python(fairseq_python, _LOAD_AND_SCORE, str(ckpt), str(tmp_path / "in.npz"),
                        str(tmp_path / "out.npz"))
    with np.load(tmp_path / "out.npz") as f:
        theirs, src_dict, tgt_dict = f["log_probs"], int(f["src_dict"]), int(f["tgt_dict"])
    assert (src_dict, tgt_dict) == (ours.cfg.src_vocab_size, ours.cfg.tgt_vocab_size)
    mine = _hat_log_probs(ours, z)
    assert theirs.shape == mine.shape
    assert np.abs(theirs - mine).max() < 1e-4


def test_fairseq_generate_matches_hat_translate(fairseq_python, exported_fixture, fairseq_fixture, tmp_path):
    """fairseq-generate on the exported checkpoint gives hat-translate's hypotheses, all 200 of them, and scores."""
    from hat.cli.translate import main as translate
    from hat.score import parse_fairseq_generate
    data = fairseq_fixture / "bin"
    gen = fairseq_python.parent / "fairseq-generate"
    r = subprocess.run([str(gen), str(data), "--path", str(exported_fixture), "--gen-subset", "valid", "--beam", "4",
                        "--batch-size", "32", "--cpu", "--num-workers", "0"], capture_output=True, text=True,
                       env=_fairseq_env(), timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    theirs = parse_fairseq_generate(r.stdout.splitlines())
    assert translate(["--checkpoint", str(exported_fixture), "--data", str(data), "--subset", "valid", "--beam", "4",
                      "--output", str(tmp_path / "hyp.txt"), "--fairseq-output", str(tmp_path / "gen.txt"),
                      "--quiet"]) == 0
    with open(tmp_path / "gen.txt", encoding="utf-8") as f:
        ours = parse_fairseq_generate(f)
    assert len(theirs["H"]) == len(ours["H"]) == 200
    diff = [i for i in range(200) if theirs["H"][i][1] != ours["H"][i][1]]
    assert not diff, f"{len(diff)}/200 hypotheses differ, first: {diff[:5]}"
    for i in range(200):
        assert ours["H"][i][0] == pytest.approx(theirs["H"][i][0], abs=1e-3)
    assert theirs["T"] == ours["T"]


_READ_DATA = """
    import json, sys
    from fairseq.data import Dictionary, data_utils
    d, split, src, tgt = sys.argv[1:5]
    out = {}
    for lang in (src, tgt):
        dic = Dictionary.load(f"{d}/dict.{lang}.txt")
        ds = data_utils.load_indexed_dataset(f"{d}/{split}.{src}-{tgt}.{lang}", dic, dataset_impl=None)
        assert ds is not None, "fairseq found no dataset"
        out[lang] = {"dict": len(dic), "type": type(ds).__name__, "tokens": [ds[i].tolist() for i in range(len(ds))],
                     "symbols": dic.symbols}
    print(json.dumps(out))
"""


def test_fairseq_reads_hat_preprocess_output(fairseq_python, fairseq_fixture, tmp_path):
    """fairseq's Dictionary and indexed-dataset readers load hat-preprocess output, token for token."""
    from hat.cli.preprocess import main as preprocess
    from hat.data import load_split
    raw = fairseq_fixture / "raw"
    out = tmp_path / "bin"
    assert preprocess(["--src", "de", "--tgt", "en", "--trainpref", str(raw / "train"), "--validpref",
                       str(raw / "valid"), "--destdir", str(out), "--bpe-vocab", "500", "--threads", "1",
                       "-q"]) == 0
    ds = load_split(out, "valid", "de", "en")
    got = json.loads(_run_fairseq_python(fairseq_python, _READ_DATA, str(out), "valid", "de", "en")
                     .strip().splitlines()[-1])
    for lang, ours in (("de", ds.src), ("en", ds.tgt)):
        theirs = got[lang]
        assert theirs["type"] == "MMapIndexedDataset"
        assert theirs["dict"] == len(ds.src_dict if lang == "de" else ds.tgt_dict)
        assert theirs["symbols"] == (ds.src_dict if lang == "de" else ds.tgt_dict).symbols
        assert len(theirs["tokens"]) == len(ours) == 200
        assert all(theirs["tokens"][i] == ours[i].tolist() for i in range(len(ours)))
