"""Latency units in text (hat.units)."""

import pytest

from hat.errors import HatError
from hat.units import format_latency, latency_unit, parse_latency_list_ms, parse_latency_ms


@pytest.mark.parametrize("text, ms", [("200ms", 200.0), ("0.2s", 200.0), ("150", 150.0), ("500us", 0.5),
                                      (" 7.5 MS ", 7.5)])
def test_parse_latency(text, ms):
    assert parse_latency_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["", "fast", "-3ms", "0ms", "10 min"])
def test_parse_latency_rejects(text):
    with pytest.raises(HatError):
        parse_latency_ms(text)


def test_parse_latency_list_sorted():
    assert parse_latency_list_ms("0.2s,100ms,150") == [100.0, 150.0, 200.0]


@pytest.mark.parametrize("text,unit,ms,shown", [("4s", "s", 2345.0, "2.35 s"), ("0.5s,1s", "s", 500.0, "0.5 s"),
                                                ("30ms", "ms", 12.345, "12.35 ms"), ("30", "ms", 1.0, "1.00 ms"),
                                                ("500us", "us", 0.25, "250 us")])
def test_latency_unit_and_format(text, unit, ms, shown):
    assert latency_unit(text) == unit and format_latency(ms, unit) == shown
