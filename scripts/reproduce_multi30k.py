#!/usr/bin/env python
"""HAT's claim on Multi30k de->en, from scratch and over seeds: at equal measured latency, searched SubTransformers
score higher BLEU than Transformers scaled by layers and by dimensions. A recipe of :mod:`hat.pipeline` steps; every
stage resumes, and processes started with the same command share its jobs. docs/results.md has the results.

* ``train``: data, CPU-time calibration, the update count (Transformer-largest until its validation NLL flattens),
  two SuperTransformers with equal CPU time, the ranking set from scratch, ranking (Kendall tau), latency dataset +
  predictor, search under 3 budgets on the better-ranking SuperTransformer, the searched models and seeds 1, 2 of
  every model; each scored with SacreBLEU on test_2016_flickr (beam 5, fairseq's default length limit).
* ``measure``: HAT-protocol latency of every model (ONNX Runtime, 1 thread), interleaved; training paused meanwhile.
* ``report``: ``benchmarks/results/reproduce_multi30k.json``, table, verdict, diagnostics and the plot.
* ``ablation``, ``ct2``, ``ct2-measure``, ``ct2-report``: follow-up experiments in the same workdir layout
  (``scripts/reproduce_multi30k_followups.py``).

    nohup nice -n 10 python scripts/reproduce_multi30k.py --workdir runs/repro --stage train > runs/repro.log 2>&1 &
    python scripts/reproduce_multi30k.py --workdir runs/repro --stage measure     # pauses training meanwhile
    python scripts/reproduce_multi30k.py --workdir runs/repro --stage report
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from hat import compare
from hat import pipeline as steps
from hat.baselines import baselines, ranking_configs, save_subnet
from hat.errors import HatError, cli_main
from hat.io import atomic_write
from hat.pipeline import Job
from hat.space import SubnetConfig, load_space
from hat.train.curves import flattening_note, train_until_flat, updates_per_epoch, valid_rows

SPACE, TASK = "multi30k_cpu", "multi30k_de_en"
ROOT = Path(__file__).resolve().parent.parent


class Repro:
    """The reproduction's jobs over one workdir (``args``: :func:`build_parser`'s)."""

    def __init__(self, args):
        self.args = args
        self.workdir = Path(args.workdir).resolve()
        if args.stage not in ("train", "ablation", "ct2") and not self.workdir.is_dir():
            raise HatError(f"{self.workdir}: no such workdir (--stage train creates it)")
        self.stages = steps.Stages(self.workdir, log=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
        self.runner = steps.JobRunner(self.stages, self.done, "reproduce_multi30k")
        self.space = load_space(SPACE)
        self.data = self.workdir / "data-bin"

    # ----- steps with the reproduction's settings -----
    def train(self, save_dir: Path, max_update: int, seed: int, overrides=(), subnet=None) -> None:
        a = self.args
        res = steps.train_model(TASK, save_dir, [f"max_tokens={a.max_tokens}", f"save_interval_updates={a.save_every}",
                                                 "keep_last=1", "keep_last_epochs=1", *overrides],
                                space=SPACE, subnet=None if subnet is None else str(subnet), data=str(self.data),
                                max_update=max_update, seed=seed, threads=a.threads)
        print(json.dumps(dataclasses.asdict(res)), flush=True)

    def subnet_yaml(self, name: str, cfg: SubnetConfig) -> Path:
        return save_subnet(cfg, self.workdir / "subnets" / f"{name}.yaml", self.space)

    def scratch(self, name: str, subnet_yaml: Path, seed: int) -> dict:
        """Train ``subnet_yaml`` from scratch with ``seed``, then BLEU; a finished one with fewer updates than now
        in force is continued (the schedule does not depend on the total) and rescored."""
        out, stage, updates = self.workdir / "scratch" / name / f"seed{seed}", f"scratch_{name}_seed{seed}", \
            self.updates()
        finished = self.stages.result(stage)
        if finished is not None and finished.get("updates", 0) < updates:
            self.stages.marker(stage).unlink()

        def run():
            t0 = time.process_time()
            self.train(out, updates, seed, subnet=subnet_yaml)
            valid = valid_rows(out / "train_log.jsonl")
            bleu = steps.score_bleu(out / "checkpoint_best.pt", self.data, out, 5, self.args.threads,
                                    self.args.test_sentences or 0)
            for ck in out.glob("checkpoint*.pt"):  # keep the scored model and the one to extend (disk)
                if ck.name not in ("checkpoint_best.pt", "checkpoint_last.pt"):
                    ck.unlink()
            return {"name": name, "seed": seed, "subnet": str(subnet_yaml), "updates": updates,
                    "checkpoint": str(out / "checkpoint_best.pt"), "valid_loss": valid[-1]["loss"],
                    "valid_nll_loss": valid[-1]["nll_loss"], "best_valid_loss": min(r["loss"] for r in valid),
                    "valid_curve": [(r["update"], r["nll_loss"]) for r in valid], "bleu": bleu["sacrebleu"],
                    "tokenized_bleu": bleu["tokenized_bleu"], "signature": bleu["signature"],
                    "loop_share": bleu["loop_share"], "cpu_seconds_this_sitting": round(time.process_time() - t0, 1)}
        return self.stages.stage(stage, run)

    def prepare(self) -> dict:
        return self.stages.stage("prepare", lambda: steps.prepare_multi30k(self.data, self.args.bpe_vocab,
                                                                            self.args.data_dir, self.workdir))

    def methods(self) -> dict[str, dict]:
        sandwich = {"subnet_sampling": "sandwich", "sandwich_random": self.args.sandwich_random,
                    "inplace_distill": self.args.inplace_distill}
        return {"hat_random": {}, "sandwich_distill": sandwich}

    def calibrate(self, methods: dict | None = None, folder: str = "calibrate") -> dict:
        """CPU seconds per update of the SuperTransformer recipes on the same batches; each gets
        ``--supernet-cpu-minutes`` of CPU time (or ``--supernet-updates``)."""
        import shutil

        import torch
        from hat.train.calibrate import updates_for_cpu_time
        from hat.train.config import load_train_config
        a, cfgs = self.args, {}
        torch.set_num_threads(a.threads)
        for method, extra in (self.methods() if methods is None else methods).items():
            shutil.rmtree(self.workdir / folder / method, ignore_errors=True)
            cfgs[method] = load_train_config(TASK, [f"max_tokens={a.max_tokens}", f"threads={a.threads}",
                                                    f"data={self.data}", f"space={SPACE}",
                                                    f"save_dir={self.workdir / folder / method}",
                                                    *[f"{k}={v}" for k, v in extra.items()]])
        out = updates_for_cpu_time(cfgs, a.supernet_cpu_minutes, a.calibrate_updates)
        for m in out.values():
            m["updates"] = a.supernet_updates or m["updates"]
        return {**out, "supernet_cpu_minutes": a.supernet_cpu_minutes}

    def supernet(self, method: str, updates: int, extra: dict | None = None) -> dict:
        out = self.workdir / f"supernet_{method}"
        overrides = [f"{k}={v}" for k, v in (self.methods()[method] if extra is None else extra).items()]

        def run():
            t0 = time.process_time()
            self.train(out, updates, 1, overrides)
            return {"checkpoint": str(out / "checkpoint_last.pt"), "updates": updates,
                    "cpu_seconds_this_sitting": round(time.process_time() - t0, 1)}
        return self.stages.stage(f"supernet_{method}", run)

    def ranking(self, out_name: str = "supernet_ranking.json", methods=None, scratch_from=None) -> dict:
        out = self.workdir / out_name
        # the ranking set only: a searched model (chosen by one supernet's own loss) would bias its tau
        cmd = [sys.executable, str(ROOT / "benchmarks" / "supernet_ranking.py"), "--workdir", str(self.workdir),
               "--out", str(out), "--threads", str(self.args.threads), "--names",
               *ranking_configs(self.space, self.args.ranking_random)]
        subprocess.run(cmd + (["--methods", *methods] if methods else []) +
                       (["--scratch-from", str(scratch_from)] if scratch_from else []), check=True)
        return json.loads(out.read_text())

    def profile(self, device: str = "cpu", tag: str = "", samples: int | None = None) -> dict:
        """The latency dataset on ``device`` (stage ``profile<tag>``), the other processes paused meanwhile."""
        def run():
            with self.runner.others_paused() as paused:
                res = steps.profile_latency(SPACE, device, steps.target_vocab_size(self.data),
                                            samples or self.args.profile_samples, self.args.profile_repeats,
                                            self.workdir / f"latency_{device}.csv")
            return {**res, "paused_train_pids": paused}
        return self.stages.stage(f"profile{tag}", run)

    def search(self, supernet_ckpt: str, device: str = "cpu", tag: str = "") -> dict:
        """Profile, fit, budgets (each once) and the search on ``device`` (stage and folder ``search<tag>``)."""
        self.profile(device, tag)
        csv, pred = self.workdir / f"latency_{device}.csv", self.workdir / f"predictor_{device}.pt"
        self.stages.stage(f"predictor{tag}", lambda: steps.fit_latency_predictor(csv, device, SPACE, pred))
        b = self.stages.stage(f"budgets{tag}", lambda: steps.latency_budgets(csv))["budgets_ms"]
        a = self.args
        settings = steps.search_settings(a.search_population, a.search_iterations, a.search_valid_subset)
        return self.stages.stage(f"search{tag}", lambda: {"supernet": supernet_ckpt, "device": device, "budgets_ms": b,
                                                         **steps.search_subnets(
            supernet_ckpt, device, pred, self.data, self.workdir / f"search{tag}", settings,
            self.workdir / f"search_settings{tag}.yaml", b)})

    # ----- the train stage's jobs -----
    def choose_updates(self, big_yaml: Path) -> dict:
        """The update count of every from-scratch training: where Transformer-largest's (seed 0) validation NLL
        flattens (:func:`hat.train.curves.train_until_flat`)."""
        a, log = self.args, self.workdir / "scratch" / "Transformer-largest" / "seed0" / "train_log.jsonl"
        return train_until_flat(log, lambda n: self.train(log.parent, n, 0, subnet=big_yaml), a.updates_step,
                                a.updates_max, a.flat_gain, log=lambda m: print(m, flush=True))

    def done(self, name: str) -> bool:
        """Whether job ``name`` has finished (a from-scratch training: with the update count now in force)."""
        result = self.stages.result(name)
        if result is None or not name.startswith("scratch_"):
            return result is not None
        return self.updates() is not None and result.get("updates", 0) >= self.updates()

    def updates(self):
        """The update count of every from-scratch training (``None`` while ``--updates auto`` has not chosen it)."""
        chosen = self.stages.result("updates") if self.args.updates == "auto" else {"updates": self.args.updates}
        return chosen["updates"] if chosen else None

    def jobs(self) -> list[Job]:
        """The train stage's jobs in priority order: data, calibration, the update count, both SuperTransformers,
        the ranking set (seed 0), ranking + search, the searched models (seed 0), then seeds 1, 2 of every model
        (the verdict's models first, see :meth:`verdict_models`)."""
        rank = ranking_configs(self.space, self.args.ranking_random)
        big_yaml = self.subnet_yaml("Transformer-largest", rank["Transformer-largest"])
        counted = ("updates",) if self.args.updates == "auto" else ("prepare",)

        def largest():
            if self.args.updates == "auto":
                self.stages.stage("updates", lambda: self.choose_updates(big_yaml))
            big = self.scratch("Transformer-largest", big_yaml, 0)
            log = self.workdir / "scratch" / "Transformer-largest" / "seed0" / "train_log.jsonl"
            print(flattening_note(big["valid_curve"], self.args.flat_gain, updates_per_epoch(log)), flush=True)

        def ranking_and_search():
            ranking = self.stages.stage("ranking", self.ranking)
            method = self.args.search_supernet
            if method == "auto":  # higher tau on validation NLL, then on BLEU, then the first method
                method = max(self.methods(), key=lambda m: (ranking[m]["kendall_tau"], ranking[m]["kendall_tau_bleu"]))
            self.search(str(self.workdir / f"supernet_{method}" / "checkpoint_last.pt"))

        def scratch(name, sub, seed):
            return Job(f"scratch_{name}_seed{seed}", counted, lambda: self.scratch(name, sub, seed))
        out = [Job("prepare", (), self.prepare),
               Job("calibrate", ("prepare",), lambda: self.stages.stage("calibrate", self.calibrate)),
               Job("scratch_Transformer-largest_seed0", ("prepare",), largest)]
        out += [Job(f"supernet_{m}", ("calibrate",), lambda m=m: self.supernet(
            m, self.stages.result("calibrate")[m]["updates"])) for m in self.methods()]
        out += [scratch(n, self.subnet_yaml(n, cfg), 0) for n, cfg in rank.items() if n != "Transformer-largest"]
        out.append(Job("search", tuple(j.name for j in out if j.name.startswith(("supernet_", "scratch_"))),
                       ranking_and_search))
        models = self.models()
        out += [scratch(n, sub, 0) for n, (kind, _, sub) in models.items() if kind == "searched"]
        deciding = self.verdict_models(models)
        later = [(n, sub, seed) for seed in self.args.seeds if seed != 0 for n, (_, _, sub) in models.items()]
        return out + [scratch(*job) for job in sorted(later, key=lambda job: job[0] not in deciding)]

    def models(self, tag: str = "", prefix: str = "HAT") -> dict[str, tuple[str, float | None, Path]]:
        """``{name: (kind, budget_ms, subnet yaml)}``: the searched models (once ``search<tag>`` ran), baselines."""
        found = self.stages.result(f"search{tag}") or {"subnets": {}}
        out = {f"{prefix}@{float(b):g}ms": ("searched", float(b), Path(p)) for b, p in found["subnets"].items()}
        return {**out, **{n: ("baseline", None, self.subnet_yaml(n, cfg)) for n, cfg in baselines(self.space).items()}}

    def verdict_models(self, models) -> set[str]:
        """The models whose later seeds decide the verdict (trained first): once latency is measured, the searched
        ones and the baselines no slower than the slowest one; before, all (the order changes no result)."""
        lat = self.measured_latency_ms()
        searched = [lat[n] for n, (kind, _, _) in models.items() if kind == "searched" and n in lat]
        return set(models) if not searched else {
            n for n, (kind, _, _) in models.items() if kind == "searched" or lat.get(n, float("inf")) <= max(searched)}

    # ----- measure and report -----
    def measured_latency_ms(self, name: str = "latency_measured.json") -> dict[str, float]:
        path = self.workdir / name
        return json.loads(path.read_text())["latency_ms"] if path.is_file() else {}

    def measured_configs(self) -> dict[str, SubnetConfig]:
        """Every model, then the ranking-only SubTransformers (they tell a search problem from a space problem)."""
        cfgs = {n: SubnetConfig.load_yaml(p) for n, (_, _, p) in self.models().items()}
        return {**cfgs, **{n: c for n, c in ranking_configs(self.space, self.args.ranking_random).items()
                           if n not in cfgs}}

    def measure(self) -> dict:
        """Latency of every measured config: interleaved rounds of HAT's protocol (``cpu``), median."""
        import onnxruntime

        from hat.latency.deployed import protocol_rounds
        if self.stages.result("search") is None:
            raise HatError(f"{self.workdir}: the search has not run yet (--stage train runs it); measure after it")
        a, vocab = self.args, steps.target_vocab_size(self.data)
        items = {n: (c, "onnxruntime", "none") for n, c in self.measured_configs().items()}
        with self.runner.others_paused() as paused:
            res = protocol_rounds(items, vocab, self.space.qkv_dim, a.measure_rounds, a.measure_repeats,
                                  log=lambda m: print(m, file=sys.stderr, flush=True))
        res = {"command": " ".join([sys.executable, *sys.argv]), "host": platform.node(),
               "onnxruntime": onnxruntime.__version__, "vocab_size": vocab, "repeats": a.measure_repeats,
               "rounds": a.measure_rounds, "paused_train_pids": paused, **res}
        atomic_write(self.workdir / "latency_measured.json", json.dumps(res, indent=1))
        return res

    def records(self, tag: str = "", prefix: str = "HAT", latency_ms: dict | None = None) -> list[dict]:
        """One record per model (:mod:`hat.compare`) from the finished trainings of ``--seeds``."""
        trained = steps.finished_stages(self.workdir, "scratch_*")
        runs = {n: [(s, trained[f"scratch_{n}_seed{s}"]) for s in self.args.seeds if f"scratch_{n}_seed{s}" in trained]
                for n in self.models(tag, prefix)}
        records = compare.records_from_runs(self.models(tag, prefix), runs, latency_ms or {}, self.updates())
        if not any(r["bleu"] for r in records):  # keep a results file written from another workdir
            raise HatError(f"{self.workdir}: no finished from-scratch training to report (run --stage train first)")
        return records

    def annotate(self, records: list[dict], tag: str = "") -> None:
        """:func:`hat.compare.annotate` with this workdir's runs and its search's fitness of every model."""
        search, fitness = self.stages.result(f"search{tag}"), None
        if search and Path(search.get("supernet") or "-").is_file():  # an adopted search has no supernet here
            from hat.search.scoring import fitness_as_searched
            fitness = fitness_as_searched(search["supernet"], self.workdir / f"search_settings{tag}.yaml", self.data,
                                          self.workdir / f"search{tag}" / "search_log.jsonl",
                                          [SubnetConfig.from_dict(r["subnet"]) for r in records])
        compare.annotate(records, self.run_dir, fitness)

    def run_dir(self, name: str, seed: int) -> Path | None:
        """The folder of a finished from-scratch training (None when it has not run here)."""
        done = self.stages.result(f"scratch_{name}_seed{seed}") or {}
        return Path(done["checkpoint"]).parent if done.get("checkpoint") else None  # adopted: trained elsewhere

    def diagnostics(self, records: list[dict], latency_ms: dict, tag: str = "", device: str = "cpu") -> list[str]:
        """The measurements behind the verdict: ranking tau, predictor error, seed std, paired bootstrap, search
        misses, and better SubTransformers at <= latency."""
        out, search, ranking = [], self.stages.result(f"search{tag}"), self.workdir / "supernet_ranking.json"
        if search and ranking.is_file():
            out.append(compare.ranking_line(json.loads(ranking.read_text()),
                                            Path(search["supernet"]).parent.name.removeprefix("supernet_"),
                                            list(self.methods())))
        pred = self.workdir / f"predictor_{device}.pt"
        if pred.is_file() and latency_ms:
            out.append(compare.predictor_error_line(pred, self.measured_configs(), latency_ms))
        out += [compare.seed_std_line(records)] + compare.bootstrap_lines(records) + compare.search_miss_lines(records)
        seed0 = steps.finished_stages(self.workdir, "scratch_*_seed0").values()
        return [x for x in out if x] + compare.better_at_latency_lines(
            records, {d["name"]: d["valid_nll_loss"] for d in seed0}, latency_ms)

    def report(self) -> list[dict]:
        records = self.records(latency_ms=(lat := self.measured_latency_ms()))
        self.annotate(records)
        out = Path(self.args.results)
        atomic_write(out, json.dumps(records, indent=1))
        print("\n".join(compare.table(records) + compare.verdict(records) + self.diagnostics(records, lat)))
        t = steps.stage_totals(self.workdir)
        print(f"compute: {t['train_seconds'] / 3600:.1f} h of training updates (all sittings, from the train logs); "
              f"{t['stages']} finished stages, {t['wall_seconds'] / 3600:.1f} h wall as their markers record it "
              f"(last sitting of each, under whatever load there was)")
        if lat:
            trained = steps.finished_stages(self.workdir, "scratch_*_seed0")
            others = [(n, lat[n], trained[f"scratch_{n}_seed0"]["bleu"])
                      for n in ranking_configs(self.space, self.args.ranking_random)
                      if n not in self.models() and n in lat and f"scratch_{n}_seed0" in trained]
            compare.plot_bleu_vs_latency(records, Path(self.args.plot), others)
        for src, name in ((self.workdir / "supernet_ranking.json", "supernet_ranking.json"),
                          (self.workdir / "latency_measured.json", "reproduce_multi30k_latency.json")):
            if src.is_file():  # the raw figures behind the table
                atomic_write(out.parent / name, src.read_text())
        return records


def updates_arg(v: str):
    n = int(v) if v.isdigit() else 0
    if v != "auto" and n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive update count or 'auto', got {v!r}")
    return v if v == "auto" else n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = p.add_argument
    add("--workdir", default="runs/repro")
    add("--stage", choices=("train", "measure", "report", "ablation", "ct2", "ct2-measure", "ct2-report"),
        required=True)
    add("--data-dir", default=str(ROOT.parent / "shared" / "data" / "multi30k"))
    add("--threads", type=int, default=1)
    add("--bpe-vocab", type=int, default=4000)
    add("--max-tokens", type=int, default=2048)
    add("--updates", type=updates_arg, default="auto", help="updates of every from-scratch training, or 'auto': train "
        "Transformer-largest on until its validation NLL has flattened and use that count")
    add("--updates-step", type=int, default=544, help="with --updates auto: extend by this many updates")
    add("--updates-max", type=int, default=8000, help="with --updates auto: the cap")
    add("--flat-gain", type=float, default=0.01, help="flattened = validation NLL better by < this per epoch")
    add("--save-every", type=int, default=100, help="checkpoint every N updates (resume granularity)")
    add("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add("--supernet-cpu-minutes", type=float, default=45.0, help="CPU time of each SuperTransformer recipe")
    add("--supernet-updates", type=int, default=0, help="fixed update count instead (smoke tests)")
    add("--calibrate-updates", type=int, default=10)
    add("--sandwich-random", type=int, default=2)
    add("--inplace-distill", type=float, default=1.0)
    add("--ranking-random", type=int, default=4, help="random SubTransformers in the ranking set")
    add("--search-supernet", choices=("auto", "hat_random", "sandwich_distill"), default="auto",
        help="supernet the search uses (auto: the higher ranking tau on validation NLL, then on BLEU)")
    add("--profile-samples", type=int, default=150)
    add("--profile-repeats", type=int, default=10)
    add("--search-population", type=int, default=40)
    add("--search-iterations", type=int, default=20)
    add("--search-valid-subset", type=int, default=None, help="validation sentences the search scores on "
        "(default: configs/search/fast.yaml's, 500: it ranked the 100 best configs at tau 0.84 vs the whole set)")
    add("--test-sentences", type=int, default=0, help="0 = the whole test set")
    add("--measure-rounds", type=int, default=7)
    add("--measure-repeats", type=int, default=20)
    add("--results", default=str(ROOT / "benchmarks" / "results" / "reproduce_multi30k.json"))
    add("--plot", default=str(ROOT / "docs" / "img" / "multi30k_repro_bleu_vs_latency.png"))
    from reproduce_multi30k_followups import add_followup_args  # beside this script
    add_followup_args(p)
    return p


@cli_main("reproduce_multi30k.py")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.stage in ("ablation", "ct2", "ct2-measure", "ct2-report"):
        from reproduce_multi30k_followups import run_followup  # beside this script
        return run_followup(args, Repro(args))
    r = Repro(args)
    if args.stage == "train":
        r.runner.run_all(r.jobs)
    elif args.stage == "measure":
        for n, v in r.measure()["latency_ms"].items():
            print(f"{n:<24}{v:8.2f} ms")
    else:
        r.report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
