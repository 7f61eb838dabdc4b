"""Whole-decode latency on HAT's shape, hat's runtime vs CTranslate2, for the reproduction's architectures.

Every architecture of ``--record`` (the 9 models of ``docs/results.md``) and of ``--subnets`` (e.g. the CT2 search's
picks) is timed with HAT's protocol as each runtime ships it (batch 1, 30 source tokens, beam 5, exactly 30 decoder
steps, 1 thread, random weights: the forced length makes weights irrelevant) in hat fp32/int8 and CTranslate2
fp32/int8 where CTranslate2 runs it, in interleaved rounds (:func:`hat.latency.deployed.protocol_rounds`). For hat
fp32 it also splits the decode: ONNX Runtime's graph calls (encoder, decoder steps: a thin timer around each, not
cProfile, whose per-call cost inflated the Python side) against the whole decode. Raw JSON: ``benchmarks/results/protocol_race.json``.

    python benchmarks/protocol_race.py --subnets runs/repro_ct2/search_ct2/subnet_*ms.yaml

Stop your own training first: latency is never measured next to it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import RunRecord  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENGINES = {"hat_fp32": ("onnxruntime", "none"), "hat_int8": ("onnxruntime", "int8"),
           "ct2_fp32": ("ctranslate2", "none"), "ct2_int8": ("ctranslate2", "int8")}


class TimedCalls:
    """Wraps a translator's decoder calls (:class:`hat.runtime.ort_calls.OrtCalls`) and adds up the seconds spent in
    :meth:`run`: a thin timer, so the Python side is not inflated as under cProfile."""

    def __init__(self, calls):
        self.calls, self.seconds = calls, 0.0
        self.value = calls.value

    def run(self, names, feeds):
        t = time.perf_counter()
        try:
            return self.calls.run(names, feeds)
        finally:
            self.seconds += time.perf_counter() - t


def split_decodes(loop, runs: int) -> list[dict]:
    """``runs`` decodes of a runner ``Loop`` (HAT's protocol), each split: whole, encoder call, decoder step graph
    calls, and the rest (beam bookkeeping, the step's feeds and outputs), in ms."""
    timed = loop.tr.decoder_calls = TimedCalls(loop.tr.decoder_calls)
    out = []
    try:
        for _ in range(runs):
            timed.seconds = 0.0
            t = time.perf_counter()
            enc_ms, _ = loop.run_once()
            whole, graph = (time.perf_counter() - t) * 1e3, timed.seconds * 1e3
            out.append({"whole_ms": whole, "encoder_ms": enc_ms, "step_graph_ms": graph,
                        "rest_ms": whole - enc_ms - graph})
    finally:
        loop.tr.decoder_calls = timed.calls
    return out


@contextlib.contextmanager
def protocol_loop(subnet, vocab: int, qkv_dim: int) -> Iterator[tuple]:
    """``(loop, export_dir, settings)``: hat's runner ``Loop`` (HAT's protocol, 1 thread, wall clock) over a fresh
    ONNX export of ``subnet`` with random weights, warmed up; the export is removed after."""
    from hat.latency.backends.onnxruntime import export_subnet, load_runner
    from hat.latency.protocol import ProfileSettings
    settings = ProfileSettings(vocab_size=vocab, threads=1)
    with tempfile.TemporaryDirectory() as d:
        export_subnet(subnet, settings, qkv_dim, d)
        loop = load_runner().Loop(d, dict(settings.to_json_dict(), timer="wall"))
        for _ in range(3):
            loop.run_once()
        yield loop, d, settings


def outside_share(subnet, vocab: int, qkv_dim: int, runs: int) -> dict:
    """hat fp32's decode split at batch 1 (:func:`split_decodes`): medians of the whole run, of its graph calls
    (encoder + decoder steps), and the share outside them."""
    with protocol_loop(subnet, vocab, qkv_dim) as (loop, _, _):
        runs_ = split_decodes(loop, runs)
    whole = statistics.median(x["whole_ms"] for x in runs_)
    graph = statistics.median(x["encoder_ms"] + x["step_graph_ms"] for x in runs_)
    rest = statistics.median(x["rest_ms"] / x["whole_ms"] for x in runs_)
    return {"whole_ms": whole, "graph_ms": graph, "outside_share": rest}


def architectures(record: str, subnet_yamls: list[str]) -> dict:
    """``{name: SubnetConfig}`` of the recorded models and of the given subnet YAMLs (named by their budget)."""
    from hat.config import load_yaml
    from hat.space import SubnetConfig
    out = {x["name"]: SubnetConfig.from_dict(x["subnet"]) for x in json.loads(Path(record).read_text())}
    for y in subnet_yamls:
        meta = load_yaml(y)
        out[f"HAT-CT2@{float(meta['budget_ms']):g}ms"] = SubnetConfig.from_dict(meta["subnet"])
    return out


def table(models: dict, lat: dict, shares: dict, engines: list[str]) -> list[dict]:
    rows = []
    for name in models:
        row = {"model": name, **{e: lat.get(f"{name}|{e}") for e in engines}, **shares.get(name, {})}
        if row.get("hat_fp32") and row.get("ct2_fp32"):
            row["speedup_fp32"] = row["ct2_fp32"] / row["hat_fp32"]  # > 1: hat faster
        if row.get("hat_int8") and row.get("ct2_int8"):
            row["speedup_int8"] = row["ct2_int8"] / row["hat_int8"]
        rows.append(row)
    return rows


def print_table(rows: list[dict], engines: list[str]) -> None:
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    print("| model | " + " | ".join(f"{e} ms" for e in engines) + " | hat/CT2 fp32 | hat/CT2 int8 | outside graphs |")
    print("|---|" + "---|" * (len(engines) + 3))
    for r in rows:
        print(f"| {r['model']} | " + " | ".join(fmt(r.get(e), ".2f") for e in engines) +
              f" | {fmt(r.get('speedup_fp32'), '.2f')}x | {fmt(r.get('speedup_int8'), '.2f')}x | "
              f"{fmt(r.get('outside_share'), '.1%')} |")


def add_architecture_args(p: argparse.ArgumentParser) -> None:
    """The arguments naming the raced architectures (``--record``, ``--subnets``) and their space and vocabulary."""
    p.add_argument("--record", default=str(ROOT / "benchmarks" / "results" / "reproduce_multi30k.json"))
    p.add_argument("--subnets", nargs="*", default=[], help="more subnet YAMLs (hat-search's subnet_<budget>ms.yaml)")
    p.add_argument("--space", default="multi30k_cpu")
    p.add_argument("--vocab", type=int, default=3956, help="target vocabulary (the reproduction's)")


def interleaved(loops: dict, rounds: int, repeats: int, sample) -> dict[str, list]:
    """``{arm: [sample(loop), ...]}``: ``repeats`` samples of each arm per round, the arms' order reversed every other
    round, so that load from other processes hits every arm alike."""
    arms = list(loops)
    out: dict[str, list] = {arm: [] for arm in arms}
    for r in range(rounds):
        for arm in (arms if r % 2 else arms[::-1]):
            out[arm] += [sample(loops[arm]) for _ in range(repeats)]
    return out


def ab_main(name: str, race, summarize, header: str, line, argv=None) -> int:
    """``main`` of an A/B benchmark over the raced architectures (``--record``, ``--subnets``): ``race(subnet,
    vocab, qkv_dim, rounds, repeats)`` gives ``{arm: [samples]}``, ``summarize(model, that)`` one row, ``line(row)``
    its table line under ``header``; the samples and rows go to ``benchmarks/results/<name>.json``."""
    p = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.split("\n\n")[0])
    add_architecture_args(p)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    from hat.space import load_space
    rec = RunRecord(name)
    qkv_dim, rows, samples = load_space(args.space).qkv_dim, [], []
    print(header)
    for model, subnet in architectures(args.record, args.subnets).items():
        ms = race(subnet, args.vocab, qkv_dim, args.rounds, args.repeats)
        rows.append(summarize(model, ms))
        samples += [{"model": model, "arm": arm, "sample": x} for arm, v in ms.items() for x in v]
        print(line(rows[-1]), flush=True)
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary={'rows': rows})}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_architecture_args(p)
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--profile-runs", type=int, default=20, help="runs per model for the graph/outside split")
    args = p.parse_args(argv)
    from hat.latency.deployed import protocol_rounds, runnable
    from hat.space import load_space
    qkv_dim, engines = load_space(args.space).qkv_dim, args.engines.split(",")
    models = architectures(args.record, args.subnets)
    items = {f"{n}|{e}": (s, *ENGINES[e]) for n, s in models.items() for e in engines if runnable(s, ENGINES[e][0])}
    res = protocol_rounds(items, args.vocab, qkv_dim, args.rounds, args.repeats,
                          log=lambda m: print(m, file=sys.stderr, flush=True))
    shares = {n: outside_share(s, args.vocab, qkv_dim, args.profile_runs) for n, s in models.items()} \
        if "hat_fp32" in engines and args.profile_runs else {}
    rows = table(models, res["latency_ms"], shares, engines)
    print_table(rows, engines)
    summary = {"rows": rows, "backends": res["backends"], "loadavg_before": res["loadavg_before"],
               "loadavg_after": res["loadavg_after"], "subnets": {n: s.to_dict() for n, s in models.items()}}
    samples = [{"item": k, **s} for k, v in res["samples"].items() for s in v]
    print(f"raw record: {RunRecord('protocol_race').write(args=vars(args), samples=samples, summary=summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
