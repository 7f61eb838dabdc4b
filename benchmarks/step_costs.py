"""Where hat's whole decode goes, per architecture: the encoder call, the decoder-step graph calls, and the rest.

Each architecture of ``--record`` (the 9 models of ``docs/results.md``) and of ``--subnets`` is exported (random
weights) and decoded on HAT's protocol shape (batch 1, 30 source tokens, beam 5, exactly 30 decoder steps, 1 thread)
as hat's runtime ships it. A thin timer around the decoder's graph call (:meth:`hat.runtime.ort_calls.OrtCalls.run`)
splits each decode: encoder call, decoder graph calls, and the rest (beam bookkeeping in numpy, the step's feeds and
outputs), without cProfile's per-call inflation of the Python side. A separate run with ONNX Runtime's profiler
gives each operator type's share of the step graphs' kernel time (shares only: the profiler slows every node).
Also recorded: ONNX Runtime's cost of one graph call and of one more node (a chain of tiny ``Add`` nodes).
Raw JSON: ``benchmarks/results/step_costs.json``.

    python benchmarks/step_costs.py --subnets runs/repro_ct2/search_ct2/subnet_*ms.yaml

Stop your own training first: latency is never measured next to it.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from protocol_race import add_architecture_args, architectures, protocol_loop, split_decodes  # noqa: E402
from record import RunRecord  # noqa: E402


def node_costs(runs: int = 2000) -> dict:
    """``{"call_us", "per_node_us"}``: min time of a 1-node and a 31-node chain of ``Add`` on ``[5, 1, 128]``."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from hat.runtime.ort_calls import OrtCalls
    mins = {}
    for n in (1, 31):
        nodes = [helper.make_node("Add", [f"x{i}", "c"], [f"x{i + 1}"]) for i in range(n)]
        g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x0", TensorProto.FLOAT, ["r", 1, 128])],
                              [helper.make_tensor_value_info(f"x{n}", TensorProto.FLOAT, None)],
                              initializer=[numpy_helper.from_array(np.ones(128, np.float32), "c")])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.graph_optimization_level = 1, ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        calls = OrtCalls(ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"]))
        x = np.ones((5, 1, 128), np.float32)
        feeds, times = {"x0": calls.value(x)}, []
        for i in range(runs + 50):
            t = time.perf_counter()
            calls.run([f"x{n}"], feeds)
            times.append(time.perf_counter() - t)
        mins[n] = min(times[50:]) * 1e6
    return {"call_us": mins[1], "per_node_us": (mins[31] - mins[1]) / 30}


def op_shares(model_dir: str, settings, runs: int) -> dict[str, float]:
    """Each operator type's share of the decoder step's kernel time over ``runs`` profiled decodes."""
    import onnxruntime as ort

    from hat.latency.backends.onnxruntime import load_runner
    from hat.runtime.ort_calls import OrtCalls
    loop = load_runner().Loop(model_dir, dict(settings.to_json_dict(), timer="wall"))
    opts = ort.SessionOptions()
    opts.enable_profiling, opts.intra_op_num_threads = True, 1
    opts.profile_file_prefix = str(Path(model_dir) / "ort_profile")
    loop.tr.decoder = ort.InferenceSession(str(Path(model_dir) / "decoder_step.onnx"), opts,
                                           providers=["CPUExecutionProvider"])
    loop.tr.decoder_calls = OrtCalls(loop.tr.decoder)
    for _ in range(runs):
        loop.run_once()
    path = loop.tr.decoder.end_profiling()
    ops: collections.Counter = collections.Counter()
    for e in json.loads(Path(path).read_text()):
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            ops[e["args"]["op_name"]] += e["dur"]
    os.remove(path)
    total = sum(ops.values()) or 1
    return {op: us / total for op, us in ops.most_common()}


def measure(subnet, vocab: int, qkv_dim: int, runs: int, profile_runs: int) -> dict:
    with protocol_loop(subnet, vocab, qkv_dim) as (loop, d, settings):
        decodes = split_decodes(loop, runs)
        shares = op_shares(d, settings, profile_runs) if profile_runs else {}
    best = min(decodes, key=lambda x: x["whole_ms"])
    med = {k: statistics.median(x[k] for x in decodes) for k in decodes[0]}
    return {"decodes": decodes, "fastest": best, "median": med, "rest_share_median": med["rest_ms"] / med["whole_ms"],
            "op_shares": shares}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_architecture_args(p)
    p.add_argument("--runs", type=int, default=30, help="timed decodes per architecture")
    p.add_argument("--profile-runs", type=int, default=10, help="decodes under ONNX Runtime's profiler (0: none)")
    args = p.parse_args(argv)
    from hat.space import load_space
    rec, qkv_dim = RunRecord("step_costs"), load_space(args.space).qkv_dim
    nodes = node_costs()
    print(f"ONNX Runtime: {nodes['call_us']:.1f} us per graph call, {nodes['per_node_us']:.2f} us per extra node")
    print("| model | whole ms | encoder ms | step graphs ms | rest ms | rest share | top step ops (kernel share) |\n"
          "|---|---|---|---|---|---|---|")
    rows, samples = [], []
    for name, subnet in architectures(args.record, args.subnets).items():
        res = measure(subnet, args.vocab, qkv_dim, args.runs, args.profile_runs)
        m = res["median"]
        top = ", ".join(f"{op} {s:.0%}" for op, s in list(res["op_shares"].items())[:4])
        rows.append({"model": name, "median": m, "fastest": res["fastest"], "rest_share_median":
                     res["rest_share_median"], "op_shares": res["op_shares"]})
        samples += [{"model": name, **x} for x in res["decodes"]]
        print(f"| {name} | {m['whole_ms']:.2f} | {m['encoder_ms']:.2f} | {m['step_graph_ms']:.2f} | "
              f"{m['rest_ms']:.2f} | {res['rest_share_median']:.1%} | {top} |", flush=True)
    print(f"raw record: {rec.write(args=vars(args), samples=samples, summary={'graph_calls': nodes, 'rows': rows})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
