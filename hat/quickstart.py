"""The whole HAT pipeline on Multi30k de->en on this machine's CPU (the library behind ``hat-quickstart``).

Stages (each resumes, see :mod:`hat.pipeline`): prepare data (joint BPE) -> train SuperTransformer -> profile latency
(ONNX Runtime, this CPU, interleaved rounds) -> fit predictor (5-fold CV metrics) -> search under 3 budgets (one
Pareto run) -> measure the found SubTransformers (the device's estimator, as the profiler) -> keep the one with the
lowest inherited validation loss and fine-tune it from its inherited weights -> BLEU on test_2016_flickr (fairseq's
default length limit, loop share beside the references') -> export it to ONNX -> summary, plots and what next.

Every stage is a step of :mod:`hat.pipeline` (the same functions the ``hat-*`` CLIs call), as in
``scripts/reproduce_multi30k.py``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from hat import pipeline as steps
from hat.errors import HatError
from hat.io import atomic_write


@dataclass
class Preset:
    """Sizes of every stage. ``tiny`` fits in ~15 minutes on 2 idle CPU cores."""

    bpe_vocab: int
    max_train_lines: Optional[int]  # None = all 29,000 Multi30k training pairs
    max_tokens: int  # tokens per batch (SuperTransformer and fine-tuning)
    supernet_updates: int
    profile_samples: int  # SubTransformers measured for the latency dataset
    profile_runs: int  # timed runs per config and round (after warm-up); the device's rounds and estimator
    search_iterations: int
    search_population: int
    search_parents: int
    search_mutations: int
    search_crossovers: int
    valid_subset: int  # validation sentences scoring each candidate (seeded subset)
    keep_updates: int  # fine-tuning updates of the kept SubTransformer (from its inherited weights)
    test_sentences: Optional[int]  # None = the whole test set (1,000)
    beam: int
    valid_max_batches: int  # validation batches per epoch in training (0 = the whole validation set)


PRESETS = {
    "tiny": Preset(bpe_vocab=4000, max_train_lines=None, max_tokens=2048, supernet_updates=1000,
                   profile_samples=150, profile_runs=3, search_iterations=5, search_population=30,
                   search_parents=8, search_mutations=11, search_crossovers=11, valid_subset=300,
                   keep_updates=1200, test_sentences=None, beam=5, valid_max_batches=0),
    "small": Preset(bpe_vocab=8000, max_train_lines=None, max_tokens=4096, supernet_updates=8000,
                    profile_samples=300, profile_runs=10, search_iterations=20, search_population=125,
                    search_parents=25, search_mutations=50, search_crossovers=50, valid_subset=1014,
                    keep_updates=4000, test_sentences=None, beam=5, valid_max_batches=0),
    # For tests and CI: every stage runs, on almost no data.
    "smoke": Preset(bpe_vocab=1000, max_train_lines=2000, max_tokens=1024, supernet_updates=6,
                    profile_samples=8, profile_runs=1, search_iterations=2, search_population=8,
                    search_parents=2, search_mutations=3, search_crossovers=3, valid_subset=32,
                    keep_updates=3, test_sentences=20, beam=2, valid_max_batches=2),
}

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
        data_dir: Multi30k raw files (``train.de[.gz]``, ...); None = a local copy, else download them.
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
    def kept_dir(self) -> Path:
        return self.workdir / "kept_model"

    @property
    def onnx_dir(self) -> Path:
        return self.workdir / "export_onnx"


def train_flags(preset: Preset, threads: int, data_bin: Path, max_update: int) -> tuple[list[str], dict]:
    """The quickstart's training overrides and fields (:func:`hat.pipeline.train_model`)."""
    return ([f"max_tokens={preset.max_tokens}", f"valid_subset_max_batches={preset.valid_max_batches}"],
            dict(data=str(data_bin), max_update=max_update, threads=threads))


def train_supernet(lay: Layout, preset: Preset, threads: int, log: Callable[[str], None] = print) -> dict:
    """Train the SuperTransformer (a random SubTransformer per update); resumes from ``checkpoint_last.pt``."""
    overrides, fields = train_flags(preset, threads, lay.data_bin, preset.supernet_updates)
    res = steps.train_model(TASK, lay.supernet_dir, overrides, progress=True, **fields)
    log(f"{lay.supernet_dir}: update {res.update}, valid loss {res.valid_loss:.4f} (best {res.best_valid_loss:.4f})")
    return {"checkpoint": str(lay.supernet)}


def kept_budget(found: dict[str, str]) -> str:
    """The budget whose searched SubTransformer the quickstart keeps: the lowest validation loss with inherited
    weights (the search's fitness, recorded in its subnet YAML; validation data only, never test)."""
    from hat.config import load_yaml
    return min(found, key=lambda b: (float(load_yaml(found[b]).get("valid_loss", float("inf"))), float(b)))


def keep_model(lay: Layout, preset: Preset, threads: int, subnet_yaml: str, log: Callable[[str], None]) -> dict:
    """Fine-tune the kept SubTransformer from the SuperTransformer's inherited weights (resumes if interrupted)."""
    overrides, fields = train_flags(preset, threads, lay.data_bin, preset.keep_updates)
    res = steps.train_model(TASK, lay.kept_dir, overrides, progress=True, subnet=str(subnet_yaml),
                            init_from_supernet=str(lay.supernet), **fields)
    log(f"{lay.kept_dir}: update {res.update}, valid loss {res.valid_loss:.4f} (best {res.best_valid_loss:.4f})")
    return {"checkpoint": str(lay.kept_dir / "checkpoint_best.pt"), "dir": str(lay.kept_dir),
            "valid_loss": res.best_valid_loss, "valid_nll_loss": res.valid_nll_loss, "updates": res.update}


def result_row(budget_ms: float, subnet_yaml, meas: dict) -> dict:
    """One searched SubTransformer of the summary: its search metadata and its measured latency."""
    from hat.config import load_yaml
    meta = load_yaml(subnet_yaml)
    return {"name": f"HAT@{budget_ms:g}ms", "budget_ms": budget_ms,
            "predicted_ms": meta.get("predicted_latency_ms"), "measured_ms": meas.get("latency_ms"),
            "params": meta.get("params"), "valid_loss_inherited": meta.get("valid_loss"), "subnet": str(subnet_yaml)}


def export_kept(lay: Layout, checkpoint: str) -> dict:
    """Export ``checkpoint`` to ONNX with the data's dictionaries (checked against PyTorch)."""
    from hat.export.model_export import export_model
    from hat.translate import load_any_model
    export_model(load_any_model(checkpoint), "onnx", lay.onnx_dir, data=lay.data_bin)
    return {"onnx_dir": str(lay.onnx_dir)}


def run_quickstart(settings: QuickstartSettings, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) every stage; writes ``summary.json`` and returns it.

    Raises:
        HatError: missing or malformed Multi30k data, or any stage's user error.
    """
    w, preset, threads = settings.workdir, PRESETS[settings.preset], settings.threads
    lay = Layout(w)
    st = steps.Stages(w, log=log)
    st.stage("prepare", lambda: steps.prepare_multi30k(lay.data_bin, preset.bpe_vocab, settings.data_dir, w, threads,
                                                       preset.max_train_lines))
    vocab_size = steps.target_vocab_size(lay.data_bin)
    st.stage("train_supernet", lambda: train_supernet(lay, preset, threads, log))
    st.stage("profile", lambda: steps.profile_latency(SPACE, DEVICE, vocab_size, preset.profile_samples,
                                                      preset.profile_runs, lay.latency_csv, log))
    fit = st.stage("predictor", lambda: steps.fit_latency_predictor(lay.latency_csv, DEVICE, SPACE, lay.predictor,
                                                                     report_dir=w, log=log))
    # percentiles of the predicted latencies of the profiled configs: what the search compares with its budgets
    asked_ms = st.stage("budgets_predicted", lambda: steps.latency_budgets(lay.latency_csv,
                                                                           predictor=lay.predictor))["budgets_ms"]
    found = st.stage("search", lambda: steps.search_subnets(
        lay.supernet, DEVICE, lay.predictor, lay.data_bin, lay.search_dir, steps.search_settings(
            preset.search_population, preset.search_iterations, preset.valid_subset, preset.search_parents,
            preset.search_mutations, preset.search_crossovers), w / "search_settings.yaml", asked_ms, log))["subnets"]
    budgets = sorted(float(b) for b in found)  # the search's own (a workdir searched before budgets_predicted)
    rows = [result_row(b, found[str(b)], st.stage(f"measure_{b}ms", lambda b=b: steps.measure_latency(
        found[str(b)], DEVICE, SPACE, vocab_size))) for b in budgets]
    kept = kept_budget(found)
    ft = st.stage("keep", lambda: keep_model(lay, preset, threads, found[kept], log))
    score = st.stage("bleu_kept", lambda: steps.score_bleu(ft["checkpoint"], lay.data_bin, lay.kept_dir, preset.beam,
                                                           threads, preset.test_sentences or 0))
    st.stage("export", lambda: export_kept(lay, ft["checkpoint"]))
    summary = {"preset": settings.preset, "workdir": str(w), "budgets_ms": budgets, "models": rows,
               "predictor_cv": {k: fit["report"].get(k) for k in ("mape", "kendall_tau", "n")},
               "kept": {**next(r for r in rows if r["budget_ms"] == float(kept)), "checkpoint": ft["checkpoint"],
                        "finetune_updates": ft.get("updates"), "valid_loss": ft.get("valid_loss"),
                        "bleu": score["sacrebleu"], "tokenized_bleu": score["tokenized_bleu"],
                        "signature": score["signature"], "loop_share": score["loop_share"],
                        "loop_share_refs": score["loop_share_refs"]}}
    atomic_write(w / "summary.json", json.dumps(summary, indent=1))
    return summary


def format_summary(summary: dict) -> str:
    """The summary table (searched models: budget, predicted and measured latency, params, inherited validation
    loss), the kept model's BLEU and loop share, the predictor's CV metrics, where the plots are, and the commands
    that deploy the kept model."""
    w = Path(summary["workdir"])
    head = f"{'model':<16}{'budget ms':>10}{'pred ms':>9}{'meas ms':>9}{'params':>10}{'val loss':>10}"
    lines = [head, "-" * len(head)]
    for r in summary["models"]:
        lines.append(f"{r['name']:<16}{r['budget_ms']:>10.2f}{(r['predicted_ms'] or 0):>9.2f}"
                     f"{(r['measured_ms'] or 0):>9.2f}{(r['params'] or 0):>10,}"
                     f"{(r['valid_loss_inherited'] or 0):>10.3f}")
    cv, k = summary.get("predictor_cv") or {}, summary["kept"]
    if cv.get("mape") is not None:
        lines.append(f"latency predictor: 5-fold CV MAPE {cv['mape']:.3f}, Kendall tau {cv['kendall_tau']:.2f} "
                     f"on {cv.get('n')} profiled SubTransformers")
    lines.append(f"kept {k['name']} (lowest inherited validation loss), fine-tuned {k['finetune_updates']} updates: "
                 f"SacreBLEU {k['bleu']:.2f} on test_2016_flickr; {100 * k['loop_share']:.1f}% of hypotheses loop "
                 f"(references {100 * k['loop_share_refs']:.1f}%)")
    lines.append(f"plots: {w / 'search' / 'front.png'} (loss/latency front), {w / 'predictor_scatter.png'} "
                 f"(5-fold cross-validated predicted vs measured latency); summary.json has the table")
    lines += ["what next:",
              f"  hat-translate --onnx {w / 'export_onnx'} --input my_text.de   # translate with the kept model",
              f"  hat-export --checkpoint {k['checkpoint']} --format onnx --quantize int8 --data {w / 'data-bin'} "
              f"--out {w / 'export_onnx_int8'}   # smaller and faster on CPU",
              f"  hat-search --supernet {w / 'supernet' / 'checkpoint_best.pt'} --device cpu --latency 10ms "
              f"--data {w / 'data-bin'} --predictor {w / 'predictor_cpu.pt'}   # another budget"]
    return "\n".join(lines)
