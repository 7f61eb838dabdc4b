"""benchmarks/protocol_race.py: the graph/outside split counts every ONNX Runtime graph call hat's runtime makes."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from protocol_race import is_ort_run  # noqa: E402


def test_every_graph_call_counts_and_nothing_else():
    name = "<built-in method onnxruntime.capi.onnxruntime_pybind11_state.{}>"
    for call in ("run", "run_with_ort_values", "run_with_ortvaluevector"):
        assert is_ort_run(name.format(call))
    assert not is_ort_run(name.format("ortvalue_from_numpy")) and not is_ort_run("search")
