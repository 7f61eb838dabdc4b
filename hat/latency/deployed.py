"""Latency as deployed: milliseconds per sentence translating real text with the engine a model ships on.

HAT's protocol (:mod:`hat.latency.protocol`) times one fixed shape; a user pays the whole decode of real sentences
(beam search, early stops, tokenization outside). A *deployment* is one trained model exported for one runtime
(hat's ONNX runtime or CTranslate2) with one weight type (float32 or int8). :func:`time_deployments` translates the
same sentences with every deployment, batch 1, interleaved by chunk (load from other processes hits all alike), and
returns ms/sentence per deployment with every chunk's time, its load average, and the translations (for BLEU).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from hat.errors import HatError

# (runtime, quantize) pairs a model may ship with; the export format each runtime reads
RUNTIME_FORMATS = {"onnxruntime": "onnx", "ctranslate2": "ctranslate2"}
PROTOCOL_DEVICES = {"onnxruntime": "cpu", "ctranslate2": "cpu_ct2"}  # the local device that times each runtime
DEPLOYMENTS = (("onnxruntime", "none"), ("onnxruntime", "int8"), ("ctranslate2", "none"), ("ctranslate2", "int8"))


@dataclass(frozen=True)
class Deployment:
    """One model exported for one runtime: ``name`` (the model), ``runtime``, ``quantize`` and ``export_dir``."""

    name: str
    runtime: str
    quantize: str
    export_dir: str

    @property
    def key(self) -> str:
        return f"{self.name}|{self.runtime}|{self.quantize}"


def runnable(subnet, runtime: str) -> bool:
    """Whether ``runtime`` executes ``subnet`` (hat's runtime executes every SubTransformer)."""
    if runtime == "ctranslate2":
        from hat.export.ctranslate2 import ctranslate2_blockers
        return not ctranslate2_blockers(subnet)
    return runtime in RUNTIME_FORMATS


def export_deployments(name: str, checkpoint: str | os.PathLike, data_bin: str | os.PathLike,
                       out_root: str | os.PathLike, pairs: Sequence[tuple[str, str]] = DEPLOYMENTS,
                       log: Callable[[str], None] = print) -> list[Deployment]:
    """Export ``checkpoint`` (a trained static model) for every (runtime, quantize) of ``pairs`` that can run it, into
    ``out_root/<name>/<format>_<quantize>`` with the data's dictionaries (an existing export is kept)."""
    from hat.checkpoints import load_model
    from hat.export.model_export import export_model
    model = load_model(str(checkpoint))[0].eval()
    out = []
    for runtime, quantize in pairs:
        if not runnable(model.subnet, runtime):
            continue
        fmt = RUNTIME_FORMATS[runtime]
        d = Path(out_root) / name / f"{fmt}_{quantize}"
        if not (d / "meta.json").is_file():
            res = export_model(model, fmt, d, data=data_bin, quantize=quantize)
            log(f"{name}: exported {fmt} {quantize} -> {d} "
                f"(max |logit diff| vs {res.checked_against} {res.max_logit_diff})")
        out.append(Deployment(name, runtime, quantize, str(d)))
    return out


def open_translator(d: Deployment, beam: int = 5, threads: int = 1, max_len_a: float = 0.0, max_len_b: int = 200):
    """The runtime's translator of a deployment (``translate(texts, batch_size)``), each with its own best
    settings: ``threads`` intra-op threads, CTranslate2's int8 as ``compute_type`` (its exports hold float32)."""
    if d.runtime == "onnxruntime":
        from hat.runtime.onnx import OnnxTranslator
        return OnnxTranslator(d.export_dir, beam_size=beam, max_len_a=max_len_a, max_len_b=max_len_b, threads=threads)
    if d.runtime == "ctranslate2":
        from hat.runtime.ctranslate2 import CTranslate2Translator
        return CTranslate2Translator(d.export_dir, beam_size=beam, max_len_a=max_len_a, max_len_b=max_len_b,
                                     threads=threads, compute_type="int8" if d.quantize == "int8" else "default")
    raise HatError(f"unknown runtime '{d.runtime}' (have: {', '.join(RUNTIME_FORMATS)})")


def time_deployments(deployments: Sequence[Deployment], sentences: Sequence[str], chunk: int = 100, beam: int = 5,
                     threads: int = 1, seed: int = 0, log: Optional[Callable[[str], None]] = None) -> dict:
    """Translate ``sentences`` with every deployment, one sentence at a time (batch 1), interleaved: the sentences
    are cut into chunks of ``chunk``; per chunk every deployment translates it, in a seeded random order.

    Returns:
        ``{key: {"ms_per_sentence", "chunks": [{"seconds", "sentences", "loadavg"}], "hyps": [...]}}`` per
        :attr:`Deployment.key`.
    """
    if chunk < 1:
        raise HatError(f"chunk must be >= 1, got {chunk}")
    translators = {d.key: open_translator(d, beam, threads) for d in deployments}
    for tr in translators.values():  # warm-up: first-call allocations are not a sentence's cost
        tr.translate(list(sentences[:2]), batch_size=1)
    res = {k: {"chunks": [], "hyps": []} for k in translators}
    rng = random.Random(seed)
    starts = range(0, len(sentences), chunk)
    for i, start in enumerate(starts):
        part = list(sentences[start:start + chunk])
        order = list(translators)
        rng.shuffle(order)
        for k in order:
            t0 = time.perf_counter()
            hyps = [translators[k].translate([s], batch_size=1)[0] for s in part]
            res[k]["chunks"].append({"seconds": time.perf_counter() - t0, "sentences": len(part),
                                     "loadavg": os.getloadavg()})
            res[k]["hyps"] += hyps
        if log:
            log(f"chunk {i + 1}/{len(starts)}")
    for r in res.values():
        r["ms_per_sentence"] = 1000 * sum(c["seconds"] for c in r["chunks"]) / max(1, len(sentences))
    return res


def protocol_rounds(items: dict[str, tuple], vocab_size: int, qkv_dim: int, rounds: int, repeats: int,
                    seed: int = 0, log: Optional[Callable[[str], None]] = None) -> dict:
    """HAT's protocol latency on this CPU (1 thread) of every item ``{key: (subnet, runtime, quantize)}``:
    ``rounds`` interleaved rounds, each over every item in a seeded random order (load drift hits all alike), with
    the local device of that runtime (``cpu`` or ``cpu_ct2``: its timer and estimator); the median per item.

    Returns:
        ``{"latency_ms": {key: median}, "samples": {key: [{"encoder_ms", "decoder_ms", "latency_ms", "loadavg"}]},
        "timer", "estimator" (the first backend's), "backends" (each one's device, timer and estimator),
        "loadavg_before", "loadavg_after"}``.
    """
    import statistics

    from hat.latency.backends import get_backend
    from hat.latency.devices import load_device
    from hat.latency.protocol import ProfileSettings
    backends = {}
    for _, runtime, quantize in items.values():
        if (runtime, quantize) not in backends:
            device = load_device(PROTOCOL_DEVICES[runtime])
            device.threads, device.quantize = 1, quantize
            backends[runtime, quantize] = get_backend(device, ProfileSettings(vocab_size=vocab_size, repeats=repeats,
                                                                              threads=1), qkv_dim=qkv_dim)
    samples: dict[str, list] = {k: [] for k in items}
    rng, before = random.Random(seed), os.getloadavg()
    for r in range(rounds):
        order = list(items)
        rng.shuffle(order)
        for k in order:
            subnet, runtime, quantize = items[k]
            b = backends[runtime, quantize]
            em, dm, _, _ = b.measure(subnet).stats(b.settings.trim, b.settings.estimator)
            samples[k].append({"encoder_ms": em, "decoder_ms": dm, "latency_ms": em + dm, "loadavg": os.getloadavg()})
        if log:
            log(f"round {r + 1}/{rounds}")
    timers = {f"{rt}|{q}": {"device": PROTOCOL_DEVICES[rt], "timer": b.settings.timer,
                            "estimator": b.settings.estimator} for (rt, q), b in backends.items()}
    first = next(iter(timers.values()))
    return {"latency_ms": {k: statistics.median(s["latency_ms"] for s in v) for k, v in samples.items()},
            "samples": samples, "timer": first["timer"], "estimator": first["estimator"], "backends": timers,
            "loadavg_before": before, "loadavg_after": os.getloadavg()}
