import pytest

from hat.errors import cli_main
from hat.errors import ConfigError


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
