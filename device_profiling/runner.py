#!/usr/bin/env python3
"""Latency runner for exported SubTransformers: Python 3 stdlib + numpy + onnxruntime only (no torch, no hat).

It runs on the measuring device (a Raspberry Pi over SSH, or this machine for the local ``onnxruntime`` backend)
and implements HAT's timing protocol (see ``hat/latency/protocol.py``) over the files written by
``hat.export.onnx.export_onnx``: ``encoder.onnx``, ``decoder_step.onnx``, ``meta.json``.

Usage::

    python3 runner.py jobs.json

``jobs.json``::

    {"settings": {"batch_size": 1, "src_len": 30, "tgt_len": 30, "beam": 5, "warmup": 5, "repeats": 20,
                  "trim": 0.1, "seed": 0, "threads": 1, "vocab_size": 10000},
     "jobs": [{"id": "0", "dir": "cfg_0"}, ...]}           (dir relative to jobs.json)

Output: one JSON object per line on stdout, flushed as each job finishes (so a dropped connection loses at most
the job in flight)::

    {"id": "0", "encoder_ms": [...], "decoder_ms": [...], "host": "...", "threads": 1, "runtime_version": "..."}
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
import onnxruntime as ort


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


def target_tokens(settings, vocab_size):
    """Decoder ids per step (same draw as ProfileSettings.target_tokens)."""
    rng = random.Random(settings["seed"] + 1)
    rows = settings["batch_size"] * settings["beam"]
    return [[2] * rows] + [[rng.randrange(4, vocab_size) for _ in range(rows)] for _ in range(settings["tgt_len"] - 1)]


class OrtSubnet:
    """An exported SubTransformer loaded in two ONNX Runtime sessions (encoder, decoder step)."""

    def __init__(self, model_dir, threads=1):
        with open(os.path.join(model_dir, "meta.json")) as f:
            self.meta = json.load(f)
        opts = ort.SessionOptions()
        # Pinned threads: latency must not depend on what else the machine runs.
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(os.path.join(model_dir, "encoder.onnx"), opts, providers=providers)
        self.decoder = ort.InferenceSession(os.path.join(model_dir, "decoder_step.onnx"), opts, providers=providers)

    def encode(self, src_tokens):
        """Run the encoder: returns its outputs as a name -> array dict (cross K/V per decoder layer, mask)."""
        names = self.meta["encoder"]["outputs"]
        return dict(zip(names, self.encoder.run(names, {"src_tokens": np.asarray(src_tokens, dtype=np.int64)})))

    def init_state(self, enc_out, beam):
        """Decoder feeds for step 0: encoder outputs repeated ``beam`` times per sentence, empty self caches."""
        feeds = {name: np.repeat(enc_out[name], beam, axis=0) for name in self.meta["decoder_step"]["from_encoder"]}
        rows = next(iter(feeds.values())).shape[0]
        for layer in self.meta["decoder_layers"]:
            shape = (rows, layer["self_heads"], 0, layer["self_head_dim"])
            feeds[layer["self_k"]] = np.zeros(shape, dtype=np.float32)
            feeds[layer["self_v"]] = np.zeros(shape, dtype=np.float32)
        return feeds

    def step(self, feeds, tokens, step):
        """One decoder step: returns logits [rows, V]; ``feeds`` is updated in place with the grown caches."""
        feeds["tokens"] = np.asarray(tokens, dtype=np.int64).reshape(-1, 1)
        feeds["step"] = np.array(step, dtype=np.int64)
        out_names = self.meta["decoder_step"]["outputs"]
        outs = dict(zip(out_names, self.decoder.run(out_names, feeds)))
        for out_name, in_name in self.meta["decoder_step"]["cache_outputs"].items():
            feeds[in_name] = outs[out_name]
        return outs["logits"]


def measure(model_dir, settings):
    """Time encoder and incremental decoder of one exported SubTransformer: lists of per-run milliseconds."""
    model = OrtSubnet(model_dir, settings["threads"])
    vocab = int(model.meta["tgt_vocab_size"])
    src = source_tokens(settings, int(model.meta["src_vocab_size"]))
    tgt = target_tokens(settings, vocab)
    beam = settings["beam"]
    enc_ms, dec_ms = [], []
    for i in range(settings["warmup"] + settings["repeats"]):
        t0 = time.perf_counter_ns()
        enc_out = model.encode(src)
        t1 = time.perf_counter_ns()
        feeds = model.init_state(enc_out, beam)
        for step, tokens in enumerate(tgt):
            model.step(feeds, tokens, step)
        t3 = time.perf_counter_ns()
        if i >= settings["warmup"]:
            enc_ms.append((t1 - t0) / 1e6)
            # Beam expansion of the encoder output is decoder-side work (fairseq reorders encoder_out per beam).
            dec_ms.append((t3 - t1) / 1e6)
    return enc_ms, dec_ms


def host_info():
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
                      f"onnxruntime {ort.__version__}"])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: runner.py jobs.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        spec = json.load(f)
    base = os.path.dirname(os.path.abspath(argv[0]))
    settings = spec["settings"]
    host = host_info()
    for job in spec["jobs"]:
        try:
            enc_ms, dec_ms = measure(os.path.join(base, job["dir"]), settings)
            out = {"id": job["id"], "encoder_ms": enc_ms, "decoder_ms": dec_ms, "host": host,
                   "threads": settings["threads"], "runtime_version": f"onnxruntime {ort.__version__}"}
        except Exception as e:  # report and go on: one bad model must not lose the rest of the batch
            out = {"id": job["id"], "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
