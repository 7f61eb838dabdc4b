"""HAT's own checkpoints and config files: outputs equal HAT's (fixtures written by HAT's code), safe loading."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from hat.errors import HatError
from hat.interop import hat_original
from hat.interop.hat_configs import load_hat_space, load_hat_subnet, subnet_to_hat
from hat.space import SearchSpace, SubnetConfig

FIXTURES = ["hat_supertransformer_tiny", "hat_supertransformer_tiny_qkv32"]
SUBNETS = ["small", "largest", "mixed"]


@pytest.fixture(params=FIXTURES)
def fixture_dir(request, shared_dir):
    return shared_dir / "fixtures" / request.param


def _inputs(z):
    return tuple(torch.from_numpy(z[k]) for k in ("src_tokens", "src_lengths", "prev_output_tokens"))


def _max_diff(a, b) -> float:
    return float((a - torch.from_numpy(b)).abs().max())


@pytest.mark.parametrize("source", ["supernet+yml", "sub_checkpoint"])
@pytest.mark.parametrize("name", SUBNETS)
def test_outputs_equal_hats(fixture_dir, name, source):
    """encoder_out, every super encoder layer, decoder features, logits and lprobs equal HAT's, at every position."""
    if source == "supernet+yml":
        model = hat_original.load(fixture_dir / "checkpoint.pt", fixture_dir / f"sub_{name}.yml")
    else:
        model = hat_original.load(fixture_dir / f"checkpoint_sub_{name}.pt")
    assert not model.training and model.cfg.hat_compat
    z = np.load(fixture_dir / f"sub_{name}.npz")
    src, lengths, prev = _inputs(z)
    with torch.no_grad():
        enc = model.encoder(src, lengths)
        logits, extra = model(src, lengths, prev)
        lprobs = model.get_normalized_probs((logits, extra), log_probs=True)
    assert _max_diff(enc.states[-1], z["encoder_out"]) < 1e-5
    # HAT's encoder_out_all lists every super layer; identity layers repeat the last active output.
    n_super = z["encoder_out_all"].shape[0]
    states = enc.states + [enc.states[-1]] * (n_super - len(enc.states))
    assert _max_diff(torch.stack(states), z["encoder_out_all"]) < 1e-5
    assert _max_diff(extra["inner_states"][-1].transpose(0, 1), z["decoder_features"]) < 1e-5
    assert _max_diff(logits, z["logits"]) < 1e-5
    assert _max_diff(lprobs, z["lprobs"]) < 1e-5
    assert model.subnet == SubnetConfig.load_yaml(fixture_dir / f"sub_{name}.yml")


def test_sub_checkpoint_subnet_matches_hats_config(fixture_dir):
    """The SubTransformer read from a checkpoint's args is what HAT's get_subtransformer_config returned."""
    for name in SUBNETS:
        ck = hat_original.read_checkpoint(fixture_dir / f"checkpoint_sub_{name}.pt")
        assert hat_original.is_hat_checkpoint(ck) and hat_original.is_subtransformer_checkpoint(ck)
        got = hat_original.subnet_from_args(vars(ck["args"]))
        ref = json.loads((fixture_dir / f"sub_{name}.json").read_text())
        assert got.to_dict() == {**ref["encoder"], **ref["decoder"]}


@pytest.mark.parametrize("semantic", ["hat_compat"])
def test_hat_semantics_are_needed(shared_dir, semantic):
    """Without the hat_compat option the same weights give clearly different numbers (the option is exercised)."""
    d = shared_dir / "fixtures" / FIXTURES[0]
    model = hat_original.load(d / "checkpoint.pt", d / "sub_small.yml")
    plain = type(model)(model.subnet, dataclasses.replace(model.cfg, hat_compat=False), model.qkv_dim).eval()
    plain.load_state_dict(model.state_dict())
    z = np.load(d / "sub_small.npz")
    with torch.no_grad():
        lp = plain.get_normalized_probs(plain(*_inputs(z)))
    assert _max_diff(lp, z["lprobs"]) > 0.1


def test_supernet_space_and_semantics(fixture_dir):
    """A SuperTransformer checkpoint gives hat's SuperTransformer with HAT's space and qkv_dim."""
    sup = hat_original.load_supernet(fixture_dir / "checkpoint.pt")
    ref = load_hat_space(fixture_dir / "space_tiny.yml")
    assert sup.space.qkv_dim == ref.qkv_dim == (32 if "qkv32" in fixture_dir.name else 64)
    for g in ("encoder_embed_dim", "decoder_ffn_embed_dim", "decoder_layer_num", "decoder_arbitrary_ende_attn"):
        assert sorted(getattr(sup.space, g)) == sorted(getattr(ref, g))
    # An extracted SubTransformer equals running the supernet with it active.
    z = np.load(fixture_dir / "sub_small.npz")
    sub = SubnetConfig.load_yaml(fixture_dir / "sub_small.yml")
    sup.set_active_subnet(sub)
    with torch.no_grad():
        a = sup.get_normalized_probs(sup(*_inputs(z)))
    assert _max_diff(a, z["lprobs"]) < 1e-5


def test_supernet_without_subnet_is_an_error(shared_dir):
    d = shared_dir / "fixtures" / FIXTURES[0]
    with pytest.raises(HatError, match="pass subnet="):
        hat_original.load(d / "checkpoint.pt")


def test_onnx_export_matches_hats_lprobs(fixture_dir, tmp_path):
    """Each extracted SubTransformer exported to ONNX reproduces HAT's lprobs (step by step, non-pad positions)."""
    ort = pytest.importorskip("onnxruntime")
    from hat.export.onnx import export_onnx
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    for name in SUBNETS:
        paths = export_onnx(hat_original.load(fixture_dir / f"checkpoint_sub_{name}.pt"), tmp_path / name)
        meta = json.loads(paths.meta.read_text())
        enc = ort.InferenceSession(str(paths.encoder), so, providers=["CPUExecutionProvider"])
        dec = ort.InferenceSession(str(paths.decoder_step), so, providers=["CPUExecutionProvider"])
        z = np.load(fixture_dir / f"sub_{name}.npz")
        enc_in = {i.name for i in enc.get_inputs()}
        feeds = dict(zip(meta["encoder"]["outputs"], enc.run(None, {k: v for k, v in (
            ("src_tokens", z["src_tokens"]), ("src_lengths", z["src_lengths"])) if k in enc_in})))
        for L in meta["decoder_layers"]:
            feeds[L["self_k"]] = feeds[L["self_v"]] = np.zeros((2, L["self_heads"], 0, L["self_head_dim"]),
                                                              np.float32)
        prev = z["prev_output_tokens"]
        dec_in = [i.name for i in dec.get_inputs()]
        vocab = meta["tgt_vocab_size"]
        feeds.update(reorder=np.arange(2, dtype=np.int64), bias=np.zeros(vocab, np.float32),
                     k=np.array([vocab], np.int64))  # every token a candidate: the full log-probs
        for t in range(prev.shape[1]):
            feeds["tokens"] = prev[:, t:t + 1].astype(np.int64)
            feeds["step"] = np.array(t, np.int64)
            res = dict(zip(meta["decoder_step"]["outputs"], dec.run(None, {k: feeds[k] for k in dec_in})))
            lprobs = np.empty((2, vocab), np.float32)
            np.put_along_axis(lprobs, res["cand_ids"], res["cand_lprobs"], 1)
            # Decoding never feeds pads; at pad positions HAT's full pass uses the zero position row.
            real = prev[:, t] != 1
            assert np.abs(lprobs[real] - z["lprobs"][real, t]).max() < 1e-4, (name, t)
            for o, i in meta["decoder_step"]["cache_outputs"].items():
                feeds[i] = res[o]


# ----- safety and error messages -----
class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def _hat_like(args_from, **extra):
    ck = hat_original.read_checkpoint(args_from)
    return {"args": ck["args"], "model": ck["model"], **extra}


@pytest.mark.parametrize("cli", ["hat-translate", "hat-export", "hat-search", "library"])
def test_malicious_pickle_is_refused_and_nothing_runs(shared_dir, hat_data_bin, tmp_path, capsys, cli):
    d = shared_dir / "fixtures" / FIXTURES[0]
    marker = tmp_path / "pwned"
    bad = tmp_path / "checkpoint.pt"
    torch.save(_hat_like(d / "checkpoint_sub_small.pt", extra_state={"train_meters": _Evil(marker)}), bad)
    if cli == "library":
        with pytest.raises(HatError, match="refused to load.*system"):
            hat_original.load(bad)
    else:
        from hat.cli import export, search, translate
        argv = {"hat-translate": (translate.main, ["--checkpoint", str(bad), "--data", str(hat_data_bin)]),
                "hat-export": (export.main, ["--checkpoint", str(bad), "--format", "onnx", "--out",
                                             str(tmp_path / "x")]),
                "hat-search": (search.main, ["--supernet", str(bad), "--device", "cpu", "--latency", "9ms",
                                             "--out", str(tmp_path / "s"), "--data", str(hat_data_bin)])}
        main, args = argv[cli]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "refused to load" in err, err
    assert not marker.exists()


def test_args_state_dict_mismatch_names_key_and_shapes(shared_dir, tmp_path, capsys):
    d = shared_dir / "fixtures" / FIXTURES[0]
    ck = _hat_like(d / "checkpoint_sub_small.pt")
    ck["args"] = argparse.Namespace(**{**vars(ck["args"]), "encoder_ffn_embed_dim": 96})
    bad = tmp_path / "checkpoint.pt"
    torch.save(ck, bad)
    with pytest.raises(HatError) as e:
        hat_original.load(bad)
    msg = str(e.value)
    assert "\n" not in msg and "encoder.layers.0.fc1.weight" in msg and "[128, 64]" in msg and "[96, 64]" in msg
    from hat.cli import export
    assert export.main(["--checkpoint", str(bad), "--format", "onnx", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "encoder.layers.0.fc1.weight" in err[0] and "[96, 64]" in err[0]


# ----- HAT's config files -----
def _hat_config_files(kind):
    # Collection time (parametrize): the same places tests/conftest.py looks for ../shared.
    repo = Path(__file__).resolve().parents[2]
    for root in ([Path(os.environ["HAT_SHARED_DIR"])] if os.environ.get("HAT_SHARED_DIR") else []) + [
            repo.parent / "shared", repo / "shared"]:
        if (root / "data" / "hat_configs").is_dir():
            return sorted((root / "data" / "hat_configs").glob(f"*/{kind}/*.yml"))
    return []


@pytest.mark.parametrize("path", _hat_config_files("supertransformer"), ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_every_hat_space_file_loads(path):
    space = SearchSpace.from_yaml(path)
    assert space.qkv_dim == 512 and space.max_encoder_embed_dim == 640
    assert space.contains(space.largest()) and space.contains(space.smallest())


@pytest.mark.parametrize("path", [p for p in _hat_config_files("subtransformer") if p.name != "common.yml"],
                         ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_every_hat_subtransformer_file_loads(path):
    """Each published SubTransformer loads (with its common.yml: it fits the SuperTransformer) and lies in the
    task's published space; writing it back in HAT's format gives the same genes."""
    sub = load_hat_subnet(path, path.parent / "common.yml")
    assert SubnetConfig.load_yaml(path) == sub
    spaces = list((path.parents[1] / "supertransformer").glob("*.yml"))
    assert any(SearchSpace.from_yaml(s).contains(sub) for s in spaces)
    out = path.parent / "x"  # never written: round trip through text only
    import yaml
    assert SubnetConfig.from_hat(yaml.safe_load(subnet_to_hat(sub)), str(out)) == sub


def test_hat_config_errors(tmp_path):
    from hat.errors import ConfigError
    p = tmp_path / "sub.yml"
    p.write_text("encoder-embed-dim-subtransformer: 512\nencoder-ffn-embed-dims-all-subtransformer: [1]\n")
    with pytest.raises(ConfigError, match="unknown HAT architecture key 'encoder-ffn-embed-dims-all-subtransformer'"):
        SubnetConfig.load_yaml(p)
    p.write_text("encoder-embed-dim-subtransformer: 512\n")
    with pytest.raises(ConfigError, match="missing"):
        SubnetConfig.load_yaml(p)


def test_fairseq_export_refuses_hat_positions_it_cannot_express(shared_dir, tmp_path):
    """fairseq computes positions at the model's own width: a narrower HAT SubTransformer is refused, not
    silently changed; a full-width uniform one is written."""
    from hat.interop.fairseq import save_transformer
    d = shared_dir / "fixtures" / FIXTURES[0]
    with pytest.raises(HatError, match="HAT's positions"):
        save_transformer(hat_original.load(d / "checkpoint_sub_small.pt"), tmp_path / "a.pt")
    sup = hat_original.load_supernet(d / "checkpoint.pt")
    save_transformer(sup.get_active_subnet(sup.space.largest()), tmp_path / "b.pt")
    assert (tmp_path / "b.pt").is_file()
