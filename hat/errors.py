"""User-facing errors.

Anything raised as :class:`HatError` is bad input or an unreachable resource, not a bug: the CLIs print its
message as one line on stderr and exit with code 2 (see :func:`hat.cli.common.cli_main`).
"""


class HatError(Exception):
    """Bad input (config, data, device, budget): reported as one line, exit code 2."""


class ConfigError(HatError):
    """A YAML/config file is malformed, has unknown keys, or values outside their allowed range."""


class SpaceError(ConfigError):
    """A SubnetConfig lies outside its SearchSpace."""
