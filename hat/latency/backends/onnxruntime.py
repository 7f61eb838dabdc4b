"""ONNX Runtime backend: export the static SubTransformer (encoder + explicit-cache decoder step) and time it with
``device_profiling/runner.py``, the same code that runs on remote devices."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

from hat.errors import HatError
from hat.latency.backends.base import Backend, Measurement
from hat.latency.protocol import ProfileSettings
from hat.optional import require
from hat.space import SubnetConfig


def runner_path() -> Path:
    """``device_profiling/runner.py`` (uploaded to remote devices, imported for local ONNX Runtime timing)."""
    from hat.resources import project_root
    p = project_root() / "device_profiling" / "runner.py"
    if not p.is_file():
        raise HatError(f"{p}: latency runner missing (hat must be installed editable from its repository, or set "
                       f"HAT_HOME to the repository root)")
    return p


def load_runner():
    """Import ``device_profiling/runner.py`` as module ``hat_device_runner`` (cached)."""
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


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on this machine's CPU (``intra_op_num_threads`` = the device's threads)."""

    name = "onnxruntime"

    def measure_chunk(self, subnets: list[SubnetConfig]) -> list[Measurement]:
        """Export every config of the chunk, then let the runner time them interleaved."""
        require("onnxruntime", "runtime onnxruntime")
        runner = load_runner()
        settings = dict(self.settings.to_json_dict(), threads=self.threads)
        with tempfile.TemporaryDirectory(prefix="hat_ort_") as d:
            dirs = []
            for i, subnet in enumerate(subnets):
                dirs.append(str(Path(d) / f"cfg_{i}"))
                export_subnet(subnet, self.settings, self.qkv_dim, dirs[-1], self.device.quantize)
            try:
                results = runner.measure_many(dirs, settings)
            except (ValueError, RuntimeError) as e:
                if "thread_cpu" in str(e):
                    raise HatError(f"device {self.device.name}: {e}") from None
                raise
        version = f"onnxruntime {runner.ort.__version__}"
        return [Measurement(e, dm, host=runner.host_info(), threads=self.threads, runtime_version=version,
                            timer=self.settings.timer) for e, dm in results]
