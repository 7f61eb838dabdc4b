"""The shipped predictor registry: entries load, carry provenance and held-out metrics; resolution order."""

import pytest

from hat.predictor import load_predictor
from hat.predictor.registry import (HAT_SOURCE, default_index_path, provenance_of, read_index, register_predictor,
                                    resolve_predictor)
from hat.space import load_space

ENTRIES = read_index()
HAT_EXPECTED = {("rpi4", "wmt14_space0"), ("xeon_e5_2640", "wmt14_space0"), ("titanxp", "wmt14_space0"),
                ("titanxp", "iwslt14_space1")}


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e['device']}-{e['space']}" for e in ENTRIES])
def test_every_registered_entry_loads(entry):
    from hat.latency.devices import list_devices
    p = load_predictor(default_index_path().parent / entry["path"])
    assert (p.device, p.space_name, p.space_fingerprint) == (entry["device"], entry["space"],
                                                             entry["space_fingerprint"])
    p.check_space(load_space(entry["space"]))
    assert entry["device"] in list_devices()
    assert entry["source"] and entry["runtime"]  # provenance is mandatory
    assert entry["metrics_split"] == p.metrics_split and entry["metrics_split"].startswith("cv")
    assert entry["mape"] == pytest.approx(p.heldout_metrics["mape"], abs=1e-5)
    assert all(len(d["sha256"]) == 64 for d in entry["data"])


def test_hat_entries_are_registered_with_attribution():
    hat = {(e["device"], e["space"]) for e in ENTRIES if e["source"] == HAT_SOURCE}
    assert hat == HAT_EXPECTED
    for e in ENTRIES:
        if e["source"] == HAT_SOURCE:
            assert e["runtime"] == "pytorch" and e["mape"] < 0.08


def _fit(space, device, n=40):
    import random
    from hat.latency.records import LatencyRecord
    from hat.predictor import fit_predictor
    rng = random.Random(0)
    recs = []
    for _ in range(n):
        c = space.sample(rng)
        recs.append(LatencyRecord.from_subnet(c, 1.0 + c.encoder_embed_dim / 100, 2.0 + c.decoder_layer_num,
                                              runtime="debug", device=device, host="h"))
    return recs, fit_predictor(recs, device, space)


def test_own_predictor_wins_over_hats(tmp_path, shared_dir):
    from hat.latency.records import read_latency_csv
    space = load_space("wmt14_space0")
    idx = tmp_path / "index.yaml"
    hat_csv = shared_dir / "data" / "hat_latency" / "wmt14ende_cpu_raspberrypi_all.csv"
    hat_recs = read_latency_csv(hat_csv)[:60]
    from hat.predictor import fit_predictor
    hp = fit_predictor(hat_recs, "rpi4", space)
    hp.save(tmp_path / "hat.pt")
    with pytest.raises(Exception, match="needs provenance"):
        provenance_of(hat_recs)
    register_predictor(idx, tmp_path / "hat.pt", hp, [str(hat_csv)], provenance_of(hat_recs, HAT_SOURCE, "pytorch"))
    r = resolve_predictor("rpi4", space, idx)
    assert r.path == (tmp_path / "hat.pt").resolve() and "HAT's published" in r.note
    recs, own = _fit(space, "rpi4")
    own.save(tmp_path / "own.pt")
    register_predictor(idx, tmp_path / "own.pt", own, [str(hat_csv)], provenance_of(recs))
    r = resolve_predictor("rpi4", space, idx)
    assert r.path == (tmp_path / "own.pt").resolve() and r.note == ""
    assert len(read_index(idx)) == 2  # both kept: different sources


def test_profile_then_register_path(tmp_path, capsys):
    """The re-measure-and-register path of latency_predictors/ (issue 14 part 4), on the debug device: hat-profile's
    rows carry their provenance, so `fit --register` needs no --source; the entry records CV metrics."""
    from hat.cli.predictor import main as predictor_main
    from hat.cli.profile import main as profile_main
    from hat.config import load_yaml
    csv = tmp_path / "data" / "multi30k_tiny_debug.csv"
    assert profile_main(["--space", "multi30k_tiny", "--device", "debug", "--samples", "24", "--widen",
                         "--seed", "1", "--out", str(csv)]) == 0
    idx = tmp_path / "index.yaml"
    assert predictor_main(["fit", "--data", str(csv), "--device", "debug", "--space", "multi30k_tiny",
                           "--out", str(tmp_path / "debug.pt"), "--register", "--index", str(idx)]) == 0
    (e,) = load_yaml(idx)["predictors"]
    assert e["runtime"] == "debug" and e["source"].startswith("measured by this project") and e["hosts"]
    assert e["metrics_split"] == "cv5" and e["n_rows"] == 24 and e["data"][0]["file"] == "data/multi30k_tiny_debug.csv"
    assert resolve_predictor("debug", load_space("multi30k_tiny"), idx).path == (tmp_path / "debug.pt").resolve()
