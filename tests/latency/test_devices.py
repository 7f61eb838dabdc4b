"""Every shipped device profile loads; predictor-only devices cannot be profiled."""

import pytest

from hat.errors import HatError
from hat.latency.devices import list_devices, load_device


def test_list_devices_names_the_shipped_profiles():
    names = list_devices()
    assert {"cpu", "cpu_eager", "gpu", "rpi4", "debug", "xeon_e5_2640", "titanxp"} <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("name", list_devices())
def test_device_contract(name):
    d = load_device(name)
    assert d.name == name and d.description
    if d.predictor_only:
        from hat.latency.backends import get_backend
        assert "predictor-only" in d.description
        with pytest.raises(HatError, match="predictor-only"):
            get_backend(d)
