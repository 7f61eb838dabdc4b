"""The registry of latency runtimes: name -> :class:`~hat.latency.backends.base.Backend` subclass.

Each class declares what it supports (transports, timers, quantization, accelerators, and which SubTransformers it
can execute: :attr:`~hat.latency.backends.base.Backend.executes`); device validation, the profiler and the search
ask the class, never the runtime's name. Built-in runtimes are imported on first use, so a missing optional package
breaks only its own runtime:

* ``eager``: PyTorch eager, static Transformer with random weights (CPU or CUDA);
* ``onnxruntime``: hat's ONNX export and runtime, timed by ``device_profiling/runner.py`` (locally or over SSH);
* ``ctranslate2``: a CTranslate2 model directory, timed by the same runner (extra ``hat[ctranslate2]``);
* ``tvm``: Apache TVM Relax, compiled for the local CPU (extra ``hat[tvm]``);
* ``debug``: deterministic synthetic latency from the analytic FLOPs, for tests.

A runtime from outside the package registers its class: ``register_runtime("name", MyBackend)`` (or as a
decorator); ``tests/latency/test_backend_contract.py`` then measures it like every other member.
"""

from __future__ import annotations

from hat.registry import Registry, make_register

RUNTIMES = Registry("runtime", {
    "eager": "hat.latency.backends.eager:EagerBackend",
    "onnxruntime": "hat.latency.backends.onnxruntime:OnnxRuntimeBackend",
    "ctranslate2": "hat.latency.backends.ctranslate2:CTranslate2Backend",
    "tvm": "hat.latency.backends.tvm:TvmBackend",
    "debug": "hat.latency.backends.debug:DebugBackend",
})
register_runtime = make_register(RUNTIMES)


def list_runtimes() -> list[str]:
    """The registered runtime names, in registry order."""
    return RUNTIMES.names()


def backend_class(runtime: str, where: str = "runtime"):
    """The :class:`~hat.latency.backends.base.Backend` subclass measuring with ``runtime`` (imported now).

    Raises:
        ConfigError: ``runtime`` is not registered.
    """
    return RUNTIMES.get(runtime, where)


def executable_space(space, runtime: str):
    """``space`` narrowed to the SubTransformers ``runtime`` executes (its backend class's ``executes``
    constraint; the space itself when the runtime runs every config).

    Raises:
        ConfigError: unknown runtime, or the runtime executes no config of the space.
    """
    return space.constrained(backend_class(runtime).executes)


__all__ = ["RUNTIMES", "backend_class", "executable_space", "list_runtimes", "register_runtime"]
