"""The contract every registered runtime keeps (parametrized over the registry, so a new backend is tested without
editing this file): it measures a SubTransformer and returns one finite, positive record naming its runtime."""

from __future__ import annotations

import math

import pytest

from hat.errors import ConfigError, HatError
from hat.latency.backends import RUNTIMES, Backend, backend_class, get_backend, list_runtimes
from hat.latency.devices import DeviceConfig
from hat.latency.profiler import profile
from hat.latency.protocol import ProfileSettings

TINY = ProfileSettings(src_len=6, tgt_len=3, beam=2, vocab_size=50, warmup=0, repeats=2)
# Runtimes whose case takes long; every other registered runtime runs unmarked.
SLOW = {"tvm": "compiles the encoder and decoder step with TVM Relax: 10 s idle, ~40 s on 2 busy cores"}


def _cases():
    return [pytest.param(rt, marks=pytest.mark.slow(reason=SLOW[rt])) if rt in SLOW else rt for rt in list_runtimes()]


def test_registry_lists_every_runtime():
    assert list_runtimes() == list(RUNTIMES)
    assert {"eager", "onnxruntime", "tvm", "debug"} <= set(list_runtimes())
    with pytest.raises(ConfigError, match="unknown runtime"):
        backend_class("no_such_runtime")
    with pytest.raises(ConfigError, match="runtime must be one of"):
        DeviceConfig(name="t", runtime="no_such_runtime")


@pytest.mark.parametrize("runtime", _cases())
def test_backend_contract(runtime, tiny_space):
    try:
        cls = backend_class(runtime)
        backend = get_backend(DeviceConfig(name="t", runtime=runtime), TINY, tiny_space.qkv_dim)
        with backend as b:
            (rec,) = profile([tiny_space.smallest()], b)
    except HatError as e:
        if "pip install" in str(e):  # an optional runtime that is not installed (hat.optional.require)
            pytest.skip(str(e))
        raise
    assert issubclass(cls, Backend) and isinstance(backend, cls)
    assert rec.runtime == runtime and rec.subnet == tiny_space.smallest()
    for v in (rec.latency_mean_encoder, rec.latency_mean_decoder, rec.latency_std_encoder, rec.latency_std_decoder):
        assert math.isfinite(v) and v >= 0
    assert rec.latency_ms > 0 and rec.host
    if runtime == "tvm":
        assert "tvm" in rec.host  # the TVM version is recorded with the measurement
