"""hat.optional.require: one guard for optional packages, a one-line HatError with the pip command."""

from __future__ import annotations

import sys

import pytest

from hat.errors import HatError
from hat.optional import require


def test_returns_the_module():
    import json
    assert require("json", "tests") is json
    assert require("os.path", "tests") is sys.modules["os.path"]


@pytest.mark.parametrize("kwargs, command", [
    ({}, "pip install hat_no_such_package"),
    ({"pip": "no-such-dist==1.0"}, "pip install no-such-dist==1.0"),
    ({"pip": "apache-tvm", "extra": "tvm"}, "pip install 'hat[tvm]'"),
])
def test_missing_package_names_purpose_and_command(kwargs, command):
    with pytest.raises(HatError) as e:
        require("hat_no_such_package.sub", "runtime xyz", **kwargs)
    msg = str(e.value)
    assert msg.startswith("runtime xyz needs the ") and msg.endswith(command) and "\n" not in msg
    assert e.value.__cause__ is None  # one line for the CLI, no chained traceback


def test_blocked_module_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "hat_blocked", None)  # how tests hide an installed package
    with pytest.raises(HatError, match=r"log_format tensorboard needs the tensorboard package .*pip install tensorboard"):
        require("hat_blocked", "log_format tensorboard", pip="tensorboard")
