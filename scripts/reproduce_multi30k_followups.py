"""Follow-up experiments of the Multi30k reproduction (``scripts/reproduce_multi30k.py --stage ...``), in the same
workdir layout and with the same settings, each a list of jobs over a :class:`reproduce_multi30k.Repro`.

* ``ablation``: more SuperTransformer recipes (``ABLATION``, ``LONGER``), each with the CPU time of the reference
  recipe's SuperTransformer (``--ablation-reference``), ranked with it on the same ranking set ->
  ``benchmarks/results/supernet_ranking_ablation.json``. On a new machine it retrains the reference with its recorded
  update count and takes the from-scratch results from ``--ranking-record``.
* ``ct2`` (training), ``ct2-measure``, ``ct2-report``: the reproduction at deployed latency. The search runs on the
  part of ``multi30k_cpu`` CTranslate2 executes, with a ``cpu_ct2`` latency predictor (``--ct2-profile-samples``
  configs), on HAT's recipe trained with twice the recorded CPU time (chosen before the search on validation-only
  evidence: it ranked better, Kendall tau 0.78 vs 0.73 on validation NLL); the 3 searched models train from scratch
  with every seed, and the recorded models of docs/results.md with seed 0 (their checkpoints are what the runtimes
  deploy; their BLEU over seeds stays the recorded one). ``ct2-measure`` measures every model in every runtime that
  runs it (hat's ONNX runtime and CTranslate2, float32 and int8): HAT-protocol latency and ms/sentence translating
  test_2016_flickr (beam 5, batch 1, 1 thread), interleaved, training paused meanwhile. ``ct2-report`` writes
  ``benchmarks/results/reproduce_multi30k_ct2.json``, the table, both verdicts and the plot.

  The work outlives the machine (``runs/`` does not: a sitting holds ~2.5 h of two cores, the whole ~9): the search
  (``--ct2-search-record``), every finished training (``--ct2-trainings-record``) and every measurement batch
  (``--ct2-deployed-record``) are committed records that a new workdir adopts; only a seed-0 checkpoint is needed
  on the machine that deploys it, so each sitting measures what it trained.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import sys
from pathlib import Path

from hat import compare
from hat import pipeline as steps
from hat.errors import HatError
from hat.io import atomic_write, copy_file
from hat.pipeline import Job
from hat.space import SubnetConfig

# --stage ablation's recipes, fixed before each ran: the sandwich rule at its cheapest (largest + smallest per
# update); then (after its tau 0.16) one random SubTransformer beside the corners.
ABLATION = {"sandwich_min": {"subnet_sampling": "sandwich", "sandwich_random": 0},
            "sandwich_1": {"subnet_sampling": "sandwich", "sandwich_random": 1}}
# ... and the reference recipe with this many times its CPU time, continued from its checkpoint (resume is exact and
# the inverse-sqrt schedule does not depend on the total).
LONGER = (2,)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def add_followup_args(p) -> None:
    add = p.add_argument
    add("--ablation-reference", choices=("hat_random", "sandwich_distill"), default="hat_random",
        help="--stage ablation: the recipe whose SuperTransformer's CPU time the ablation recipes get")
    add("--ranking-record", default=str(RESULTS / "supernet_ranking.json"),
        help="the committed ranking JSON (--stage ablation on a new machine; --stage ct2's update count)")
    add("--ct2-profile-samples", type=int, default=400, help="--stage ct2: SubTransformers in the CT2 dataset")
    add("--recorded", default=str(RESULTS / "reproduce_multi30k.json"),
        help="--stage ct2*: the recorded models (names, subnets, seeds' BLEU) of docs/results.md")
    add("--ct2-search-record", default=str(RESULTS / "reproduce_multi30k_ct2_search.json"),
        help="--stage ct2: the search's found SubTransformers, written once it ran; a workdir without a search adopts "
             "them and skips the SuperTransformer, the profile and the search ('' searches anew)")
    add("--ct2-trainings-record", default=str(RESULTS / "reproduce_multi30k_ct2_trainings.json"),
        help="--stage ct2*: every finished from-scratch training's result, written as they finish; a workdir adopts "
             "those it lacks and does not train them again, except a seed 0 whose model is still to be deployed "
             "(--ct2-deployed-record) ('' keeps no record)")
    add("--ct2-deployed-record", default=str(RESULTS / "reproduce_multi30k_ct2_deployed.json"),
        help="--stage ct2-measure: every sitting's measurement (a batch), kept across machines")
    add("--ct2-results", default=str(RESULTS / "reproduce_multi30k_ct2.json"))
    add("--ct2-plot", default=str(ROOT / "docs" / "img" / "multi30k_ct2_bleu_vs_ms_per_sentence.png"))
    add("--deployed-chunk", type=int, default=100, help="--stage ct2-measure: sentences per interleaved chunk")
    add("--deployed-sentences", type=int, default=0, help="--stage ct2-measure: the first N test sentences (0: all)")


def longer(r, ref: str, factor: int, updates: int) -> dict:
    """The reference recipe trained to ``updates``, continued from its SuperTransformer's checkpoint."""
    out = r.workdir / f"supernet_{ref}_x{factor}" / "checkpoint_last.pt"
    if not out.is_file():
        copy_file(r.workdir / f"supernet_{ref}" / "checkpoint_last.pt", out)
    return r.supernet(f"{ref}_x{factor}", updates, r.methods()[ref])


# ----- ablation -----
def ablation_reference(r) -> tuple[str, int, Path | None]:
    """The reference recipe, its SuperTransformer's update count, and where the ranking set's from-scratch results
    come from: this workdir's train stage (``None``) or ``--ranking-record``."""
    ref = r.args.ablation_reference
    if r.stages.result("ranking"):
        return ref, r.stages.result("calibrate")[ref]["updates"], None
    record = Path(r.args.ranking_record)
    try:
        updates = int(json.loads(record.read_text())[ref]["supernet"]["updates"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HatError(f"{r.workdir} has no ranking set trained (--stage train) and {record} gives no "
                       f"{ref} SuperTransformer ({type(e).__name__}: {e})") from None
    return ref, updates, record


def calibrate_ablation(r, ref: str, ref_updates: int, method: str) -> dict:
    """The update count of ``ABLATION`` recipe ``method`` for the reference SuperTransformer's CPU time: its update
    count x the ratio of CPU seconds per update, both timed here on the same batches."""
    out = r.calibrate({ref: r.methods()[ref], method: ABLATION[method]}, f"calibrate_{method}")
    out[method]["updates"] = r.args.supernet_updates or max(
        1, round(ref_updates * out[ref]["cpu_seconds_per_update"] / out[method]["cpu_seconds_per_update"]))
    out[ref]["updates"] = ref_updates
    return {**out, "reference": ref}


def ablation_trained(r) -> list[str]:
    """The SuperTransformers the ablation trains where the workdir lacks them."""
    ref = r.args.ablation_reference
    return [ref, *ABLATION, *(f"{ref}_x{k}" for k in LONGER)]


def ablation_methods(r) -> list[str]:
    """Every SuperTransformer the ablation ranks (the train stage's are skipped where the workdir lacks them)."""
    return list(dict.fromkeys([*r.methods(), *ablation_trained(r)]))


def ablation_jobs(r) -> list[Job]:
    """Data, the reference SuperTransformer, per ``ABLATION`` recipe its calibration and SuperTransformer, the
    reference trained longer, then the ranking of all of them."""
    ref, ref_updates, record = ablation_reference(r)
    ref_updates = r.args.supernet_updates or ref_updates
    out = [Job("prepare", (), r.prepare), Job(f"supernet_{ref}", ("prepare",), lambda: r.supernet(ref, ref_updates))]
    for m, extra in ABLATION.items():
        out += [Job(f"calibrate_{m}", ("prepare",), lambda m=m: r.stages.stage(
                    f"calibrate_{m}", lambda: calibrate_ablation(r, ref, ref_updates, m))),
                Job(f"supernet_{m}", (f"calibrate_{m}",),
                    lambda m=m, x=extra: r.supernet(m, r.stages.result(f"calibrate_{m}")[m]["updates"], x))]
    out += [Job(f"supernet_{ref}_x{k}", (f"supernet_{ref}",), lambda k=k: longer(r, ref, k, k * ref_updates))
            for k in LONGER]
    out.append(Job("ranking_ablation", tuple(j.name for j in out), lambda: r.stages.stage(
        "ranking_ablation", lambda: r.ranking("supernet_ranking_ablation.json", ablation_methods(r), record))))
    return out


def ablation(r) -> dict:
    """Run (or share) :func:`ablation_jobs`, copy the ranking to ``benchmarks/results`` and print each tau."""
    _, _, record = ablation_reference(r)  # fails before any work when there is nothing to rank against
    ranked = r.stages.result("ranking_ablation")
    if ranked is not None and not set(ablation_trained(r)) <= set(ranked):
        r.stages.marker("ranking_ablation").unlink()  # recipes were added since: rank them all again
    r.runner.run_all(lambda: ablation_jobs(r))
    res = json.loads((r.workdir / "supernet_ranking_ablation.json").read_text())
    atomic_write(Path(r.args.results).parent / "supernet_ranking_ablation.json", json.dumps(res, indent=1))
    recorded = json.loads(record.read_text()) if record else {}
    for m, v in {**{k: v for k, v in recorded.items() if k not in res}, **res}.items():
        print(f"{m}: Kendall tau {v['kendall_tau']:.2f} (BLEU {v['kendall_tau_bleu']:.2f}) over "
              f"{v['n_subnets']} SubTransformers, {v['supernet']['updates']} updates"
              f"{' (recorded)' if m not in res else ''}")
    return res


# ----- the reproduction at deployed latency -----
def recorded(r) -> dict[str, dict]:
    """The models of ``docs/results.md`` by name, with their recorded results (``--recorded``)."""
    return {x["name"]: x for x in json.loads(Path(r.args.recorded).read_text())}


# the recorded uniform models whose seed-0 checkpoints benchmarks/ctranslate2_race.py races (issue 25)
RACE_MODELS = ("Transformer-e2d2", "Transformer-smallest")


def publish_search(r, found: dict) -> None:
    """Write the finished search (each budget's subnet YAML content, the predictor's CV metrics) to
    ``--ct2-search-record``, so that another machine's workdir can adopt it (:func:`adopt_search`)."""
    from hat.config import load_yaml
    from hat.latency.protocol import utc_timestamp
    path = Path(r.args.ct2_search_record)
    subnets = {b: load_yaml(p) for b, p in found["subnets"].items()}
    if path.is_file() and json.loads(path.read_text()).get("subnets") == subnets:
        return
    out = {"command": " ".join([sys.executable, *sys.argv]), "host": platform.node(), "written": utc_timestamp(),
           "budgets_ms": found.get("budgets_ms"), "supernet": found.get("supernet"), "device": found.get("device"),
           "predictor_cv": (r.stages.result("predictor_ct2") or {}).get("report"), "subnets": subnets}
    atomic_write(path, json.dumps(out, indent=1))


def adopt_search(r) -> None:
    """Make ``--ct2-search-record``'s SubTransformers this workdir's ``search_ct2`` stage (a new machine: the
    SuperTransformer, profile and search are not redone)."""
    from hat.config import dump_yaml
    from hat.nn import count_subnet_params
    from hat.search import budget_subnet_filename
    path = Path(r.args.ct2_search_record)
    rec = read_record(str(path), {"subnets": {}})
    out = r.workdir / "search_ct2"
    out.mkdir(parents=True, exist_ok=True)
    for b, meta in rec["subnets"].items():
        cfg = SubnetConfig.from_dict(meta, f"{path}: {b}")  # a malformed record is refused before anything trains
        params = meta.get("params") or int(count_subnet_params(cfg, r.space.qkv_dim))  # the report's table shows it
        dump_yaml({**meta, "params": params}, out / budget_subnet_filename(float(b)))
    r.stages.stage("search_ct2", lambda: {"from_record": str(path), "budgets_ms": rec.get("budgets_ms"), "subnets": {
        b: str(out / budget_subnet_filename(float(b))) for b in rec["subnets"]}})


# what a from-scratch training's record keeps (the checkpoint stays on the machine that trained it)
TRAINING_KEYS = ("name", "seed", "updates", "valid_loss", "valid_nll_loss", "best_valid_loss", "valid_curve", "bleu",
                 "tokenized_bleu", "signature", "loop_share", "cpu_seconds_this_sitting")


def read_record(path: str, empty: dict) -> dict:
    """A committed record's JSON (``empty`` where there is none); a malformed one is one error."""
    if not path or not Path(path).is_file():
        return empty
    try:
        rec = json.loads(Path(path).read_text())
    except ValueError as e:
        raise HatError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(rec, dict) or not all(isinstance(rec.get(k), type(v)) for k, v in empty.items()):
        raise HatError(f"{path}: not a record of this reproduction (expected keys {', '.join(empty)})")
    return rec


def publish_trainings(r) -> None:
    """Write this workdir's finished from-scratch trainings into ``--ct2-trainings-record`` (those adopted from it
    stay as they are), so that a later machine skips them (:func:`adopt_trainings`)."""
    from hat.latency.protocol import utc_timestamp
    path = r.args.ct2_trainings_record
    rec = read_record(path, {"trainings": {}})
    mine = {k: v for k, v in steps.finished_stages(r.workdir, "scratch_*").items() if not v.get("from_record")}
    new = {k: {**{f: v[f] for f in TRAINING_KEYS if f in v}, "host": platform.node(), "written": utc_timestamp()}
           for k, v in mine.items() if {f: v.get(f) for f in TRAINING_KEYS} != {
               f: rec["trainings"].get(k, {}).get(f) for f in TRAINING_KEYS}}
    if path and new:
        atomic_write(Path(path), json.dumps({**rec, "trainings": {**rec["trainings"], **new}}, indent=1))


def deployed_names(r) -> set[str]:
    """The models whose seed-0 checkpoint a batch of ``--ct2-deployed-record`` has measured (a model whose latest
    batch has a row marked ``void``, a measurement found wrong later, is measured again)."""
    state: dict[str, bool] = {}
    for b in read_record(r.args.ct2_deployed_record, {"batches": []})["batches"]:
        void = {d["name"] for d in b["deployed"] if d.get("void")}
        state.update({d["name"]: d["name"] not in void for d in b["deployed"]})
    return {n for n, ok in state.items() if ok}


def adopt_trainings(r) -> None:
    """Make ``--ct2-trainings-record``'s trainings this workdir's finished stages, except a seed 0 of a model not yet
    deployed (its checkpoint is what the runtimes translate with, so this machine trains it)."""
    path, deployed = r.args.ct2_trainings_record, deployed_names(r)
    for stage, res in read_record(path, {"trainings": {}})["trainings"].items():
        if r.stages.result(stage) is None and (res.get("seed") != 0 or res.get("name") in deployed):
            r.stages.stage(stage, lambda res=res: {**res, "from_record": path})


def ct2_jobs(r) -> list[Job]:
    """Data, the SuperTransformer (HAT's recipe, twice the recorded CPU time), the CT2 latency dataset, predictor and
    search (or the committed search, ``--ct2-search-record``, on a new workdir); then the searched models' seeds (they
    decide the verdict at CTranslate2 latency, which needs no other training), then the recorded models' seed 0 (for
    the deployed comparison): the two uniform ones the runtime race trains on (RACE_MODELS) first."""
    if r.stages.result("search_ct2") is None and r.args.ct2_search_record and Path(r.args.ct2_search_record).is_file():
        adopt_search(r)
    adopt_trainings(r)
    publish_trainings(r)
    ref = int(json.loads(Path(r.args.ranking_record).read_text())["hat_random"]["supernet"]["updates"])
    super_ckpt = str(r.workdir / "supernet_hat_random_x2" / "checkpoint_last.pt")
    out = [Job("prepare", (), r.prepare), Job("supernet_hat_random", ("prepare",), lambda: r.supernet("hat_random", ref)),
           Job("supernet_hat_random_x2", ("supernet_hat_random",), lambda: longer(r, "hat_random", 2, 2 * ref)),
           Job("profile_ct2", ("prepare",), lambda: r.profile("cpu_ct2", "_ct2", r.args.ct2_profile_samples)),
           Job("search_ct2", ("supernet_hat_random_x2", "profile_ct2"), lambda: r.search(super_ckpt, "cpu_ct2", "_ct2"))]
    found = r.stages.result("search_ct2") or {"subnets": {}}
    if found["subnets"]:  # what only fed the search is not needed any more (nor redone on an adopted search)
        out = [j for j in out if j.name in ("prepare", "search_ct2")]
        if r.args.ct2_search_record and not found.get("from_record"):
            publish_search(r, found)
    seed0 = {name: Job(f"scratch_{name}_seed0", ("prepare",), lambda n=name, y=r.subnet_yaml(
        name, SubnetConfig.from_dict(rec["subnet"])): r.scratch(n, y, 0)) for name, rec in recorded(r).items()}
    out += [Job(f"scratch_HAT-CT2@{float(b):g}ms_seed{s}", ("search_ct2",),
                lambda n=f"HAT-CT2@{float(b):g}ms", y=Path(p), s=s: r.scratch(n, y, s))
            for s in r.args.seeds for b, p in found["subnets"].items()]
    out += [seed0.pop(n) for n in RACE_MODELS if n in seed0]
    return out + list(seed0.values())


def ct2_models(r) -> dict[str, tuple[str, float | None, Path]]:
    """``{name: (kind, budget_ms, subnet yaml)}``: the CT2-searched models, the recorded searched ones, baselines."""
    rec = {n: ("searched", x["budget_ms"], r.subnet_yaml(n, SubnetConfig.from_dict(x["subnet"])))
           for n, x in recorded(r).items() if x["kind"] == "searched"}
    return {**rec, **r.models("_ct2", "HAT-CT2")}


def protocol_items(models: dict) -> dict[str, tuple]:
    """``{deployment key: (subnet, runtime, quantize)}`` of every model in every runtime that runs it (HAT's
    protocol runs random weights: the architecture alone decides its latency)."""
    from hat.latency.deployed import DEPLOYMENTS, runnable
    out = {}
    for n, (_, _, sub) in models.items():
        cfg = SubnetConfig.load_yaml(sub)
        out.update({f"{n}|{rt}|{q}": (cfg, rt, q) for rt, q in DEPLOYMENTS if runnable(cfg, rt)})
    return out


def seed0_checkpoint(r, name: str) -> str | None:
    """The seed-0 checkpoint of ``name`` where this machine has it (an adopted training has none)."""
    ck = (r.stages.result(f"scratch_{name}_seed0") or {}).get("checkpoint")
    return ck if ck and Path(ck).is_file() else None


def ct2_measure(r) -> dict:
    """One batch, training paused meanwhile: HAT-protocol latency of every model in every runtime that runs it
    (interleaved rounds), and ms/sentence on test_2016_flickr (interleaved chunks; translations in each export
    folder) of the seed-0 checkpoints this machine trained that no batch of ``--ct2-deployed-record`` has measured.
    The batch is appended there: trainings span machines (``runs/`` does not survive one), so each sitting deploys
    what it trained and the report carries earlier batches over by their own protocol latency (:func:`deployed_rows`)."""
    from hat.latency.deployed import export_deployments, protocol_rounds, time_deployments
    from hat.latency.protocol import utc_timestamp
    from hat.score import sacrebleu_corpus
    models, done = ct2_models(r), deployed_names(r)
    ready = {n: ck for n in models if n not in done and (ck := seed0_checkpoint(r, n))}
    deps = [d for n, ck in ready.items() for d in export_deployments(n, ck, r.data, r.workdir / "deploy")]
    items, (src, refs) = protocol_items(models), test_set(r)
    rec = read_record(r.args.ct2_deployed_record, {"batches": []})
    # the batch count keeps a batch that re-measures the same deployments (after rows were voided) apart
    tag = hashlib.sha1(" ".join([*items, "/", *(d.key for d in deps), "/", str(len(rec["batches"]))]).encode()
                       ).hexdigest()[:10]
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    def protocol():
        with r.runner.others_paused() as paused:
            res = protocol_rounds(items, steps.target_vocab_size(r.data), r.space.qkv_dim, r.args.measure_rounds,
                                  r.args.measure_repeats, log=log)
        return {**res, "paused_train_pids": paused}

    def deployed():
        with r.runner.others_paused() as paused:
            timed = time_deployments(deps, src, r.args.deployed_chunk, log=log)
        for d in deps:
            hyps = timed[d.key].pop("hyps")
            atomic_write(Path(d.export_dir) / "test_2016_flickr.hyp", "".join(h + "\n" for h in hyps))
            timed[d.key]["sacrebleu_seed0"] = round(sacrebleu_corpus(hyps, refs)[0], 2)
        return {"timed": timed, "paused_train_pids": paused}
    protocol_res = r.stages.stage(f"ct2_protocol_{tag}", protocol)
    deployed_res = r.stages.stage(f"ct2_deployed_{tag}", deployed) if deps else {"timed": {}}
    batch = {"tag": tag, "command": " ".join([sys.executable, *sys.argv]), "host": platform.node(),
             "written": utc_timestamp(), "versions": versions(), "protocol": protocol_res, "sentences": len(src),
             "beam": 5, "batch_size": 1, "threads": 1, "not_deployed": sorted(set(models) - done - set(ready)),
             "deployed": [{"name": d.name, "runtime": d.runtime, "quantize": d.quantize, "export_dir": d.export_dir,
                           "protocol_ms": protocol_res["latency_ms"][d.key], **deployed_res["timed"][d.key]}
                          for d in deps]}
    if r.args.ct2_deployed_record and tag not in [x.get("tag") for x in rec["batches"]]:
        atomic_write(Path(r.args.ct2_deployed_record), json.dumps({**rec, "batches": [*rec["batches"], batch]},
                                                                  indent=1))
    log(f"measured {len(items)} deployments on HAT's protocol, {len(deps)} on test_2016_flickr; not yet deployable "
        f"here: {', '.join(batch['not_deployed']) or 'none'}")
    return batch


def test_set(r) -> tuple[list[str], list[str]]:
    """test_2016_flickr's raw source and reference lines (the first ``--deployed-sentences``; 0 = all)."""
    from hat.data.textio import read_lines, resolve_text
    test = steps.find_multi30k(r.args.data_dir, r.workdir)["test_2016_flickr"]
    n = r.args.deployed_sentences or None
    return tuple(list(read_lines(resolve_text(test, lang), n)) for lang in ("de", "en"))


def versions() -> dict:
    import ctranslate2
    import onnxruntime
    return {"ctranslate2": ctranslate2.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version()}


def deployed_points(records: list[dict], deployed: list[dict], fp32_only: bool = False) -> list[dict]:
    """Each model at its fastest deployment: ms/sentence, and BLEU = its mean over seeds + that deployment's seed-0
    BLEU change against hat's float32 runtime (int8 may cost BLEU; the shift carries it into the seed mean)."""
    out = []
    for rec in records:
        mine = [d for d in deployed if d["name"] == rec["name"] and (d["quantize"] == "none" or not fp32_only)]
        ref = next((d for d in mine if (d["runtime"], d["quantize"]) == ("onnxruntime", "none")), None)
        if not mine or not rec["bleu"] or ref is None:
            continue
        best = min(mine, key=lambda d: d["ms_per_sentence"])
        out.append({**rec, "latency_ms": best["ms_per_sentence"], "runtime": best["runtime"],
                    "quantize": best["quantize"], "bleu_shift": round(best["sacrebleu_seed0"] - ref["sacrebleu_seed0"], 2),
                    "bleu": [b + best["sacrebleu_seed0"] - ref["sacrebleu_seed0"] for b in rec["bleu"]]})
    return out


def front_lines(points: list[dict]) -> list[str]:
    """Whether the searched front dominates the baselines' (BLEU vs ms/sentence, each model at its fastest runtime):
    per baseline, the searched model as fast or faster with BLEU >= its own, if any."""
    searched = [p for p in points if p["kind"] == "searched"]
    out = []
    for b in sorted((p for p in points if p["kind"] == "baseline"), key=lambda p: p["latency_ms"]):
        bm = statistics.fmean(b["bleu"])
        faster = [s for s in searched if s["latency_ms"] <= b["latency_ms"]]
        win = max(faster, key=lambda s: statistics.fmean(s["bleu"]), default=None)
        where = f"{b['name']} ({b['latency_ms']:.1f} ms/sentence, {b['runtime']} {b['quantize']}, {bm:.2f})"
        if win is None:
            out.append(f"{where}: faster than every searched model (outside the searched front)")
        else:
            wm = statistics.fmean(win["bleu"])
            out.append(f"{where}: {'dominated' if wm >= bm else 'NOT dominated'}; best searched model as fast: "
                       f"{win['name']} ({win['latency_ms']:.1f} ms/sentence, {win['runtime']} {win['quantize']}, "
                       f"{wm:.2f})")
    return out


def deployed_rows(batches: list[dict]) -> list[dict]:
    """Every deployed measurement of every batch (a model's latest), its ms/sentence carried over to the latest
    batch's machine: x (the deployment's protocol latency in the latest batch / in its own batch), so that batches
    from different machines or loads compare; the raw value stays as ``ms_per_sentence_measured``."""
    latest = batches[-1]["protocol"]["latency_ms"]
    rows = {}
    for i, b in enumerate(batches):
        for d in (d for d in b["deployed"] if not d.get("void")):
            key = f"{d['name']}|{d['runtime']}|{d['quantize']}"
            scale = latest[key] / d["protocol_ms"] if key in latest else 1.0
            rows[key] = {k: d[k] for k in ("name", "runtime", "quantize", "protocol_ms", "sacrebleu_seed0")} | {
                "batch": i, "host": b.get("host"), "ms_per_sentence_measured": d["ms_per_sentence"],
                "ms_per_sentence": d["ms_per_sentence"] * scale, "carried_over_by": round(scale, 4)}
    return list(rows.values())


def ct2_records(r, protocol_ms: dict[str, float]) -> list[dict]:
    """The report's records: latency = CTranslate2 float32 HAT-protocol latency (``runtime`` ctranslate2), or hat's
    ONNX runtime's for models CTranslate2 cannot run; BLEU over seeds: trained here (HAT-CT2), else recorded."""
    rec = recorded(r)
    trained = steps.finished_stages(r.workdir, "scratch_*")
    runs = {n: ([(s, trained[f"scratch_{n}_seed{s}"]) for s in r.args.seeds if f"scratch_{n}_seed{s}" in trained]
                if n not in rec else [(s, {"bleu": b, "valid_nll_loss": v}) for s, b, v in
                                      zip(rec[n]["seeds"], rec[n]["bleu"], rec[n]["valid_nll_loss"])])
            for n in ct2_models(r)}
    lat, runtime = {}, {}
    for n in runs:
        runtime[n] = "ctranslate2" if f"{n}|ctranslate2|none" in protocol_ms else "onnxruntime"
        lat[n] = protocol_ms.get(f"{n}|{runtime[n]}|none")
    records = compare.records_from_runs(ct2_models(r), runs, lat, r.updates())
    for x in records:
        x["runtime"] = runtime[x["name"]]
        x["seed0_bleu_here"] = (trained.get(f"scratch_{x['name']}_seed0") or {}).get("bleu")
    return records


def ct2_report(r) -> dict:
    """``benchmarks/results/reproduce_multi30k_ct2.json`` (records + ``deployed``), the table, the verdict at
    CTranslate2 latency (the latest batch's protocol), the front at deployed ms/sentence, and the plot."""
    if r.stages.result("search_ct2") is None:
        raise HatError(f"{r.workdir}: no CT2 search here yet (--stage ct2 runs it or adopts the committed one)")
    batches = read_record(r.args.ct2_deployed_record, {"batches": []})["batches"]
    if not batches:
        raise HatError(f"{r.args.ct2_deployed_record}: nothing measured yet (run --stage ct2-measure first)")
    publish_trainings(r)
    records = ct2_records(r, batches[-1]["protocol"]["latency_ms"])
    ct2, deployed = [x for x in records if x["runtime"] == "ctranslate2"], deployed_rows(batches)
    r.annotate(records, "_ct2")
    points, fp32 = (deployed_points(records, deployed, only) for only in (False, True))
    missing = sorted({x["name"] for x in records} - {d["name"] for d in deployed})
    out = {"records": records, "deployed": deployed, "not_deployed_yet": missing,
           "verdict_ct2_latency": compare.verdict(ct2), "front_deployed": front_lines(points),
           "front_deployed_fp32": front_lines(fp32), "measured": r.args.ct2_deployed_record,
           "trainings": r.args.ct2_trainings_record}
    atomic_write(Path(r.args.ct2_results), json.dumps(out, indent=1))
    print("\n".join(compare.table(records) + ["verdict at CTranslate2 latency:"] + out["verdict_ct2_latency"] +
                    ["front at deployed ms/sentence (each model at its fastest runtime; not deployed yet: "
                     f"{', '.join(missing) or 'none'}):"] + out["front_deployed"]))
    compare.plot_bleu_vs_latency(points, Path(r.args.ct2_plot), xlabel="ms per sentence at its fastest runtime "
                                 "(test_2016_flickr, beam 5, batch 1, 1 thread)", title="Multi30k de-en, deployed")
    return out


def run_followup(args, r) -> int:
    """``--stage ablation``, ``ct2``, ``ct2-measure`` or ``ct2-report`` on the reproduction ``r``."""
    if args.stage.startswith("ct2") and args.updates == "auto":  # the recorded models' update count
        args.updates = int(next(iter(recorded(r).values()))["updates"])
    if args.stage == "ablation":
        ablation(r)
    elif args.stage == "ct2":
        r.runner.run_all(lambda: ct2_jobs(r))
    elif args.stage == "ct2-measure":
        ct2_measure(r)
    else:
        ct2_report(r)
    return 0
