#!/usr/bin/env python3
"""Latency runner for exported SubTransformers: Python 3 stdlib + numpy + the runtime's package only (no torch).

It runs on the measuring device (a Raspberry Pi over SSH, or this machine in a process of its own for the local
``onnxruntime`` and ``ctranslate2`` runtimes) and implements HAT's timing protocol (see ``hat/latency/protocol.py``):

* ``runtime: onnxruntime`` (default; needs onnxruntime and hat's torch-free runtime, ``hat/runtime``, which travels
  beside this file): the files written by ``hat.export.onnx.export_onnx`` (``encoder.onnx``, ``decoder_step.onnx``,
  ``meta.json``): one encoder pass, then hat's whole beam search (``beam`` rows) with the length forced to exactly
  ``tgt_len`` decoder steps, as the runtime ships it;
* ``runtime: ctranslate2`` (needs ctranslate2): a CTranslate2 model directory (``model.bin``, ``config.json``,
  vocabularies, and hat's ``meta.json`` with the vocabulary size). CTranslate2 has no encoder-only call: one run is
  its whole beam search (``beam`` rows, exactly ``tgt_len`` decoder steps: the length is forced), and the encoder
  column is a greedy one-step decode of the same source (encoder + one decoder step); the decoder column is the
  whole search minus that, per run, so the two add up to the whole decode.

Usage::

    python3 runner.py jobs.json

``jobs.json``::

    {"settings": {"runtime": "onnxruntime", "batch_size": 1, "src_len": 30, "tgt_len": 30, "beam": 5,
                  "warmup": 5, "repeats": 20, "trim": 0.1, "seed": 0, "threads": 1, "vocab_size": 10000,
                  "timer": "wall", "interleave": 1, "quantize": "none"},
     "jobs": [{"id": "0", "dir": "cfg_0"}, ...]}           (dir relative to jobs.json)

``timer``: ``wall`` (``perf_counter_ns``), ``thread_cpu`` (``thread_time_ns``: time descheduled by other jobs is not
counted; ONNX Runtime with ``threads: 1`` only, and a run whose other threads used > 10 % of the measuring thread's
CPU time is refused) or ``process_cpu`` (``process_time_ns``: CPU time of every thread of this process, which does
nothing but the measurement; ``threads: 1``). ``interleave``: jobs are measured in chunks of this many, each round
timing every job of the chunk once. ``quantize: int8``: CTranslate2 computes in int8 (``compute_type``); ONNX
exports are quantized when written.

Output: one JSON object per line on stdout, flushed as each chunk finishes (so a dropped connection loses at most
the chunk in flight)::

    {"id": "0", "encoder_ms": [...], "decoder_ms": [...], "host": "...", "threads": 1, "runtime_version": "...",
     "timer": "wall"}
    {"id": "1", "error": "..."}
"""

import json
import os
import platform
import random
import socket
import sys
import time

import numpy as np

# hat's torch-free runtime travels beside this file (the job folder holds hat/runtime); the repository's copy when
# imported from device_profiling/.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ort = None  # onnxruntime, imported on first use: a CTranslate2-only device need not have it


def _ort():
    global ort
    if ort is None:
        import onnxruntime
        ort = onnxruntime
    return ort


def trimmed_stats(samples_ms, trim=0.1):
    """Mean and std after dropping the ``trim`` fraction at each end (same as hat.latency.protocol)."""
    xs = sorted(samples_ms)
    k = int(len(xs) * trim)
    if len(xs) - 2 * k >= 1:
        xs = xs[k:len(xs) - k]
    mean = sum(xs) / len(xs)
    return mean, (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5


def source_tokens(settings, vocab_size):
    """Seeded random source ids in [4, vocab) (same draw as ProfileSettings.source_tokens)."""
    rng = random.Random(settings["seed"])
    return [[rng.randrange(4, vocab_size) for _ in range(settings["src_len"])] for _ in range(settings["batch_size"])]


TIMERS = {"wall": time.perf_counter_ns, "thread_cpu": time.thread_time_ns, "process_cpu": time.process_time_ns}
THREAD_CPU_MAX_OTHER = 0.10  # same as hat.latency.protocol


class Loop:
    """HAT's timed run of one ONNX export as hat's runtime ships it: the encoder, then its whole beam search
    (:class:`hat.runtime.OnnxTranslator`: decoder steps, log-softmax and top-k in the graph, beam bookkeeping in
    numpy) with the length forced to ``tgt_len`` decoder steps (EOS banned before the last one, forced at it)."""

    def __init__(self, model_dir, settings):
        from hat.runtime.onnx import OnnxTranslator
        from hat.runtime.beam_search import BeamSearch
        self.tr = OnnxTranslator(model_dir, beam_size=int(settings["beam"]), threads=int(settings["threads"]))
        steps, tr = int(settings["tgt_len"]), self.tr
        self.search = BeamSearch(beam_size=int(settings["beam"]), pad=tr.pad, eos=tr.eos, max_len_a=0.0,
                                 max_len_b=steps - 1, min_len=steps - 1, max_len=steps + 1)
        self.src = np.asarray(source_tokens(settings, int(tr.meta["src_vocab_size"])), dtype=np.int64)
        self.lengths = np.full(self.src.shape[0], self.src.shape[1], dtype=np.int64)
        self.clock = TIMERS[settings.get("timer", "wall")]

    def run_once(self):
        """``(encoder_ms, decoder_ms)`` of one run."""
        clock, tr = self.clock, self.tr
        t0 = clock()
        enc = tr.encode(self.src, self.lengths)
        t1 = clock()
        state = tr.initial_state(enc, self.search.beam_size)  # beam expansion is decoder-side work (fairseq's too)
        self.search.search(self.src.shape[0], self.src.shape[1],
                           lambda tok, step, reorder, bias, k: tr.step_candidates(state, tok[:, -1:], step, reorder,
                                                                                  bias, k), tr.vocab_size)
        t2 = clock()
        return (t1 - t0) / 1e6, (t2 - t1) / 1e6


class Ct2Loop:
    """HAT's shape on CTranslate2: its whole beam search, ``beam`` rows, exactly ``tgt_len`` decoder steps (see the
    module docstring for the encoder column)."""

    def __init__(self, model_dir, settings):
        import ctranslate2
        with open(os.path.join(model_dir, "meta.json")) as f:
            meta = json.load(f)
        compute = "int8" if settings.get("quantize", "none") == "int8" else "float32"
        self.translator = ctranslate2.Translator(model_dir, device="cpu", compute_type=compute, inter_threads=1,
                                                 intra_threads=int(settings["threads"]))
        # latency models use the symbols of hat.export.ctranslate2.latency_symbols: id i >= 4 is "w<i>"
        self.src = [[f"w{i}" for i in row] for row in source_tokens(settings, int(meta["src_vocab_size"]))]
        self.beam, self.steps = int(settings["beam"]), int(settings["tgt_len"])
        self.clock = TIMERS[settings.get("timer", "wall")]

    def run_once(self):
        clock, tr = self.clock, self.translator
        t0 = clock()
        tr.translate_batch(self.src, beam_size=1, max_decoding_length=1, min_decoding_length=1)
        t1 = clock()
        tr.translate_batch(self.src, beam_size=self.beam, max_decoding_length=self.steps,
                           min_decoding_length=self.steps)
        t2 = clock()
        first = (t1 - t0) / 1e6
        return first, max((t2 - t1) / 1e6 - first, 1e-6)


LOOPS = {"onnxruntime": Loop, "ctranslate2": Ct2Loop}


def runtime_version(runtime):
    """``"<runtime> <version>"`` of the engine doing the measuring."""
    if runtime == "ctranslate2":
        import ctranslate2
        return f"ctranslate2 {ctranslate2.__version__}"
    return f"onnxruntime {_ort().__version__}"


def check_timer(settings):
    """Refuse a timer that would miss work: CPU clocks need one intra-op thread; thread_cpu needs a runtime that
    computes on the calling thread (ONNX Runtime)."""
    timer = settings.get("timer", "wall")
    runtime = settings.get("runtime", "onnxruntime")
    if runtime not in LOOPS:
        raise ValueError(f"runtime must be one of {', '.join(LOOPS)}, got {runtime!r}")
    if timer not in TIMERS:
        raise ValueError(f"timer must be one of {', '.join(TIMERS)}, got {timer!r}")
    if timer != "wall" and int(settings["threads"]) != 1:
        raise ValueError(f"timer {timer} is invalid with {settings['threads']} intra-op threads (they compute on "
                         f"worker threads); use timer wall or threads 1")
    if timer == "thread_cpu" and runtime != "onnxruntime":
        raise ValueError(f"timer thread_cpu is invalid with runtime {runtime} (it computes on a thread pool of its "
                         f"own); use timer process_cpu or wall")


def measure_many(model_dirs, settings):
    """Time the exported SubTransformers in ``model_dirs`` together: ``warmup`` then ``repeats`` rounds, each running
    every model once. Returns one ``(encoder_ms list, decoder_ms list)`` per model."""
    check_timer(settings)
    loop_class = LOOPS[settings.get("runtime", "onnxruntime")]
    loops = [loop_class(d, settings) for d in model_dirs]
    enc = [[] for _ in loops]
    dec = [[] for _ in loops]
    thread_cpu = settings.get("timer", "wall") == "thread_cpu"
    t0, p0 = time.thread_time_ns(), time.process_time_ns()
    for r in range(settings["warmup"] + settings["repeats"]):
        for i, loop in enumerate(loops):
            e, d = loop.run_once()
            if r >= settings["warmup"]:
                enc[i].append(e)
                dec[i].append(d)
    if thread_cpu:
        thread = time.thread_time_ns() - t0
        other = time.process_time_ns() - p0 - thread
        if thread > 0 and other > THREAD_CPU_MAX_OTHER * thread + 2_000_000:
            raise RuntimeError(f"timer thread_cpu is invalid: other threads used {other / thread:.0%} of the "
                               f"measuring thread's CPU time (the runtime computes off the calling thread); use "
                               f"timer wall")
    return list(zip(enc, dec))


def measure(model_dir, settings):
    """Time one exported SubTransformer: ``(encoder_ms list, decoder_ms list)``."""
    return measure_many([model_dir], settings)[0]


def host_info(runtime="onnxruntime"):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "; ".join([socket.gethostname(), cpu, f"{os.cpu_count()} cores", f"python {platform.python_version()}",
                      runtime_version(runtime)])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: runner.py jobs.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        spec = json.load(f)
    base = os.path.dirname(os.path.abspath(argv[0]))
    settings = spec["settings"]
    runtime = settings.get("runtime", "onnxruntime")
    try:
        host, version = host_info(runtime), runtime_version(runtime)
    except ImportError as e:
        for job in spec["jobs"]:
            sys.stdout.write(json.dumps({"id": job["id"], "error": f"runtime {runtime} is not installed: {e}"}) + "\n")
        return 0
    jobs = spec["jobs"]
    k = max(1, int(settings.get("interleave", 1)))
    for i in range(0, len(jobs), k):
        chunk = jobs[i:i + k]
        try:
            results = measure_many([os.path.join(base, job["dir"]) for job in chunk], settings)
            outs = [{"id": job["id"], "encoder_ms": e, "decoder_ms": d, "host": host,
                     "threads": settings["threads"], "runtime_version": version,
                     "timer": settings.get("timer", "wall")} for job, (e, d) in zip(chunk, results)]
        except Exception as e:  # report and go on: one bad model must not lose the rest of the batch
            outs = [{"id": job["id"], "error": f"{type(e).__name__}: {e}"} for job in chunk]
        for out in outs:
            sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
