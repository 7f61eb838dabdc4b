"""ONNX Runtime backend: export the static SubTransformer (encoder + explicit-cache decoder step) and time it with
``device_profiling/runner.py`` in a process of its own, here or on a remote device (:mod:`hat.latency.backends.runner`).
"""

from __future__ import annotations

import importlib.util
import sys

from hat.latency.backends.runner import RunnerBackend, runner_path
from hat.latency.protocol import ProfileSettings
from hat.space import SubnetConfig


def load_runner():
    """Import ``device_profiling/runner.py`` into this process as module ``hat_device_runner`` (cached): for
    benchmarks and tests that time exported folders in-process."""
    mod = sys.modules.get("hat_device_runner")
    if mod is None:
        spec = importlib.util.spec_from_file_location("hat_device_runner", runner_path())
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sys.modules["hat_device_runner"] = mod
    return mod


def export_subnet(subnet: SubnetConfig, settings: ProfileSettings, qkv_dim: int, out_dir, quantize: str = "none"):
    """Export the random-init static model of ``subnet`` to ``out_dir`` (see :func:`hat.export.onnx.export_onnx`),
    int8-quantized when ``quantize`` is ``"int8"`` (:func:`hat.export.onnx.quantize_onnx`)."""
    from hat.export.onnx import export_onnx, quantize_onnx
    from hat.latency.backends.eager import build_static_model
    paths = export_onnx(build_static_model(subnet, settings, qkv_dim), out_dir)
    quantize_onnx(out_dir, quantize)
    return paths


class OnnxRuntimeBackend(RunnerBackend):
    """ONNX Runtime on the device's CPU (``intra_op_num_threads`` = the device's threads), here or over SSH."""

    name = "onnxruntime"
    runner_runtime = "onnxruntime"
    timers = ("wall", "thread_cpu", "process_cpu")
    quantize = ("none", "int8")

    def export_config(self, subnet: SubnetConfig, out_dir: str) -> None:
        from hat.optional import require
        require("onnxruntime", "runtime onnxruntime")
        export_subnet(subnet, self.settings, self.qkv_dim, out_dir, self.device.quantize)
