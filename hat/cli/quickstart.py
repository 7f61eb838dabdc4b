"""``hat-quickstart``: the whole HAT pipeline on Multi30k de->en on this machine's CPU.

Stages (each resumes: a finished stage leaves ``<workdir>/.stages/<name>.json``, an interrupted one continues with
its own ``--resume``): prepare data (joint BPE) -> train SuperTransformer -> profile latency (ONNX Runtime, this CPU)
-> fit predictor -> search under 3 budgets (one Pareto run) -> fine-tune the found SubTransformers from inherited
weights -> BLEU on test_2016_flickr -> export the best to ONNX -> summary table and plots.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from hat.cli.common import cli_main
from hat.errors import HatError
from hat.io import atomic_write

PROG = "hat-quickstart"


@dataclass
class Preset:
    """Sizes of every stage. ``tiny`` fits in ~20 minutes on 2 CPU cores."""

    bpe_vocab: int
    max_train_lines: Optional[int]  # None = all 29,000 Multi30k training pairs
    max_tokens: int  # tokens per batch (SuperTransformer and fine-tuning)
    supernet_updates: int
    profile_samples: int  # SubTransformers measured for the latency dataset
    profile_runs: int  # timed runs per config (after warm-up); HAT protocol otherwise
    search_iterations: int
    search_population: int
    search_parents: int
    search_mutations: int
    search_crossovers: int
    valid_subset: int  # validation sentences scoring each candidate (seeded subset)
    finetune_updates: int
    test_sentences: Optional[int]  # None = the whole test set (1,000)
    beam: int
    valid_max_batches: int  # validation batches per epoch in training (0 = the whole validation set)


PRESETS = {
    "tiny": Preset(bpe_vocab=4000, max_train_lines=None, max_tokens=2048, supernet_updates=1000,
                   profile_samples=60, profile_runs=5, search_iterations=8, search_population=40,
                   search_parents=10, search_mutations=15, search_crossovers=15, valid_subset=300,
                   finetune_updates=200, test_sentences=None, beam=5, valid_max_batches=0),
    "small": Preset(bpe_vocab=8000, max_train_lines=None, max_tokens=4096, supernet_updates=8000,
                    profile_samples=300, profile_runs=10, search_iterations=20, search_population=125,
                    search_parents=25, search_mutations=50, search_crossovers=50, valid_subset=1014,
                    finetune_updates=3000, test_sentences=None, beam=5, valid_max_batches=0),
    # For tests and CI: every stage runs, on almost no data.
    "smoke": Preset(bpe_vocab=1000, max_train_lines=2000, max_tokens=1024, supernet_updates=6,
                    profile_samples=8, profile_runs=1, search_iterations=2, search_population=8,
                    search_parents=2, search_mutations=3, search_crossovers=3, valid_subset=32,
                    finetune_updates=3, test_sentences=20, beam=2, valid_max_batches=2),
}

SRC, TGT = "de", "en"
SPACE = "multi30k_tiny"
TASK = "multi30k_de_en"
DEVICE = "cpu"


class Pipeline:
    """Runs stages in order, skipping those already finished (their result JSON exists)."""

    def __init__(self, workdir: Path, preset: Preset, preset_name: str, log=print):
        self.w = workdir
        self.p = preset
        self.preset_name = preset_name
        self.log = log
        (self.w / ".stages").mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, fn: Callable[[], dict]) -> dict:
        marker = self.w / ".stages" / f"{name}.json"
        if marker.is_file():
            self.log(f"[{name}] done already (delete {marker} to redo)")
            return json.loads(marker.read_text())
        self.log(f"[{name}] ...")
        t0 = time.perf_counter()
        result = fn() or {}
        result["seconds"] = round(time.perf_counter() - t0, 1)
        atomic_write(marker, json.dumps(result, indent=1))
        self.log(f"[{name}] finished in {result['seconds']} s")
        return result


def _call(prog: str, main: Callable[[Optional[Sequence[str]]], int], argv: list[str]) -> None:
    """Run another hat CLI in-process; a non-zero exit stops the pipeline with a one-line error."""
    rc = main([str(a) for a in argv])
    if rc:
        raise HatError(f"stage '{prog}' failed (exit {rc}): {prog} {' '.join(map(str, argv))}")


def find_multi30k(data_dir: Optional[str], workdir: Path) -> dict:
    """``{split: path prefix}`` of Multi30k raw files: from ``--data-dir``, else downloaded into the workdir."""
    from hat.data import multi30k
    if not data_dir:
        data_dir = multi30k.download_multi30k(workdir / "raw", langs=(SRC, TGT))
    return multi30k.find_multi30k(data_dir, (SRC, TGT))


def run_pipeline(args, preset: Preset) -> dict:
    from hat.cli import export, predictor, preprocess, profile, search, train
    w = Path(args.workdir)
    pl = Pipeline(w, preset, args.preset)
    data_bin = w / "data-bin"
    supernet_dir = w / "supernet"
    threads = str(args.threads)

    def prepare():
        raw = find_multi30k(args.data_dir, w)
        argv = ["--src", SRC, "--tgt", TGT, "--trainpref", raw["train"], "--validpref", raw["val"],
                "--testpref", raw["test_2016_flickr"], "--destdir", data_bin, "--bpe-vocab", preset.bpe_vocab,
                "--threads", threads, "-q"]
        if preset.max_train_lines:
            argv += ["--max-train-lines", preset.max_train_lines]
        _call("hat-preprocess", preprocess.main, argv)
        return {"data_bin": str(data_bin), "raw": {k: str(v) for k, v in raw.items()}}

    def train_supernet():
        argv = ["--config", TASK, "--data", data_bin, "--save-dir", supernet_dir,
                "--max-update", preset.supernet_updates, "--threads", threads,
                "--set", f"max_tokens={preset.max_tokens}", "--set", f"valid_subset_max_batches={preset.valid_max_batches}"]
        if (supernet_dir / "checkpoint_last.pt").is_file():
            argv.append("--resume")
        _call("hat-train", train.main, argv)
        return {"checkpoint": str(supernet_dir / "checkpoint_best.pt")}

    latency_csv = w / f"latency_{DEVICE}.csv"

    def profile_latency():
        # The real vocabulary size, so the output projection costs what it will cost in deployment.
        argv = ["--space", SPACE, "--device", DEVICE, "--samples", preset.profile_samples, "--out", latency_csv,
                "--resume", "--widen", "--repeats", preset.profile_runs, "--vocab-size", vocab_size,
                "--threads", 1]
        _call("hat-profile", profile.main, argv)
        return {"csv": str(latency_csv)}

    predictor_path = w / f"predictor_{DEVICE}.pt"

    def fit_predictor():
        # Metrics and scatter from 5-fold cross-validation (out-of-fold predictions), not the training rows.
        report = w / "predictor_cv.json"
        _call("hat-predictor", predictor.main, ["fit", "--data", latency_csv, "--device", DEVICE, "--space", SPACE,
                                                "--out", predictor_path, "--cv", 5, "--report", report,
                                                "--plot", w / "predictor_scatter.png"])
        cv = {k: v for k, v in json.loads(report.read_text()).items() if k != "cv"}  # the rows stay in the file
        return {"predictor": str(predictor_path), "report": cv}

    def choose_budgets():
        from hat.latency.records import read_latency_csv
        lat = sorted(r.latency_ms for r in read_latency_csv(latency_csv))
        q = [lat[int(round(f * (len(lat) - 1)))] for f in (0.25, 0.5, 0.75)]
        return {"budgets_ms": [round(x, 2) for x in q]}

    search_dir = w / "search"

    def run_search(budgets_ms):
        from hat.config import dump_yaml
        from hat.search import load_settings
        settings = load_settings("fast")
        for k, v in dict(population_size=preset.search_population, parent_size=preset.search_parents,
                         mutation_size=preset.search_mutations, crossover_size=preset.search_crossovers,
                         iterations=preset.search_iterations, valid_subset=preset.valid_subset).items():
            setattr(settings, k, v)
        settings_yaml = w / "search_settings.yaml"
        dump_yaml(asdict(settings), settings_yaml)
        argv = ["--supernet", supernet_dir / "checkpoint_best.pt", "--device", DEVICE,
                "--predictor", predictor_path, "--data", data_bin, "--out", search_dir,
                "--latency", ",".join(f"{b}ms" for b in budgets_ms), "--config", settings_yaml,
                "--seed", 1, "--no-progress"]
        if (search_dir / "search_log.jsonl").is_file():
            argv.append("--resume")
        _call("hat-search", search.main, argv)
        return {"subnets": {str(b): str(_subnet_file(search_dir, b)) for b in budgets_ms}}

    pl.stage("prepare", prepare)
    from hat.data import Dictionary
    vocab_size = len(Dictionary.load(data_bin / f"dict.{TGT}.txt"))
    pl.stage("train_supernet", train_supernet)
    pl.stage("profile", profile_latency)
    pl.stage("predictor", fit_predictor)
    budgets = pl.stage("budgets", choose_budgets)["budgets_ms"]
    found = pl.stage("search", lambda: run_search(budgets))["subnets"]
    rows = []
    for b in budgets:
        sub = found[str(b)]
        ft = pl.stage(f"finetune_{b}ms", lambda b=b, sub=sub: finetune_subnet(
            args, preset, w, sub, w / f"subtransformer_{b}ms"))
        sc = pl.stage(f"bleu_{b}ms", lambda ft=ft: bleu_of(args, preset, w, ft["checkpoint"], ft["dir"]))
        meas = pl.stage(f"measure_{b}ms", lambda sub=sub: measure(sub, vocab_size))
        rows.append(_row(b, sub, ft["checkpoint"], sc, meas))
    best = max(rows, key=lambda r: r["bleu"])
    onnx_dir = w / "export_onnx"
    pl.stage("export", lambda: (_call("hat-export", export.main, ["--checkpoint", best["checkpoint"], "--format",
                                                                  "onnx", "--out", onnx_dir, "--data", data_bin])
                                or {"onnx_dir": str(onnx_dir), "model": best["name"]}))
    summary = {"preset": args.preset, "workdir": str(w), "budgets_ms": budgets, "models": rows,
               "best": best["name"]}
    (w / "summary.json").write_text(json.dumps(summary, indent=1))
    print_summary(rows, w)
    return summary


def finetune_subnet(args, preset: Preset, w: Path, subnet_yaml, out: Path) -> dict:
    """Fine-tune a SubTransformer from the SuperTransformer's inherited weights (resumes if interrupted)."""
    from hat.cli import train
    argv = ["--config", TASK, "--data", w / "data-bin", "--subnet", subnet_yaml, "--init-from-supernet",
            w / "supernet" / "checkpoint_best.pt", "--save-dir", out, "--max-update", preset.finetune_updates,
            "--threads", args.threads, "--set", f"max_tokens={preset.max_tokens}",
            "--set", f"valid_subset_max_batches={preset.valid_max_batches}"]
    if (Path(out) / "checkpoint_last.pt").is_file():
        argv.append("--resume")
    _call("hat-train", train.main, argv)
    return {"checkpoint": str(Path(out) / "checkpoint_best.pt"), "dir": str(out)}


def bleu_of(args, preset: Preset, w: Path, ckpt, out_dir) -> dict:
    """Translate test_2016_flickr with beam search and score it (SacreBLEU with signature, tokenized BLEU)."""
    from hat.cli import translate
    from hat.score import read_lines, sacrebleu_corpus, tokenized_bleu
    out_dir = Path(out_dir)
    hyp, ref = out_dir / "test.hyp", out_dir / "test.ref"
    # max length 1.2 * src + 10 bounds decoding time of weak models (Multi30k targets are short).
    argv = ["--checkpoint", ckpt, "--data", w / "data-bin", "--subset", "test", "--beam", preset.beam,
            "--batch-size", 32, "--max-len-a", 1.2, "--max-len-b", 10, "--threads", args.threads,
            "--output", hyp, "--reference-output", ref, "--quiet"]
    if preset.test_sentences:
        argv += ["--max-sentences", preset.test_sentences]
    _call("hat-translate", translate.main, argv)
    hyps, refs = read_lines(hyp), read_lines(ref)
    sacre, line, signature = sacrebleu_corpus(hyps, refs)
    return {"sacrebleu": round(sacre, 2), "signature": signature, "sacrebleu_line": line,
            "tokenized_bleu": round(tokenized_bleu(hyps, refs).score(), 2), "sentences": len(hyps)}


def _subnet_file(search_dir: Path, budget_ms: float) -> Path:
    from hat.search import budget_subnet_filename  # the search writes one subnet YAML per budget
    return search_dir / budget_subnet_filename(budget_ms)


def measure(subnet_yaml: str, vocab_size: int, repeats: int = 10) -> dict:
    """Measured latency (ONNX Runtime on this CPU, HAT's protocol) of a searched SubTransformer."""
    from hat.latency.backends import get_backend
    from hat.latency.devices import load_device
    from hat.latency.protocol import ProfileSettings
    from hat.space import SubnetConfig, load_space
    cfg = SubnetConfig.load_yaml(subnet_yaml)
    settings = ProfileSettings(vocab_size=vocab_size, repeats=repeats, threads=1)
    m = get_backend(load_device(DEVICE), settings, qkv_dim=load_space(SPACE).qkv_dim).measure(cfg)
    enc, dec, enc_std, dec_std = m.stats(settings.trim)
    return {"encoder_ms": enc, "decoder_ms": dec, "latency_ms": enc + dec, "std_ms": [enc_std, dec_std]}


def _row(budget_ms, subnet_yaml, checkpoint, bleu_report: dict, meas: dict) -> dict:
    from hat.config import load_yaml
    meta = load_yaml(subnet_yaml)
    return {"name": f"HAT@{budget_ms:g}ms", "budget_ms": budget_ms,
            "predicted_ms": meta.get("predicted_latency_ms"), "measured_ms": meas.get("latency_ms"),
            "params": meta.get("params"), "valid_loss_inherited": meta.get("valid_loss"),
            "bleu": bleu_report["sacrebleu"], "tokenized_bleu": bleu_report["tokenized_bleu"],
            "subnet": str(subnet_yaml), "checkpoint": str(checkpoint)}


def print_summary(rows: list[dict], workdir: Path) -> None:
    head = f"{'model':<16}{'budget ms':>10}{'pred ms':>9}{'meas ms':>9}{'params':>10}{'BLEU':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['name']:<16}{r['budget_ms']:>10.2f}{(r['predicted_ms'] or 0):>9.2f}{(r['measured_ms'] or 0):>9.2f}"
              f"{(r['params'] or 0):>10,}{r['bleu']:>7.2f}")
    print(f"plots: {workdir / 'search' / 'front.png'} (loss/latency front), "
          f"{workdir / 'predictor_scatter.png'} (5-fold cross-validated predicted vs measured latency)")
    print(f"all artifacts in {workdir}; summary.json has the table")


@cli_main(PROG)
def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="Multi30k raw files (train.de[.gz], ...); downloaded when omitted")
    p.add_argument("--workdir", default="runs/quickstart")
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    p.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    args = p.parse_args(argv)
    run_pipeline(args, PRESETS[args.preset])
    return 0


if __name__ == "__main__":
    sys.exit(main())
