import pytest

from hat.cli.common import cli_main, parse_latency_list_ms, parse_latency_ms
from hat.errors import ConfigError, HatError


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


def test_cli_main_turns_user_errors_into_exit_2(capsys):
    @cli_main("hat-x")
    def main(argv=None):
        raise ConfigError("bad.yaml: unknown key(s) foo\nsecond line")

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hat-x: error: bad.yaml: unknown key(s) foo")


def test_cli_main_keeps_bugs_as_tracebacks():
    @cli_main("hat-x")
    def main(argv=None):
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        main([])


@pytest.mark.parametrize("text,unit,ms,shown", [("4s", "s", 2345.0, "2.35 s"), ("0.5s,1s", "s", 500.0, "0.5 s"),
                                                ("30ms", "ms", 12.345, "12.35 ms"), ("30", "ms", 1.0, "1.00 ms"),
                                                ("500us", "us", 0.25, "250 us")])
def test_latency_unit_and_format(text, unit, ms, shown):
    from hat.cli.common import format_latency, latency_unit
    assert latency_unit(text) == unit and format_latency(ms, unit) == shown
