"""HAT's latency measurement protocol: what is timed, how often, and how the runs are summarised.

One measurement of a SubTransformer (HAT, Wang et al. 2020, Sec. 4 / their ``latency_dataset.py``):

* batch 1, a source sentence of ``src_len`` (30; IWSLT: 23) random in-vocabulary tokens drawn from a seeded RNG;
* **encoder latency** = one encoder forward (embeddings included). Our ONNX/eager encoders also compute the
  decoder's cross-attention K/V projections of the encoder states (computed once per sentence; see
  :mod:`hat.export.onnx`), so both backends time the same work;
* **decoder latency** = the full incremental loop of ``tgt_len`` (30; IWSLT: 23) steps with a K/V cache, decoder
  batch = ``beam`` (5) rows (the encoder output repeated per beam), embeddings and the output projection to the
  vocabulary included. Tokens fed are random, precomputed: no top-k / beam bookkeeping is timed;
* ``warmup`` untimed runs, then ``repeats`` timed runs; the slowest and fastest ``trim`` fraction (10 % each) are
  dropped, and the mean and std of the rest reported (ms);
* ``time.perf_counter_ns`` on CPU; CUDA events + ``torch.cuda.synchronize`` on GPU;
* intra-op threads pinned (``torch.set_num_threads`` / ORT ``intra_op_num_threads``) and recorded.

Our additions for machines that are not idle (all recorded in the CSV's provenance columns):

* ``timer``: ``wall`` (HAT's ``perf_counter``), ``thread_cpu`` (``time.thread_time_ns``: CPU time of the calling
  thread, so time spent descheduled by other jobs is not counted) or ``process_cpu`` (``time.process_time_ns``: CPU
  time of every thread of the measuring process; for runtimes that compute on a thread pool of their own, such as
  CTranslate2, measured by a runner process that does nothing else). ``thread_cpu`` is only valid where the runtime
  computes on the calling thread: 1 intra-op thread and no inter-op pool, CPU only; ``process_cpu`` where the runtime
  declares it (1 intra-op thread, CPU). Each backend class lists its timers (``Backend.timers``). Checked empirically for ONNX
  Runtime (``intra_op_num_threads=1``, ``inter_op_num_threads=1``, sequential mode: its extra threads stay idle; thread
  CPU = process CPU = wall time on an idle core) and PyTorch eager (``set_num_threads(1)``); with 2 intra-op threads
  the thread clock misses half the work. :func:`check_timer` refuses the other cases, and every ``thread_cpu``
  measurement also checks that the other threads of the process used < 10 % of the calling thread's CPU time;
* ``estimator``: what fills the latency columns: ``trimmed_mean`` (HAT's), ``median`` or ``min`` (min-of-k);
* ``interleave``: configs measured together in rounds (each round times every config of the chunk once), so load
  bursts and drift spread over configs instead of landing on a few; rows are written when their chunk completes;
* ``drift_every``: the profiler re-measures a reference config every this many configs and warns when it moved by
  more than ``drift_tolerance``.

``device_profiling/runner.py`` reimplements :func:`trimmed_stats`, the timers and the interleaved loop with the stdlib
only (it runs on devices without hat); keep the two in step.
"""

from __future__ import annotations

import datetime
import os
import platform
import random
import socket
import statistics
from dataclasses import dataclass

from hat.errors import ConfigError

TIMERS = ("wall", "thread_cpu", "process_cpu")
ESTIMATORS = ("trimmed_mean", "median", "min")
# Largest share of the calling thread's CPU time that other threads of the process may use in a thread_cpu
# measurement before it is refused (the runtime computed elsewhere, so the thread clock missed work).
THREAD_CPU_MAX_OTHER = 0.10


@dataclass
class ProfileSettings:
    """How one SubTransformer is measured (defaults = HAT's WMT protocol)."""

    batch_size: int = 1  # sentences per encoder call
    src_len: int = 30  # source tokens (HAT: 30 WMT, 23 IWSLT)
    tgt_len: int = 30  # incremental decoder steps (HAT: 30 WMT, 23 IWSLT)
    beam: int = 5  # decoder rows per sentence (decoder batch = batch_size * beam)
    vocab_size: int = 10000  # random-init models: embedding rows and output-projection width
    warmup: int = 5  # untimed runs before timing
    repeats: int = 20  # timed runs
    trim: float = 0.1  # fraction dropped at each end (slowest and fastest) before mean/std
    seed: int = 0  # token RNG and random weights
    threads: int = 1  # intra-op threads (torch.set_num_threads / ORT intra_op_num_threads)
    timer: str = "wall"  # wall (perf_counter) | thread_cpu (thread_time: descheduled time not counted)
    estimator: str = "trimmed_mean"  # which statistic fills the latency columns: trimmed_mean | median | min
    interleave: int = 1  # configs measured together in rounds (1: one after another, as HAT)
    drift_every: int = 50  # re-measure a reference config every this many configs (0: never)
    drift_tolerance: float = 0.05  # warn when the reference moved by more than this fraction

    def __post_init__(self):
        if self.timer not in TIMERS:
            raise ConfigError(f"profile settings: timer must be one of {', '.join(TIMERS)}, got '{self.timer}'")
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"profile settings: estimator must be one of {', '.join(ESTIMATORS)}, "
                              f"got '{self.estimator}'")
        if self.drift_every < 0 or self.drift_tolerance <= 0:
            raise ConfigError("profile settings: drift_every must be >= 0 and drift_tolerance > 0")
        for name in ("batch_size", "src_len", "tgt_len", "beam", "vocab_size", "repeats", "threads", "interleave"):
            if getattr(self, name) < 1:
                raise ConfigError(f"profile settings: {name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ConfigError(f"profile settings: warmup must be >= 0, got {self.warmup}")
        if not 0.0 <= self.trim < 0.5:
            raise ConfigError(f"profile settings: trim must be in [0, 0.5), got {self.trim}")
        if self.vocab_size < 4:
            raise ConfigError("profile settings: vocab_size must be >= 4 (special symbols 0-3)")

    @classmethod
    def hat(cls, task: str = "wmt", **overrides) -> "ProfileSettings":
        """HAT's protocol for ``task`` ``'wmt'`` (30 tokens) or ``'iwslt'`` (23 tokens)."""
        lengths = {"wmt": 30, "iwslt": 23}
        if task not in lengths:
            raise ConfigError(f"unknown task '{task}' for HAT settings: expected wmt or iwslt")
        return cls(**{"src_len": lengths[task], "tgt_len": lengths[task], **overrides})

    def source_tokens(self) -> list[list[int]]:
        """The seeded random source sentence(s): ``batch_size`` rows of ``src_len`` ids in ``[4, vocab_size)``
        (ids 0-3 are fairseq's special symbols; no padding, no EOS: latency does not depend on the ids)."""
        rng = random.Random(self.seed)
        return [[rng.randrange(4, self.vocab_size) for _ in range(self.src_len)] for _ in range(self.batch_size)]

    def target_tokens(self) -> list[list[int]]:
        """Decoder input ids per step: ``tgt_len`` lists of ``batch_size * beam`` ids (step 0 = EOS, fairseq's
        decoder start symbol)."""
        rng = random.Random(self.seed + 1)
        rows = self.batch_size * self.beam
        return [[2] * rows] + [[rng.randrange(4, self.vocab_size) for _ in range(rows)]
                               for _ in range(self.tgt_len - 1)]

    def to_json_dict(self) -> dict:
        """Plain dict (for the remote runner's job file)."""
        from dataclasses import asdict
        return asdict(self)


def trimmed_stats(samples_ms: list[float], trim: float = 0.1) -> tuple[float, float]:
    """Mean and (population) std in ms after dropping the ``trim`` fraction of slowest and fastest samples.

    With few samples nothing is dropped from an end that would hold less than one sample.
    """
    if not samples_ms:
        raise ValueError("no latency samples")
    xs = sorted(samples_ms)
    k = int(len(xs) * trim)
    if len(xs) - 2 * k >= 1:
        xs = xs[k:len(xs) - k]
    mean = sum(xs) / len(xs)
    var = sum((x - mean) ** 2 for x in xs) / len(xs)
    return mean, var ** 0.5


def summarize(samples_ms: list[float], estimator: str = "trimmed_mean", trim: float = 0.1) -> tuple[float, float]:
    """``(latency, spread)`` in ms of one config's timed runs.

    ``latency`` is the ``estimator`` (``trimmed_mean``: HAT's; ``median``; ``min``: min-of-k, the run least disturbed
    by other work); ``spread`` is always the trimmed std (HAT's std column), whatever the estimator.
    """
    mean, std = trimmed_stats(samples_ms, trim)
    if estimator == "trimmed_mean":
        return mean, std
    if estimator == "median":
        return statistics.median(samples_ms), std
    if estimator == "min":
        return min(samples_ms), std
    raise ConfigError(f"unknown estimator '{estimator}': expected one of {', '.join(ESTIMATORS)}")


def check_timer(timer: str, threads: int, accelerator: str = "cpu", runtime: str = "onnxruntime",
                where: str = "") -> None:
    """Refuse a timer ``runtime`` cannot use (see the module docstring); its backend class decides
    (:meth:`hat.latency.backends.base.Backend.check_timer`).

    Raises:
        ConfigError: one line naming the reason.
    """
    from hat.latency.runtimes import backend_class
    backend_class(runtime, where or "profile settings").check_timer(timer, threads, accelerator, where)


def cpu_model() -> str:
    """CPU model name (``/proc/cpuinfo``; falls back to ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info(runtime_version: str = "") -> str:
    """One-line description of the measuring machine: hostname, CPU model, cores, Python and runtime versions."""
    parts = [socket.gethostname(), cpu_model(), f"{os.cpu_count()} cores", f"python {platform.python_version()}"]
    if runtime_version:
        parts.append(runtime_version)
    return "; ".join(parts)


def utc_timestamp() -> str:
    """Current time, ISO 8601 UTC, seconds."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
