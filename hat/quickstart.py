"""The whole HAT pipeline on Multi30k de->en on this machine's CPU (the library behind ``hat-quickstart``).

Stages (each resumes: a finished stage leaves ``<workdir>/.stages/<name>.json``, an interrupted one continues from
its own checkpoint, CSV or log): prepare data (joint BPE) -> train SuperTransformer -> profile latency (ONNX Runtime,
this CPU) -> fit predictor -> search under 3 budgets (one Pareto run) -> fine-tune the found SubTransformers from
inherited weights -> BLEU on test_2016_flickr -> export the best to ONNX -> summary table and plots.

Every stage is a function of typed settings that calls the library (the same functions the ``hat-*`` CLIs call);
:func:`run_quickstart` runs them in order. ``scripts/reproduce_multi30k.py`` reuses the stages for its baselines.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from hat.errors import HatError
from hat.io import atomic_write


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


@dataclass
class QuickstartSettings:
    """One quickstart run.

    Attributes:
        workdir: where every artifact goes (and where a rerun resumes).
        preset: a name in :data:`PRESETS`.
        threads: torch intra-op threads for training, translation and preprocessing (latency is measured on 1).
        data_dir: Multi30k raw files (``train.de[.gz]``, ...); None = download them into the workdir.
    """

    workdir: Path
    preset: str = "tiny"
    threads: int = max(1, min(2, os.cpu_count() or 1))
    data_dir: Optional[str] = None

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        if self.preset not in PRESETS:
            raise HatError(f"unknown preset '{self.preset}' (have: {', '.join(sorted(PRESETS))})")
        if self.threads < 1:
            raise HatError(f"threads must be >= 1, got {self.threads}")


@dataclass(frozen=True)
class Layout:
    """Where each stage writes in a quickstart workdir."""

    workdir: Path

    @property
    def data_bin(self) -> Path:
        return self.workdir / "data-bin"

    @property
    def supernet_dir(self) -> Path:
        return self.workdir / "supernet"

    @property
    def supernet(self) -> Path:
        return self.supernet_dir / "checkpoint_best.pt"

    @property
    def latency_csv(self) -> Path:
        return self.workdir / f"latency_{DEVICE}.csv"

    @property
    def predictor(self) -> Path:
        return self.workdir / f"predictor_{DEVICE}.pt"

    @property
    def search_dir(self) -> Path:
        return self.workdir / "search"

    @property
    def onnx_dir(self) -> Path:
        return self.workdir / "export_onnx"


def finished_stages(workdir: Path, pattern: str = "*") -> dict[str, dict]:
    """``{stage name: result}`` of a workdir's finished stages whose name matches the glob ``pattern`` (read from
    ``.stages/<name>.json``; an empty dict when there are none, or no workdir)."""
    return {p.stem: json.loads(p.read_text())
            for p in sorted((Path(workdir) / ".stages").glob(f"{pattern}.json"))}


class Pipeline:
    """Runs stages in order, skipping those already finished (their result JSON exists)."""

    def __init__(self, workdir: Path, preset: Optional[Preset], preset_name: str,
                 log: Callable[[str], None] = print):
        self.w = Path(workdir)
        self.p = preset
        self.preset_name = preset_name
        self.log = log
        (self.w / ".stages").mkdir(parents=True, exist_ok=True)

    def marker(self, name: str) -> Path:
        """Where stage ``name`` records its result once finished."""
        return self.w / ".stages" / f"{name}.json"

    def result(self, name: str) -> Optional[dict]:
        """The result of stage ``name``, or ``None`` while it has not finished."""
        marker = self.marker(name)
        return json.loads(marker.read_text()) if marker.is_file() else None

    def stage(self, name: str, fn: Callable[[], Optional[dict]]) -> dict:
        """Run ``fn`` unless stage ``name`` finished before; returns its result (with ``seconds``)."""
        marker = self.marker(name)
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


def find_multi30k(data_dir: Optional[str], workdir: Path) -> dict:
    """``{split: path prefix}`` of Multi30k raw files: from ``data_dir``; else a local copy
    (:func:`hat.data.multi30k.local_multi30k`: ``$HAT_MULTI30K_DIR``, the project's shared data beside the
    checkout) or one already downloaded into the workdir; else downloaded there."""
    from hat.data import multi30k
    if not data_dir:
        raw = Path(workdir) / "raw"
        data_dir = multi30k.local_multi30k((SRC, TGT))
        if data_dir is None:
            data_dir = multi30k.download_multi30k(raw, langs=(SRC, TGT))
    return multi30k.find_multi30k(data_dir, (SRC, TGT))


# ----- stages: each returns the JSON-able result recorded in .stages/<name>.json -----

def prepare_data(workdir: Path, preset: Preset, threads: int, data_dir: Optional[str]) -> dict:
    """Joint sentencepiece BPE and fairseq binarization of Multi30k (train, val, test_2016_flickr)."""
    from hat.data.preprocess import PreprocessSettings, preprocess
    lay = Layout(Path(workdir))
    raw = find_multi30k(data_dir, lay.workdir)
    preprocess(PreprocessSettings(src=SRC, tgt=TGT, trainpref=str(raw["train"]), validpref=str(raw["val"]),
                                  testpref=str(raw["test_2016_flickr"]), destdir=str(lay.data_bin),
                                  bpe_vocab=preset.bpe_vocab, max_train_lines=preset.max_train_lines or None,
                                  threads=threads), log=None)
    return {"data_bin": str(lay.data_bin), "raw": {k: str(v) for k, v in raw.items()}}


def _train(preset: Preset, threads: int, save_dir: Path, data_bin: Path, max_update: int, log: Callable[[str], None],
           **flags) -> None:
    from hat.train.config import load_train_config
    from hat.train.trainer import train
    cfg = load_train_config(TASK, [f"max_tokens={preset.max_tokens}",
                                   f"valid_subset_max_batches={preset.valid_max_batches}"],
                            data=str(data_bin), save_dir=str(save_dir), max_update=max_update, threads=threads,
                            **flags)
    res = train(cfg, resume=(Path(save_dir) / "checkpoint_last.pt").is_file())
    log(f"{save_dir}: update {res.update}, epoch {res.epoch}, valid loss {res.valid_loss:.4f} "
        f"(best {res.best_valid_loss:.4f})")


def train_supernet(workdir: Path, preset: Preset, threads: int, log: Callable[[str], None] = print) -> dict:
    """Train the SuperTransformer (a random SubTransformer per update); resumes from ``checkpoint_last.pt``."""
    lay = Layout(Path(workdir))
    _train(preset, threads, lay.supernet_dir, lay.data_bin, preset.supernet_updates, log)
    return {"checkpoint": str(lay.supernet)}


def profile_latency(workdir: Path, preset: Preset, vocab_size: int, log: Callable[[str], None] = print) -> dict:
    """Measure ``preset.profile_samples`` SubTransformers of the widened space (ONNX Runtime, this CPU, 1 thread)
    into the latency CSV; resumes from the rows already there."""
    from hat.latency.devices import load_device
    from hat.latency.profiler import profile_dataset
    from hat.latency.protocol import ProfileSettings
    from hat.space import load_space
    lay = Layout(Path(workdir))
    device = load_device(DEVICE)
    device.threads = 1
    # The real vocabulary size, so the output projection costs what it will cost in deployment.
    settings = ProfileSettings(vocab_size=vocab_size, repeats=preset.profile_runs, threads=device.threads)
    configs, records = profile_dataset(load_space(SPACE), device, settings, preset.profile_samples, lay.latency_csv,
                                       widen=True, resume=True, log=log)
    log(f"measured {len(records)} SubTransformers ({len(configs) - len(records)} already done) -> {lay.latency_csv}")
    return {"csv": str(lay.latency_csv)}


def fit_latency_predictor(workdir: Path, log: Callable[[str], None] = print) -> dict:
    """Fit the latency predictor on the CSV; its metrics (``predictor_cv.json``) and scatter
    (``predictor_scatter.png``) come from 5-fold cross-validation (out-of-fold predictions), not the training rows."""
    import torch

    from hat.predictor import DEFAULT_MODEL, fit_predictor
    from hat.predictor.evaluate import read_latency_csvs, write_cv_report
    from hat.space import load_space
    torch.set_num_threads(1)  # the predictor is tiny; as hat-predictor fit
    lay = Layout(Path(workdir))
    pred = fit_predictor(read_latency_csvs([lay.latency_csv]), DEVICE, load_space(SPACE), DEFAULT_MODEL, seed=0,
                         sources=[str(lay.latency_csv)], cv_folds=5)
    pred.save(lay.predictor)
    report = write_cv_report(pred, lay.predictor, [lay.latency_csv], report=lay.workdir / "predictor_cv.json",
                             plot=lay.workdir / "predictor_scatter.png")
    cv = {k: v for k, v in report.items() if k != "cv"}  # the rows stay in the file
    if pred.heldout_metrics:
        log(f"{lay.predictor}: {pred.model_kind}/{pred.feature_kind}; {pred.metrics_split} held-out mape "
            f"{cv['mape']:.4f}, kendall_tau {cv['kendall_tau']:.3f}")
    return {"predictor": str(lay.predictor), "report": cv}


def choose_budgets(latency_csv: Path) -> dict:
    """Three latency budgets: the 25th, 50th and 75th percentile of the measured latencies."""
    from hat.latency.records import read_latency_csv
    lat = sorted(r.latency_ms for r in read_latency_csv(latency_csv))
    q = [lat[int(round(f * (len(lat) - 1)))] for f in (0.25, 0.5, 0.75)]
    return {"budgets_ms": [round(x, 2) for x in q]}


def search_subnets(workdir: Path, preset: Preset, budgets_ms: list[float], log: Callable[[str], None] = print) -> dict:
    """One Pareto search over ``budgets_ms`` with the fitted predictor (settings written to
    ``search_settings.yaml``); resumes from the search log."""
    from hat.config import dump_yaml
    from hat.search import load_settings
    from hat.search.run import SearchJob, run_search
    lay = Layout(Path(workdir))
    settings = dataclasses.replace(
        load_settings("fast"), population_size=preset.search_population, parent_size=preset.search_parents,
        mutation_size=preset.search_mutations, crossover_size=preset.search_crossovers,
        iterations=preset.search_iterations, valid_subset=preset.valid_subset)
    dump_yaml(dataclasses.asdict(settings), lay.workdir / "search_settings.yaml")
    done = run_search(SearchJob(supernet=str(lay.supernet), device=DEVICE, settings=settings,
                         budgets_ms=sorted(float(b) for b in budgets_ms), predictor=str(lay.predictor),
                         data=str(lay.data_bin), out=str(lay.search_dir), seed=1, progress=False,
                         resume=(lay.search_dir / "search_log.jsonl").is_file()))
    for line in done.summary_lines():
        log(line)
    return {"subnets": {str(b): str(subnet_file(lay.search_dir, b)) for b in budgets_ms}}


def subnet_file(search_dir: Path, budget_ms: float) -> Path:
    """The subnet YAML the search wrote for ``budget_ms``."""
    from hat.search import budget_subnet_filename
    return Path(search_dir) / budget_subnet_filename(budget_ms)


def finetune_subnet(workdir: Path, preset: Preset, threads: int, subnet_yaml, out: Path,
                    log: Callable[[str], None] = print) -> dict:
    """Fine-tune a SubTransformer from the SuperTransformer's inherited weights (resumes if interrupted)."""
    lay = Layout(Path(workdir))
    _train(preset, threads, Path(out), lay.data_bin, preset.finetune_updates, log, subnet=str(subnet_yaml),
           init_from_supernet=str(lay.supernet))
    return {"checkpoint": str(Path(out) / "checkpoint_best.pt"), "dir": str(out)}


def bleu_of(workdir: Path, preset: Preset, threads: int, ckpt, out_dir) -> dict:
    """Translate test_2016_flickr with beam search and score it (SacreBLEU with signature, tokenized BLEU); the
    hypotheses and references go to ``out_dir/test.hyp`` and ``test.ref``."""
    from hat.score import sacrebleu_corpus, tokenized_bleu
    from hat.translate import translate_checkpoint
    out_dir = Path(out_dir)
    # max length 1.2 * src + 10 bounds decoding time of weak models (Multi30k targets are short).
    done = translate_checkpoint(ckpt, Layout(Path(workdir)).data_bin, subset="test", beam=preset.beam,
                                batch_size=32, max_len_a=1.2, max_len_b=10, threads=threads,
                                max_sentences=preset.test_sentences or 0)
    hyps, refs = done.hyps, done.refs
    atomic_write(out_dir / "test.hyp", "".join(line + "\n" for line in hyps))
    atomic_write(out_dir / "test.ref", "".join(line + "\n" for line in refs))
    sacre, line, signature = sacrebleu_corpus(hyps, refs)
    return {"sacrebleu": round(sacre, 2), "signature": signature, "sacrebleu_line": line,
            "tokenized_bleu": round(tokenized_bleu(hyps, refs).score(), 2), "sentences": len(hyps)}


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


def result_row(budget_ms: float, subnet_yaml, checkpoint, bleu_report: dict, meas: dict) -> dict:
    """One row of the summary table: the subnet's search metadata, its measured latency and its BLEU."""
    from hat.config import load_yaml
    meta = load_yaml(subnet_yaml)
    return {"name": f"HAT@{budget_ms:g}ms", "budget_ms": budget_ms,
            "predicted_ms": meta.get("predicted_latency_ms"), "measured_ms": meas.get("latency_ms"),
            "params": meta.get("params"), "valid_loss_inherited": meta.get("valid_loss"),
            "bleu": bleu_report["sacrebleu"], "tokenized_bleu": bleu_report["tokenized_bleu"],
            "subnet": str(subnet_yaml), "checkpoint": str(checkpoint)}


def export_best(workdir: Path, checkpoint, name: str) -> dict:
    """Export ``checkpoint`` to ONNX with the data's dictionaries (checked against PyTorch)."""
    from hat.export.model_export import export_model
    from hat.translate import load_any_model
    lay = Layout(Path(workdir))
    export_model(load_any_model(checkpoint), "onnx", lay.onnx_dir, data=lay.data_bin)
    return {"onnx_dir": str(lay.onnx_dir), "model": name}


def target_vocab_size(workdir: Path) -> int:
    """Size of the target dictionary the data stage built."""
    from hat.data import Dictionary
    return len(Dictionary.load(Layout(Path(workdir)).data_bin / f"dict.{TGT}.txt"))


def run_quickstart(settings: QuickstartSettings, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) every stage; writes ``summary.json`` and returns it.

    Raises:
        HatError: missing or malformed Multi30k data, or any stage's user error.
    """
    w, preset, threads = settings.workdir, PRESETS[settings.preset], settings.threads
    lay = Layout(w)
    pl = Pipeline(w, preset, settings.preset, log=log)
    pl.stage("prepare", lambda: prepare_data(w, preset, threads, settings.data_dir))
    vocab_size = target_vocab_size(w)
    pl.stage("train_supernet", lambda: train_supernet(w, preset, threads, log))
    pl.stage("profile", lambda: profile_latency(w, preset, vocab_size, log))
    pl.stage("predictor", lambda: fit_latency_predictor(w, log))
    budgets = pl.stage("budgets", lambda: choose_budgets(lay.latency_csv))["budgets_ms"]
    found = pl.stage("search", lambda: search_subnets(w, preset, budgets, log))["subnets"]
    rows = []
    for b in budgets:
        sub = found[str(b)]
        ft = pl.stage(f"finetune_{b}ms", lambda sub=sub, b=b: finetune_subnet(
            w, preset, threads, sub, w / f"subtransformer_{b}ms", log))
        sc = pl.stage(f"bleu_{b}ms", lambda ft=ft: bleu_of(w, preset, threads, ft["checkpoint"], ft["dir"]))
        meas = pl.stage(f"measure_{b}ms", lambda sub=sub: measure(sub, vocab_size))
        rows.append(result_row(b, sub, ft["checkpoint"], sc, meas))
    best = max(rows, key=lambda r: r["bleu"])
    pl.stage("export", lambda: export_best(w, best["checkpoint"], best["name"]))
    summary = {"preset": settings.preset, "workdir": str(w), "budgets_ms": budgets, "models": rows,
               "best": best["name"]}
    atomic_write(w / "summary.json", json.dumps(summary, indent=1))
    return summary


def format_summary(rows: list[dict], workdir: Path) -> str:
    """The summary table (model, budget, predicted and measured latency, params, BLEU) and where the plots are."""
    workdir = Path(workdir)
    head = f"{'model':<16}{'budget ms':>10}{'pred ms':>9}{'meas ms':>9}{'params':>10}{'BLEU':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:<16}{r['budget_ms']:>10.2f}{(r['predicted_ms'] or 0):>9.2f}"
                     f"{(r['measured_ms'] or 0):>9.2f}{(r['params'] or 0):>10,}{r['bleu']:>7.2f}")
    lines.append(f"plots: {workdir / 'search' / 'front.png'} (loss/latency front), "
                 f"{workdir / 'predictor_scatter.png'} (5-fold cross-validated predicted vs measured latency)")
    lines.append(f"all artifacts in {workdir}; summary.json has the table")
    return "\n".join(lines)
