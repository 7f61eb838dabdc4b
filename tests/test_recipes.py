"""The paper-task recipes need GPUs and WMT data; here only their --dry-run is exercised."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hat.space import SubnetConfig

RECIPES = sorted((Path(__file__).resolve().parents[1] / "scripts" / "recipes").glob("*.sh"))
TASKS = [p for p in RECIPES if p.name != "pipeline.sh"]


def test_every_paper_task_has_a_recipe():
    assert {p.stem for p in TASKS} == {"wmt14_en_de", "wmt14_en_fr", "wmt19_en_de", "iwslt14_de_en"}


@pytest.mark.parametrize("script", TASKS, ids=lambda p: p.stem)
def test_recipe_dry_run_prints_every_stage(script, tmp_path):
    out = subprocess.run(["bash", str(script), "--dry-run", "--workdir", str(tmp_path / "w")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for cmd in ("hat-profile", "hat-predictor fit", "hat-search", "hat-translate", "hat-score", "hat-export",
                "torchrun"):
        assert cmd in text, cmd
    assert f"configs/tasks/{script.stem}.yaml" in text
    assert not (tmp_path / "w").exists(), "dry run must not write anything"


def test_recipe_rejects_unknown_flag():
    out = subprocess.run(["bash", str(TASKS[0]), "--bogus"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "unknown argument" in out.stderr


def test_reproduce_multi30k_dry_run():
    script = RECIPES[0].parents[1] / "reproduce_multi30k.sh"
    out = subprocess.run(["bash", str(script), "--dry-run"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for stage in ("train", "measure", "report"):  # latency is measured in its own stage, after training
        assert "reproduce_multi30k.py --workdir runs/repro" in out.stdout and f"--stage {stage}" in out.stdout


SCRIPTS = RECIPES[0].parents[1]


def _load_repro():
    import importlib.util
    if str(SCRIPTS) not in sys.path:  # the follow-up stages live beside the script, as when it runs
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("reproduce_multi30k", SCRIPTS / "reproduce_multi30k.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _repro(tmp_path, *args):
    repro = _load_repro()
    return repro, repro.Repro(repro.build_parser().parse_args(["--workdir", str(tmp_path), *args]))


def _ct2(workdir, *args):
    """A ``--stage ct2`` reproduction whose cross-machine records live beside ``workdir``, not in the repo."""
    return _repro(workdir, "--stage", "ct2", "--ct2-trainings-record", str(Path(f"{workdir}.trainings.json")),
                  "--ct2-deployed-record", str(Path(f"{workdir}.deployed.json")), *args)


def test_reproduce_multi30k_stays_a_short_recipe():
    """Issue 27: the reproduction is a recipe of hat.pipeline steps, not a pipeline of its own."""
    assert len((SCRIPTS / "reproduce_multi30k.py").read_text().splitlines()) <= 400


def test_reproduce_multi30k_update_count_argument():
    import argparse
    repro = _load_repro()
    assert repro.updates_arg("auto") == "auto" and repro.updates_arg("2400") == 2400
    for bad in ("0", "-5", "many"):
        with pytest.raises(argparse.ArgumentTypeError):
            repro.updates_arg(bad)


def test_reproduce_multi30k_from_scratch_runs_with_fewer_updates_are_not_done(tmp_path):
    import json
    _, r = _repro(tmp_path, "--stage", "train", "--updates", "300")
    (tmp_path / ".stages" / "scratch_m_seed0.json").write_text(json.dumps({"updates": 200}))
    assert not r.done("scratch_m_seed0")  # trained with fewer updates: it will be continued
    (tmp_path / ".stages" / "scratch_m_seed0.json").write_text(json.dumps({"updates": 300}))
    assert r.done("scratch_m_seed0")


def test_reproduce_multi30k_job_order(tmp_path):
    """The train stage's jobs in priority order: the search needs both SuperTransformers and the whole ranking set;
    searched models appear once the search has run, their seed 0 before every model's seeds 1 and 2."""
    import json

    from hat.baselines import baselines, ranking_configs
    _, r = _repro(tmp_path, "--stage", "train")
    jobs = r.jobs()
    names = [j.name for j in jobs]
    assert names[:5] == ["prepare", "calibrate", "scratch_Transformer-largest_seed0", "supernet_hat_random",
                         "supernet_sandwich_distill"]
    rank = [f"scratch_{n}_seed0" for n in ranking_configs(r.space, r.args.ranking_random)]
    search = jobs[names.index("search")]
    assert set(search.needs) == set(rank) | {"supernet_hat_random", "supernet_sandwich_distill"}
    assert len(rank) >= 10 and set(names[:names.index("search")]) == set(names[:5]) | set(rank)
    assert all(j.needs == ("updates",) for j in jobs if j.name.startswith("scratch_") and "largest_seed0" not in j.name)
    assert not any("HAT@" in n for n in names)
    sub = r.subnet_yaml("Transformer-smallest", r.space.smallest())
    (tmp_path / ".stages" / "search.json").write_text(json.dumps({"subnets": {"5.5": str(sub)}}))
    names = [j.name for j in r.jobs()]
    after = names[names.index("search") + 1:]
    assert after[0] == "scratch_HAT@5.5ms_seed0" and after.index("scratch_HAT@5.5ms_seed1") > 0
    assert sum(n.endswith("_seed1") for n in after) == sum(n.endswith("_seed2") for n in after) == 7
    assert after[1:4] == ["scratch_HAT@5.5ms_seed1"] + [f"scratch_{n}_seed1" for n in baselines(r.space)][:2]
    # once latency is measured, later seeds of the models that decide the verdict come first: the searched ones and
    # the baselines no slower than the slowest searched one
    lat = {"HAT@5.5ms": 6.0, "Transformer-smallest": 4.0, "Transformer-e2d1": 6.0}
    lat.update({n: 9.0 for n in baselines(r.space) if n not in lat})
    (tmp_path / "latency_measured.json").write_text(json.dumps({"latency_ms": lat}))
    after = [j.name for j in r.jobs()][names.index("search") + 2:]
    first = {"HAT@5.5ms", "Transformer-smallest", "Transformer-e2d1"}
    assert after[:6] == [f"scratch_{n}_seed{s}" for s in (1, 2) for n in r.models() if n in first]
    assert len(after) == 14 and all(n.endswith(("_seed1", "_seed2")) for n in after)


def _workdir_from_record(w, record):
    """A reproduction workdir holding what the recorded report was computed from: the stage results, subnets,
    measured latency and (made up, seeded) test translations."""
    import json
    import random

    (w / ".stages").mkdir(parents=True)
    refs = [f"a dog number {i} runs across the white fence" for i in range(60)]
    subnets = {}
    for r in record:
        y = w / "subnets" / f"{r['name']}.yaml"
        meta = {"params": r["params"], **({"predicted_latency_ms": r["predicted_latency_ms"]}
                                          if r["predicted_latency_ms"] is not None else {})}
        SubnetConfig.from_dict(r["subnet"]).save_yaml(y, space="multi30k_cpu", **meta)
        if r["kind"] == "searched":
            subnets[str(r["budget_ms"])] = str(y)
        for s, b, v in zip(r["seeds"], r["bleu"], r["valid_nll_loss"]):
            d = w / "scratch" / r["name"] / f"seed{s}"
            d.mkdir(parents=True)
            rng = random.Random(f"{r['name']}{s}")
            (d / "test.ref").write_text("".join(x + "\n" for x in refs))
            (d / "test.hyp").write_text("".join(" ".join(t for t in x.split() if rng.random() > 0.3) + "\n"
                                                for x in refs))
            (w / ".stages" / f"scratch_{r['name']}_seed{s}.json").write_text(json.dumps(
                {"name": r["name"], "seed": s, "bleu": b, "valid_nll_loss": v, "updates": r["updates"],
                 "checkpoint": str(d / "checkpoint_best.pt")}))
    (w / ".stages" / "updates.json").write_text(json.dumps({"updates": record[0]["updates"]}))
    (w / ".stages" / "search.json").write_text(json.dumps({"supernet": str(w / "absent.pt"), "subnets": subnets}))
    (w / "latency_measured.json").write_text(json.dumps({"latency_ms": {r["name"]: r["latency_ms"] for r in record}}))


def test_report_on_the_recorded_inputs_gives_the_recorded_records(tmp_path):
    """Issue 27: --stage report on the recorded inputs gives the same JSON (the fields those inputs determine; the
    supernet and the real translations behind the fitness and the bootstrap are not in the repository)."""
    import json
    recorded = json.loads((SCRIPTS.parent / "benchmarks" / "results" / "reproduce_multi30k.json").read_text())
    _workdir_from_record(tmp_path / "w", recorded)
    _, r = _repro(tmp_path / "w", "--stage", "report", "--results", str(tmp_path / "out" / "r.json"),
                  "--plot", str(tmp_path / "out" / "p.png"))
    r.report()
    out = json.loads((tmp_path / "out" / "r.json").read_text())
    assert (tmp_path / "out" / "p.png").stat().st_size > 0
    keys = ("name", "kind", "budget_ms", "latency_ms", "seeds", "bleu", "valid_nll_loss", "params",
            "predicted_latency_ms", "subnet", "updates")
    assert [{k: x[k] for k in keys} for x in out] == [{k: x[k] for k in keys} for x in recorded]
    assert all(x["inherited_valid_loss"] is None for x in out)  # no supernet: unknown, not made up
    assert {p["rival"] for x in out for p in x.get("paired_bootstrap", [])} == \
        {p["rival"] for x in recorded for p in x.get("paired_bootstrap", [])}


def test_reproduce_multi30k_bad_input_is_one_line_exit_2(tmp_path):
    """Bad input is one stderr line and exit 2; a report with nothing trained does not replace a results file."""
    results = tmp_path / "results.json"
    results.write_text("[]")
    env = dict(os.environ, PYTHONPATH=str(RECIPES[0].parents[2]))
    (tmp_path / "w").mkdir()
    for args in (["--workdir", str(tmp_path / "w"), "--stage", "report", "--results", str(results)],
                 ["--workdir", str(tmp_path / "none"), "--stage", "measure"],
                 ["--workdir", str(tmp_path / "w"), "--stage", "train", "--data-dir", str(tmp_path / "none")],
                 # no ranking set trained here, and no ranking record to take it from
                 ["--workdir", str(tmp_path / "w"), "--stage", "ablation", "--ranking-record",
                  str(tmp_path / "none.json")],
                 ["--workdir", str(tmp_path / "w"), "--stage", "ablation", "--ranking-record", str(results)],
                 ["--workdir", str(tmp_path / "w"), "--stage", "ct2-report", "--ct2-deployed-record",
                  str(tmp_path / "none.json")],
                 ["--workdir", str(tmp_path / "w"), "--stage", "ct2-measure", "--recorded", str(tmp_path / "x")]):
        out = subprocess.run([sys.executable, str(SCRIPTS / "reproduce_multi30k.py"), *args], capture_output=True,
                             text=True, timeout=120, env=env)
        assert out.returncode == 2 and out.stderr.count("\n") == 1, (args, out.stderr)
        assert out.stderr.startswith("reproduce_multi30k.py: error: ")
    assert results.read_text() == "[]" and not (tmp_path / "none").exists()
    assert not list((tmp_path / "w").glob("supernet_*")), "the ablation started without its ranking set"


def test_reproduce_multi30k_ablation_recipes_are_valid_train_configs(tmp_path):
    from hat.train.config import load_train_config
    repro, r = _repro(tmp_path, "--stage", "report")
    import reproduce_multi30k_followups as fu
    assert set(fu.ABLATION).isdisjoint(r.methods())  # its own supernet_<name> folders
    for extra in fu.ABLATION.values():
        load_train_config(repro.TASK, [f"{k}={v}" for k, v in extra.items()], space=repro.SPACE)


def test_reproduce_multi30k_ablation_on_a_new_machine_uses_the_ranking_record(tmp_path, monkeypatch):
    """Without the train stage's workdir the ablation retrains the reference SuperTransformer with its recorded
    update count, gives each ablation recipe the same CPU time (updates scaled by the CPU seconds per update both
    measure here) and ranks against the committed from-scratch results."""
    import json
    _, r = _repro(tmp_path, "--stage", "ablation")
    import reproduce_multi30k_followups as fu
    record = SCRIPTS.parent / "benchmarks" / "results" / "supernet_ranking.json"
    ref, updates, rec = fu.ablation_reference(r)
    assert (ref, rec) == ("hat_random", Path(record))
    assert updates == json.loads(record.read_text())["hat_random"]["supernet"]["updates"]
    jobs = fu.ablation_jobs(r)
    names = [j.name for j in jobs]
    assert names == ["prepare", "supernet_hat_random",
                     *[f"{s}_{m}" for m in fu.ABLATION for s in ("calibrate", "supernet")],
                     *[f"supernet_hat_random_x{k}" for k in fu.LONGER], "ranking_ablation"]
    assert set(jobs[-1].needs) == set(names[:-1])
    assert {j.name: j.needs for j in jobs}[f"supernet_hat_random_x{fu.LONGER[0]}"] == ("supernet_hat_random",)
    assert set(fu.ablation_methods(r)) == {*r.methods(), *fu.ablation_trained(r)}

    def calibrate(methods, folder):  # the reference takes 0.5 CPU-s per update here, each ablation recipe 2.0
        assert folder != "calibrate"  # not the train stage's calibration folder
        return {m: {"cpu_seconds_per_update": 0.5 if m == ref else 2.0, "updates": 1} for m in methods}
    monkeypatch.setattr(r, "calibrate", calibrate)
    for m in fu.ABLATION:
        out = fu.calibrate_ablation(r, ref, 5375, m)
        assert out[ref]["updates"] == 5375 and out["reference"] == ref
        assert out[m]["updates"] == 1344  # round(5375 * 0.5 / 2.0)


def test_reproduce_multi30k_ct2_job_order(tmp_path):
    """--stage ct2: data, the 2x-CPU-time HAT SuperTransformer, the CT2 latency dataset and search; the runtime
    searched models' seeds (once the search ran), then the recorded models' seed 0, the runtime race's two uniform
    models first."""
    import json
    _, r = _ct2(tmp_path, "--ct2-search-record", str(tmp_path / "search.json"))
    import reproduce_multi30k_followups as fu
    names = [j.name for j in fu.ct2_jobs(r)]
    recorded = [x["name"] for x in json.loads(Path(r.args.recorded).read_text())]
    race = [n for n in fu.RACE_MODELS if n in recorded]
    assert race == list(fu.RACE_MODELS)
    assert names == ["prepare", "supernet_hat_random", "supernet_hat_random_x2", "profile_ct2", "search_ct2",
                     *[f"scratch_{n}_seed0" for n in race],
                     *[f"scratch_{n}_seed0" for n in recorded if n not in race]]
    sub = r.subnet_yaml("Transformer-smallest", r.space.smallest())
    (tmp_path / ".stages" / "search_ct2.json").write_text(json.dumps({"subnets": {"5.5": str(sub)}}))
    names = [j.name for j in fu.ct2_jobs(r)]
    assert names[:2] == ["prepare", "search_ct2"]  # what only fed the search is not needed any more
    assert names[2:7] == [*[f"scratch_HAT-CT2@5.5ms_seed{s}" for s in (0, 1, 2)],
                          *[f"scratch_{n}_seed0" for n in race]]  # the verdict's trainings first
    assert json.loads((tmp_path / "search.json").read_text())["subnets"]["5.5"]["subnet"] == \
        r.space.smallest().to_dict()  # published for another machine's workdir
    assert set(fu.ct2_models(r)) == {"HAT-CT2@5.5ms", *recorded}


def test_reproduce_multi30k_ct2_adopts_a_committed_search(tmp_path):
    """A new workdir takes the committed search's SubTransformers and skips the SuperTransformer, profile and
    search; a malformed record is refused in one error before anything trains."""
    import json
    from hat.errors import HatError
    import reproduce_multi30k_followups as fu
    cfg = _load_repro().Repro(_load_repro().build_parser().parse_args(
        ["--workdir", str(tmp_path / "a"), "--stage", "ct2"])).space.smallest()
    rec = tmp_path / "search.json"
    rec.write_text(json.dumps({"budgets_ms": [7.5], "subnets": {"7.5": {"subnet": cfg.to_dict(), "valid_loss": 2.0}}}))
    _, r = _ct2(tmp_path / "w", "--ct2-search-record", str(rec))
    names = [j.name for j in fu.ct2_jobs(r)]
    assert names[:2] == ["prepare", "search_ct2"] and "supernet_hat_random" not in names
    assert "scratch_HAT-CT2@7.5ms_seed2" in names
    found = r.stages.result("search_ct2")
    assert found["from_record"] == str(rec)
    assert SubnetConfig.load_yaml(found["subnets"]["7.5"]) == cfg
    rec.write_text(json.dumps({"subnets": {"7.5": {"subnet": {"encoder_layer_num": "many"}}}}))
    _, r = _ct2(tmp_path / "bad", "--ct2-search-record", str(rec))
    with pytest.raises(HatError):
        fu.ct2_jobs(r)
    assert r.stages.result("search_ct2") is None
    _, r = _ct2(tmp_path / "anew", "--ct2-search-record", "")
    assert "supernet_hat_random" in [j.name for j in fu.ct2_jobs(r)]


def test_deployed_front_puts_each_model_at_its_fastest_runtime_with_its_bleu_shift():
    repro = _load_repro()  # noqa: F841 (puts the scripts folder on the path)
    import reproduce_multi30k_followups as fu
    records = [{"name": "S", "kind": "searched", "bleu": [30.0, 31.0]},
               {"name": "B", "kind": "baseline", "bleu": [30.0, 30.0]},
               {"name": "F", "kind": "baseline", "bleu": [20.0]}]
    dep = lambda n, rt, q, ms, bleu: {"name": n, "runtime": rt, "quantize": q, "ms_per_sentence": ms,  # noqa: E731
                                      "sacrebleu_seed0": bleu}
    deployed = [dep("S", "onnxruntime", "none", 20.0, 30.0), dep("S", "onnxruntime", "int8", 12.0, 29.0),
                dep("B", "onnxruntime", "none", 25.0, 30.0), dep("B", "ctranslate2", "none", 14.0, 30.0),
                dep("F", "onnxruntime", "none", 5.0, 20.0)]
    points = {p["name"]: p for p in fu.deployed_points(records, deployed)}
    assert (points["S"]["runtime"], points["S"]["quantize"], points["S"]["bleu"]) == ("onnxruntime", "int8",
                                                                                   [29.0, 30.0])
    assert points["B"]["runtime"] == "ctranslate2" and points["B"]["latency_ms"] == 14.0
    lines = fu.front_lines(list(points.values()))
    assert lines[0].startswith("F (5.0 ms/sentence") and "outside the searched front" in lines[0]
    assert lines[1].startswith("B (14.0 ms/sentence") and "dominated; best searched model as fast: S" in lines[1]
    fp32 = {p["name"]: p for p in fu.deployed_points(records, deployed, fp32_only=True)}
    assert fp32["S"]["latency_ms"] == 20.0 and "NOT dominated" not in fu.front_lines(list(fp32.values()))[1]


def test_reproduce_multi30k_ct2_trainings_outlive_the_machine(tmp_path):
    """Finished trainings go to the trainings record as they finish; a new workdir adopts them and does not train
    them again, except a seed 0 whose model no batch has deployed yet (its checkpoint is what the runtimes run)."""
    import json
    _, r = _ct2(tmp_path / "a", "--ct2-search-record", "", "--updates", "4032")
    import reproduce_multi30k_followups as fu
    sub = r.subnet_yaml("Transformer-smallest", r.space.smallest())
    (tmp_path / "a" / ".stages" / "search_ct2.json").write_text(json.dumps({"subnets": {"5.5": str(sub)}}))
    for seed in (0, 1):
        (tmp_path / "a" / ".stages" / f"scratch_HAT-CT2@5.5ms_seed{seed}.json").write_text(json.dumps(
            {"name": "HAT-CT2@5.5ms", "seed": seed, "updates": r.updates(), "bleu": 30.0 + seed,
             "valid_nll_loss": 2.0, "checkpoint": str(tmp_path / "gone.pt")}))
    fu.ct2_jobs(r)
    rec = json.loads((tmp_path / "a.trainings.json").read_text())["trainings"]
    assert set(rec) == {"scratch_HAT-CT2@5.5ms_seed0", "scratch_HAT-CT2@5.5ms_seed1"}
    assert "checkpoint" not in rec["scratch_HAT-CT2@5.5ms_seed1"] and rec["scratch_HAT-CT2@5.5ms_seed1"]["bleu"] == 31.0
    args = ["--ct2-search-record", "", "--updates", "4032", "--ct2-trainings-record", str(tmp_path / "a.trainings.json")]
    _, b = _ct2(tmp_path / "b", *args)
    (tmp_path / "b" / ".stages").mkdir(parents=True, exist_ok=True)
    (tmp_path / "b" / ".stages" / "search_ct2.json").write_text(json.dumps({"subnets": {"5.5": str(sub)}}))
    fu.ct2_jobs(b)
    assert b.done("scratch_HAT-CT2@5.5ms_seed1") and not b.done("scratch_HAT-CT2@5.5ms_seed0")
    assert b.stages.result("scratch_HAT-CT2@5.5ms_seed1")["from_record"] == str(tmp_path / "a.trainings.json")
    fu.publish_trainings(b)  # adopted ones are not written back as this machine's
    assert json.loads((tmp_path / "a.trainings.json").read_text())["trainings"] == rec
    (tmp_path / "c.deployed.json").write_text(json.dumps({"batches": [{"deployed": [{"name": "HAT-CT2@5.5ms"}]}]}))
    _, c = _ct2(tmp_path / "c", *args)
    (tmp_path / "c" / ".stages").mkdir(parents=True, exist_ok=True)
    (tmp_path / "c" / ".stages" / "search_ct2.json").write_text(json.dumps({"subnets": {"5.5": str(sub)}}))
    fu.ct2_jobs(c)
    assert c.done("scratch_HAT-CT2@5.5ms_seed0")  # deployed already: its training is not needed again
    (tmp_path / "d.deployed.json").write_text(json.dumps({"batches": [{"deployed": [
        {"name": "HAT-CT2@5.5ms"}, {"name": "HAT-CT2@5.5ms", "void": "found wrong later"}]}]}))
    _, e = _ct2(tmp_path / "d", *args)
    (tmp_path / "d" / ".stages").mkdir(parents=True, exist_ok=True)
    (tmp_path / "d" / ".stages" / "search_ct2.json").write_text(json.dumps({"subnets": {"5.5": str(sub)}}))
    fu.ct2_jobs(e)
    assert not e.done("scratch_HAT-CT2@5.5ms_seed0")  # a void row: deployed again, so trained again


def test_ct2_measure_appends_a_new_batch_for_voided_rows_measured_again(tmp_path, monkeypatch):
    """A model whose rows were voided is deployed again from the same checkpoint: the batch that re-measures the
    same deployments is a new batch (its own stages and tag), not the voided one found again."""
    import json

    import hat.latency.deployed as deployed
    _, r = _ct2(tmp_path / "w")
    _load_repro()
    import reproduce_multi30k_followups as fu
    timed = []
    monkeypatch.setattr(fu, "ct2_models", lambda r: {"A": ("searched", 5.0, "a.yaml")})
    monkeypatch.setattr(fu, "protocol_items", lambda models: {"A|ctranslate2|none": None})
    monkeypatch.setattr(fu, "seed0_checkpoint", lambda r, name: "ck.pt")
    monkeypatch.setattr(fu, "test_set", lambda r: (["ein Hund"], ["a dog"]))
    monkeypatch.setattr(fu.steps, "target_vocab_size", lambda data: 8)
    monkeypatch.setattr(deployed, "export_deployments", lambda name, ck, data, out: [
        deployed.Deployment(name, "ctranslate2", "none", str(tmp_path / "exp"))])
    monkeypatch.setattr(deployed, "protocol_rounds", lambda items, *a, **k: {"latency_ms": {"A|ctranslate2|none": 2.0}})
    monkeypatch.setattr(deployed, "time_deployments", lambda deps, src, chunk, log: timed.append(1) or {
        d.key: {"ms_per_sentence": 3.0, "hyps": ["a dog"]} for d in deps})
    (tmp_path / "exp").mkdir()
    first = fu.ct2_measure(r)
    path = Path(r.args.ct2_deployed_record)
    rec = json.loads(path.read_text())
    rec["batches"][0]["deployed"][0]["void"] = "found wrong later"
    path.write_text(json.dumps(rec))
    second = fu.ct2_measure(r)
    assert second["tag"] != first["tag"] and len(timed) == 2
    assert [len(b["deployed"]) for b in json.loads(path.read_text())["batches"]] == [1, 1]
    assert fu.deployed_names(r) == {"A"}


def test_deployed_batches_carry_over_by_their_own_protocol_latency():
    """A batch measured on another machine (or under other load) is scaled by its deployments' protocol latency
    now against then; the latest measurement of a model wins."""
    _load_repro()
    import reproduce_multi30k_followups as fu
    dep = lambda n, ms, proto: {"name": n, "runtime": "ctranslate2", "quantize": "none",  # noqa: E731
                                "ms_per_sentence": ms, "protocol_ms": proto, "sacrebleu_seed0": 30.0}
    old = {"host": "a", "protocol": {"latency_ms": {"A|ctranslate2|none": 10.0}}, "deployed": [dep("A", 20.0, 10.0)]}
    new = {"host": "b", "protocol": {"latency_ms": {"A|ctranslate2|none": 12.0, "B|ctranslate2|none": 5.0}},
           "deployed": [dep("B", 8.0, 5.0)]}
    rows = {d["name"]: d for d in fu.deployed_rows([old, new])}
    assert rows["A"]["ms_per_sentence"] == pytest.approx(24.0) and rows["A"]["ms_per_sentence_measured"] == 20.0
    assert rows["A"]["batch"] == 0 and rows["B"]["ms_per_sentence"] == 8.0 and rows["B"]["carried_over_by"] == 1.0
    again = dict(new, deployed=[dep("A", 30.0, 12.0)])
    assert [d["ms_per_sentence"] for d in fu.deployed_rows([old, new, again]) if d["name"] == "A"] == [30.0]
    void = dict(new, deployed=[{**dep("A", 1.0, 12.0), "void": "found wrong"}])
    assert [d["ms_per_sentence"] for d in fu.deployed_rows([old, new, void]) if d["name"] == "A"] == [24.0]


def test_reproduce_multi30k_ct2_report_from_records(tmp_path):
    """The report needs no checkpoint: adopted trainings, the recorded models' BLEU, the latest batch's protocol
    latency for the verdict, the deployed batches for the front (the models not deployed yet named)."""
    import json
    out, plot = tmp_path / "ct2.json", tmp_path / "ct2.png"
    _, r = _ct2(tmp_path / "w", "--ct2-search-record", "", "--updates", "4032", "--ct2-results", str(out),
                "--ct2-plot", str(plot))
    import reproduce_multi30k_followups as fu
    sub = r.subnet_yaml("Transformer-smallest", r.space.smallest())
    r.stages.stage("search_ct2", lambda: {"subnets": {"5.5": str(sub)}})
    for s in (0, 1, 2):
        r.stages.stage(f"scratch_HAT-CT2@5.5ms_seed{s}", lambda s=s: {
            "name": "HAT-CT2@5.5ms", "seed": s, "updates": 4032, "bleu": 30.0 + s, "valid_nll_loss": 2.0,
            "from_record": "elsewhere"})
    keys = fu.protocol_items(fu.ct2_models(r))
    assert "HAT-CT2@5.5ms|ctranslate2|int8" in keys and "HAT@7.59ms|ctranslate2|none" not in keys
    proto = {k: 5.0 if k.startswith("HAT-CT2") else 9.0 for k in keys}
    dep = lambda n, rt, ms: {"name": n, "runtime": rt, "quantize": "none", "ms_per_sentence": ms,  # noqa: E731
                             "protocol_ms": proto[f"{n}|{rt}|none"], "sacrebleu_seed0": 30.0}
    Path(r.args.ct2_deployed_record).write_text(json.dumps({"batches": [{"protocol": {"latency_ms": proto}, "deployed": [
        dep("HAT-CT2@5.5ms", "onnxruntime", 12.0), dep("HAT-CT2@5.5ms", "ctranslate2", 8.0)]}]}))
    res = fu.ct2_report(r)
    mine = next(x for x in res["records"] if x["name"] == "HAT-CT2@5.5ms")
    assert (mine["runtime"], mine["latency_ms"], mine["bleu"]) == ("ctranslate2", 5.0, [30.0, 31.0, 32.0])
    assert "Transformer-e2d2" in res["not_deployed_yet"] and "HAT-CT2@5.5ms" not in res["not_deployed_yet"]
    assert any(v.startswith("HAT-CT2@5.5ms") for v in res["verdict_ct2_latency"]) and plot.is_file()
    assert json.loads(out.read_text())["deployed"][1]["ms_per_sentence"] == 8.0
