"""Experiment pipelines: resumable stages, jobs shared between processes, and the typed steps of HAT's workflow.

A pipeline is a workdir of stages. A finished stage leaves ``<workdir>/.stages/<name>.json`` (its result) and is
skipped on the next run; an interrupted one resumes from its own checkpoint, CSV or log. :class:`Stages` runs one
stage; :class:`JobRunner` lets several processes started with the same command share a list of :class:`Job` s
(claims, needs, pausing the others while latency is measured). The steps (prepare, train, profile, fit, budgets,
search, score, measure) are functions of explicit arguments that call the library, the same functions the ``hat-*``
CLIs call; :mod:`hat.quickstart` and ``scripts/reproduce_multi30k.py`` are both recipes of these steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from hat.errors import HatError
from hat.io import atomic_write

Log = Callable[[str], None]


# ----- stages and jobs -----

def finished_stages(workdir: str | os.PathLike, pattern: str = "*") -> dict[str, dict]:
    """``{stage name: result}`` of a workdir's finished stages whose name matches the glob ``pattern`` (read from
    ``.stages/<name>.json``; an empty dict when there are none, or no workdir)."""
    return {p.stem: json.loads(p.read_text())
            for p in sorted((Path(workdir) / ".stages").glob(f"{pattern}.json"))}


class Stages:
    """Runs a workdir's stages, skipping those already finished (their result JSON exists).

    Attributes:
        workdir: the pipeline's folder (``.stages/`` holds the results).
        log: gets one line as each stage starts, is skipped and finishes.
    """

    def __init__(self, workdir: str | os.PathLike, log: Log = print):
        self.workdir = Path(workdir)
        self.log = log
        (self.workdir / ".stages").mkdir(parents=True, exist_ok=True)

    def marker(self, name: str) -> Path:
        """Where stage ``name`` records its result once finished."""
        return self.workdir / ".stages" / f"{name}.json"

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


@dataclass(frozen=True)
class Job:
    """One job of a shared job list: ``name`` is its stage (``.stages/<name>.json`` once finished), ``needs`` the
    stages that must have finished before it can start."""

    name: str
    needs: tuple[str, ...]
    fn: Callable[[], object]


def send_signal(pids: Sequence[int], sig: int) -> list[int]:
    """Send ``sig`` to each of ``pids``; returns those that still existed."""
    sent = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            sent.append(pid)
    return sent


def process_identity(pid: int) -> str:
    """``"<pid> <start time>"`` (clock ticks since boot, ``/proc/<pid>/stat`` field 22): it names one process even
    after its pid is reused. Just the pid where ``/proc`` cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return str(pid)
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"  # the name in parentheses may hold spaces


class JobRunner:
    """Several processes started with the same command share a workdir's jobs.

    Each process takes the first job that is not done, whose needs are done and that no other live process has
    claimed (``.stages/<name>.claim``, created exclusively, holding the pid); it waits only when no job is free.
    Each live process holds ``<workdir>/train.<pid>.pid``, so one that measures latency can pause the others.

    Args:
        stages: the workdir's :class:`Stages`.
        done: whether a job name counts as finished (default: its stage result exists).
        process_tag: a string in the command line of this pipeline's processes (a recycled pid is not one).
        poll_s: how often a process with no free job looks again.
    """

    def __init__(self, stages: Stages, done: Optional[Callable[[str], bool]] = None, process_tag: str = "",
                 poll_s: float = 30):
        self.stages = stages
        self.done = done or (lambda name: stages.result(name) is not None)
        self.process_tag = process_tag or Path(sys.argv[0]).stem
        self.poll_s = poll_s

    def alive(self, pid: str) -> bool:
        """Whether ``pid`` is a running process of this pipeline (its command line holds ``process_tag``)."""
        try:
            return self.process_tag in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False

    def holder_alive(self, holder: str) -> bool:
        """Whether a claim's holder (``"<pid> <start time>"``, :func:`process_identity`) still runs: a recycled pid
        has another start time, also when the new process is one of this pipeline's (seen: a sitting's workers
        got the pids of the previous sitting's, and a claim left behind looked held). A bare pid (an older claim)
        is checked by :meth:`alive` alone."""
        pid, _, start = holder.partition(" ")
        return bool(pid) and self.alive(pid) and (not start or process_identity(int(pid)) == holder)

    def claim(self, name: str) -> bool:
        """Take job ``name`` for this process; a claim whose process is gone (an interrupted sitting) is taken
        over."""
        path = self.stages.workdir / ".stages" / f"{name}.claim"
        me = process_identity(os.getpid())
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = path.read_text().strip() if path.is_file() else ""
                if holder == me:
                    return True
                if self.holder_alive(holder):
                    return False
                path.unlink(missing_ok=True)  # stale: its process ended
                continue
            with os.fdopen(fd, "w") as f:
                f.write(me)
            return True
        return False

    def run_jobs(self, jobs: Callable[[], list[Job]]) -> None:
        """Run jobs until all are done. ``jobs()`` returns them in priority order; it is called again after each
        job (later jobs may exist only once earlier ones ran, e.g. the searched models after the search)."""
        waited = 0
        while True:
            todo = [j for j in jobs() if not self.done(j.name)]
            if not todo:
                return
            for job in todo:
                if all(self.done(n) for n in job.needs) and self.claim(job.name):
                    try:
                        job.fn()
                    finally:
                        (self.stages.workdir / ".stages" / f"{job.name}.claim").unlink(missing_ok=True)
                    waited = 0
                    break
            else:
                if waited % 600 == 0:
                    self.stages.log(f"waiting for the other processes: {', '.join(j.name for j in todo)}")
                time.sleep(self.poll_s)
                waited += self.poll_s

    def other_pids(self) -> list[int]:
        """The live processes of this workdir other than this one (from their ``train.<pid>.pid`` files)."""
        pids = {f.read_text().strip() for f in self.stages.workdir.glob("train.*.pid")}
        return sorted(int(p) for p in pids if p and p != str(os.getpid()) and self.alive(p))

    @contextlib.contextmanager
    def others_paused(self) -> Iterator[list[int]]:
        """Stop the other processes (SIGSTOP) for the body, continue them (SIGCONT) after, also on error: latency is
        never measured while this pipeline trains, and paused trainings lose no work. Yields their pids."""
        stopped: list[int] = []
        try:
            for pid in self.other_pids():  # one at a time: an error midway still continues those already stopped
                stopped += send_signal([pid], signal.SIGSTOP)
            yield stopped
        finally:
            send_signal(stopped, signal.SIGCONT)

    def run_all(self, jobs: Callable[[], list[Job]]) -> None:
        """:meth:`run_jobs` as one of the workdir's processes (holding its pid file meanwhile)."""
        lock = self.stages.workdir / f"train.{os.getpid()}.pid"
        lock.write_text(str(os.getpid()))
        # a process that paused the others may have been killed before continuing them
        send_signal(self.other_pids(), signal.SIGCONT)
        try:
            self.run_jobs(jobs)
        finally:
            lock.unlink(missing_ok=True)


def stage_totals(workdir: str | os.PathLike) -> dict:
    """The compute behind a workdir. ``wall_seconds``: the finished stages' seconds as their markers record them
    (a stage that was interrupted counts only its last sitting). ``train_seconds``: every training's update time
    summed from its ``train_log.jsonl`` (tokens / words-per-second of each logged interval, every sitting;
    validation and scoring excluded)."""
    stages = finished_stages(workdir)
    train = 0.0
    for log in Path(workdir).rglob("train_log.jsonl"):
        for line in log.read_text().splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("type") == "train" and row.get("wps"):
                train += row["ntokens"] / row["wps"]
    return {"stages": len(stages), "wall_seconds": round(sum(d.get("seconds", 0.0) for d in stages.values()), 1),
            "train_seconds": round(train, 1)}


# ----- steps: each returns the JSON-able result recorded in .stages/<name>.json -----

MULTI30K_PAIR = ("de", "en")


def find_multi30k(data_dir: Optional[str], workdir: str | os.PathLike) -> dict:
    """``{split: path prefix}`` of Multi30k de-en raw files: from ``data_dir``; else a local copy
    (:func:`hat.data.multi30k.local_multi30k`: ``$HAT_MULTI30K_DIR``, the project's shared data beside the
    checkout) or one already downloaded into ``workdir/raw``; else downloaded there."""
    from hat.data import multi30k
    if not data_dir:
        data_dir = multi30k.local_multi30k(MULTI30K_PAIR)
        if data_dir is None:
            data_dir = multi30k.download_multi30k(Path(workdir) / "raw", langs=MULTI30K_PAIR)
    return multi30k.find_multi30k(data_dir, MULTI30K_PAIR)


def prepare_multi30k(data_bin: Path, bpe_vocab: int, data_dir: Optional[str], workdir: Path, threads: int = 1,
                     max_train_lines: Optional[int] = None) -> dict:
    """Joint sentencepiece BPE and fairseq binarization of Multi30k de-en (train, val, test_2016_flickr)."""
    from hat.data.preprocess import PreprocessSettings, preprocess
    raw = find_multi30k(data_dir, workdir)
    src, tgt = MULTI30K_PAIR
    preprocess(PreprocessSettings(src=src, tgt=tgt, trainpref=str(raw["train"]), validpref=str(raw["val"]),
                                  testpref=str(raw["test_2016_flickr"]), destdir=str(data_bin),
                                  bpe_vocab=bpe_vocab, max_train_lines=max_train_lines or None, threads=threads),
               log=None)
    return {"data_bin": str(data_bin), "raw": {k: str(v) for k, v in raw.items()}}


def target_vocab_size(data_bin: Path, lang: str = MULTI30K_PAIR[1]) -> int:
    """Size of the target dictionary of a binarized data directory."""
    from hat.data import Dictionary
    return len(Dictionary.load(Path(data_bin) / f"dict.{lang}.txt"))


def train_model(task: str, save_dir: Path, overrides: Sequence[str] = (), progress: bool = False, **fields):
    """Train with task YAML ``task`` + ``overrides`` (``key=value``) + ``fields`` (``data=``, ``max_update=``,
    ``subnet=``, ...) into ``save_dir``, continuing its ``checkpoint_last.pt``. Returns the
    :class:`hat.train.trainer.TrainResult`."""
    from hat.train.config import load_train_config
    from hat.train.trainer import train
    cfg = load_train_config(task, list(overrides), save_dir=str(save_dir), **fields)
    return train(cfg, resume=(Path(save_dir) / "checkpoint_last.pt").is_file(), progress=progress)


def profile_latency(space_name: str, device_name: str, vocab_size: int, samples: int, repeats: int, csv: Path,
                    log: Log = print, on_warning: Optional[Log] = None) -> dict:
    """Measure ``samples`` SubTransformers of the widened space on ``device_name`` (1 thread, the device's timer,
    estimator and interleaving) into ``csv``; resumes from the rows already there. Load averages are recorded;
    warnings (e.g. a noisy measurement) go to ``on_warning`` (default: one line on stderr)."""
    from hat.latency.devices import load_device
    from hat.latency.profiler import profile_dataset
    from hat.latency.protocol import ProfileSettings
    from hat.space import load_space
    device = load_device(device_name)
    device.threads = 1
    # The real vocabulary size, so the output projection costs what it will cost in deployment.
    settings = ProfileSettings(vocab_size=vocab_size, repeats=repeats, threads=1)
    before = os.getloadavg()
    if on_warning is None:
        def on_warning(m: str) -> None:
            print(f"profile: warning: {m}", file=sys.stderr, flush=True)
    configs, records = profile_dataset(load_space(space_name), device, settings, samples, str(csv), widen=True,
                                       resume=True, log=log, on_warning=on_warning)
    log(f"measured {len(records)} SubTransformers ({len(configs) - len(records)} already there) -> {csv}")
    return {"csv": str(csv), "device": device_name, "loadavg_before": before, "loadavg_after": os.getloadavg()}


def fit_latency_predictor(csv: Path, device_name: str, space_name: str, out: Path,
                          report_dir: Optional[Path] = None, log: Log = print) -> dict:
    """Fit the latency predictor on ``csv`` (5-fold CV metrics kept in the file); with ``report_dir``, also its
    ``predictor_cv.json`` and ``predictor_scatter.png`` (out-of-fold predictions, not the training rows)."""
    import torch

    from hat.predictor import DEFAULT_MODEL, fit_predictor
    from hat.predictor.evaluate import read_latency_csvs, write_cv_report
    from hat.space import load_space
    torch.set_num_threads(1)  # the predictor is tiny; as hat-predictor fit
    pred = fit_predictor(read_latency_csvs([str(csv)]), device_name, load_space(space_name), DEFAULT_MODEL, seed=0,
                         sources=[str(csv)], cv_folds=5)
    pred.save(str(out))
    result = {"predictor": str(out), "cv": pred.heldout_metrics}
    if report_dir is not None:
        report = write_cv_report(pred, out, [csv], report=report_dir / "predictor_cv.json",
                                 plot=report_dir / "predictor_scatter.png")
        result["report"] = {k: v for k, v in report.items() if k != "cv"}  # the rows stay in the file
    if pred.heldout_metrics:
        m = pred.heldout_metrics
        log(f"{out}: {pred.model_kind}/{pred.feature_kind}; {pred.metrics_split} held-out mape "
            f"{m.get('mape', float('nan')):.4f}, kendall_tau {m.get('kendall_tau', float('nan')):.3f}")
    return result


def latency_budgets(csv: Path, quantiles: Sequence[float] = (0.25, 0.5, 0.75),
                    predictor: Optional[Path] = None) -> dict:
    """Latency budgets at ``quantiles`` (default: 25th, 50th, 75th percentile) of the profiled SubTransformers'
    measured latencies, or with ``predictor`` of their predicted ones: the latencies the search compares with its
    budgets. Those budgets are always feasible for the search, however noisy the profile was (on a busy machine a
    measured 25th percentile fell below the fastest prediction in the space, and the search refused it)."""
    from hat.latency.records import read_latency_csv
    records = read_latency_csv(csv)
    if not records:
        raise HatError(f"{csv}: no latency rows to choose budgets from")
    if predictor is None:
        lat = sorted(r.latency_ms for r in records)
    else:
        from hat.predictor import load_predictor
        lat = sorted(float(x) for x in load_predictor(predictor).predict_records(records))
    picked = [lat[int(round(f * (len(lat) - 1)))] for f in quantiles]
    if predictor is None:
        return {"budgets_ms": [round(x, 2) for x in picked]}
    # rounded up: a budget rounded below the prediction it came from could exclude that very config
    return {"budgets_ms": [math.ceil(x * 100) / 100 for x in picked], "source": "predicted"}


def search_settings(population: int, iterations: int, valid_subset: Optional[int] = None,
                    parents: Optional[int] = None, mutations: Optional[int] = None,
                    crossovers: Optional[int] = None):
    """``configs/search/fast.yaml``'s settings with this population and iteration count (parents a quarter of the
    population, mutations and crossovers 3/8 each unless given)."""
    from hat.search import load_settings
    s = dataclasses.replace(
        load_settings("fast"), population_size=population, iterations=iterations,
        parent_size=population // 4 if parents is None else parents,
        mutation_size=population * 3 // 8 if mutations is None else mutations,
        crossover_size=population * 3 // 8 if crossovers is None else crossovers)
    if valid_subset is not None:
        s.valid_subset = valid_subset
    return s


def search_subnets(supernet: str, device_name: str, predictor: Path, data_bin: Path, out: Path, settings,
                   settings_file: Path, budgets_ms: Sequence[float], log: Log = print) -> dict:
    """One search over ``budgets_ms`` (``settings`` written to ``settings_file`` and validated from it); resumes from
    the search log. Returns ``{"subnets": {budget: subnet yaml}}``."""
    from hat.config import dump_yaml
    from hat.search import budget_subnet_filename, load_settings
    from hat.search.run import SearchJob, run_search
    dump_yaml(dataclasses.asdict(settings), settings_file)
    settings = load_settings(str(settings_file))  # validated, as the file records it
    done = run_search(SearchJob(
        supernet=str(supernet), device=device_name, settings=settings, budgets_ms=sorted(float(b) for b in budgets_ms),
        predictor=str(predictor), data=str(data_bin), out=str(out), seed=1, progress=False,
        resume=(Path(out) / "search_log.jsonl").is_file()))
    for line in done.summary_lines():
        log(line)
    return {"subnets": {str(b): str(Path(out) / budget_subnet_filename(b)) for b in budgets_ms}}


def score_bleu(checkpoint: str | os.PathLike, data_bin: Path, out_dir: Path, beam: int = 5, threads: int = 1,
               max_sentences: int = 0, max_len_a: float = 0.0, max_len_b: int = 200) -> dict:
    """Translate test_2016_flickr with beam search and score it: SacreBLEU (with signature), tokenized BLEU and the
    share of hypotheses caught in a loop next to the references' (:func:`hat.score.loop_share`). The default length
    limit is fairseq-generate's (max_len_a 0, max_len_b 200): loops are not cut short. Hypotheses and references go
    to ``out_dir/test.hyp`` and ``test.ref``."""
    from hat.score import loop_share, sacrebleu_corpus, tokenized_bleu
    from hat.translate import translate_checkpoint
    done = translate_checkpoint(str(checkpoint), str(data_bin), subset="test", beam=beam, batch_size=32,
                                max_len_a=max_len_a, max_len_b=max_len_b, threads=threads, max_sentences=max_sentences)
    if done.refs is None:
        raise HatError(f"test has no target side in {data_bin}: nothing to score")
    atomic_write(Path(out_dir) / "test.hyp", "".join(line + "\n" for line in done.hyps))
    atomic_write(Path(out_dir) / "test.ref", "".join(line + "\n" for line in done.refs))
    sacre, line, signature = sacrebleu_corpus(done.hyps, done.refs)
    return {"sacrebleu": round(sacre, 2), "signature": signature, "sacrebleu_line": line,
            "tokenized_bleu": round(tokenized_bleu(done.hyps, done.refs).score(), 2), "sentences": len(done.hyps),
            "loop_share": round(loop_share(done.hyps), 4), "loop_share_refs": round(loop_share(done.refs), 4),
            "max_len_a": max_len_a, "max_len_b": max_len_b}


def measure_latency(subnet_yaml: str | os.PathLike, device_name: str, space_name: str, vocab_size: int,
                    repeats: int = 10) -> dict:
    """Latency of one SubTransformer on ``device_name`` with HAT's protocol and the device's estimator (the
    statistic its profiler, and so its predictor, use)."""
    from hat.latency.backends import get_backend
    from hat.latency.devices import load_device
    from hat.latency.protocol import ProfileSettings
    from hat.space import SubnetConfig, load_space
    cfg = SubnetConfig.load_yaml(subnet_yaml)
    device = load_device(device_name)
    device.threads = 1
    settings = ProfileSettings(vocab_size=vocab_size, repeats=repeats, threads=1)
    backend = get_backend(device, settings, qkv_dim=load_space(space_name).qkv_dim)
    enc, dec, enc_std, dec_std = backend.measure(cfg).stats(backend.settings.trim, backend.settings.estimator)
    return {"encoder_ms": enc, "decoder_ms": dec, "latency_ms": enc + dec, "std_ms": [enc_std, dec_std],
            "estimator": backend.settings.estimator}
