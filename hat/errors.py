"""User-facing errors, and the one place that turns them into a one-line message with exit code 2.

Anything raised as :class:`HatError` is bad input or an unreachable resource, not a bug: the CLIs (and the
scripts in ``scripts/``) decorate their ``main`` with :func:`cli_main`, which prints its message as one line on
stderr and exits with code 2.
"""

from __future__ import annotations

import errno
import functools
import gzip
import os
import sys
import zlib
from typing import Callable, Optional, Sequence


class HatError(Exception):
    """Bad input (config, data, device, budget): reported as one line, exit code 2."""


class ConfigError(HatError):
    """A YAML/config file is malformed, has unknown keys, or values outside their allowed range."""


class SpaceError(ConfigError):
    """A SubnetConfig lies outside its SearchSpace."""


EXIT_USAGE = 2


def fail(prog: str, msg: str) -> int:
    """Print ``prog: error: msg`` as one line on stderr and return exit code 2."""
    print(f"{prog}: error: {' '.join(str(msg).split())}", file=sys.stderr)
    return EXIT_USAGE


def cli_main(prog: str) -> Callable:
    """Decorate ``main(argv) -> int`` so bad input becomes one stderr line and exit 2, never a traceback.

    HatError, missing files and permission errors are user errors; so are the other file-system errors (a
    directory where a file is expected, a full disk: every writer in hat writes atomically or appends whole
    records, so nothing already written is damaged), input that is not UTF-8, and corrupt gzip input. Ctrl-C exits
    130 (work already written is kept). A closed stdout (``hat-score ... | head``) ends quietly with 141, like a
    Unix tool killed by SIGPIPE. Anything else is a bug and keeps its traceback.
    """
    def deco(fn: Callable[[Optional[Sequence[str]]], int]):
        @functools.wraps(fn)
        def wrapper(argv: Optional[Sequence[str]] = None) -> int:
            if sys.stdout is None:  # started with stdout closed (>&-): summaries go nowhere, as to /dev/null
                sys.stdout = open(os.devnull, "w")
            try:
                rc = int(fn(argv) or 0)
                sys.stdout.flush()  # a closed pipe shows up here, while we can still catch it
                return rc
            except HatError as e:
                return fail(prog, str(e))
            except FileNotFoundError as e:
                return fail(prog, f"{e.filename or e}: no such file or directory")
            except PermissionError as e:
                return fail(prog, f"{e.filename or e}: permission denied")
            except BrokenPipeError:
                _silence_stdout()
                return 128 + 13  # SIGPIPE
            except IsADirectoryError as e:
                return fail(prog, f"{e.filename or e}: is a directory (expected a file)")
            except NotADirectoryError as e:
                return fail(prog, f"{e.filename or e}: a path component is not a directory")
            except (gzip.BadGzipFile, zlib.error, EOFError) as e:
                return fail(prog, f"corrupt or truncated compressed input ({type(e).__name__}: {_first_line(e)})")
            except UnicodeDecodeError as e:
                return fail(prog, f"input is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})")
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    return fail(prog, f"{e.filename or 'output'}: no space left on device; nothing was replaced "
                                      f"(free some space and rerun, with --resume where the tool has it)")
                if e.errno is None:
                    raise
                return fail(prog, f"{e.filename or 'I/O'}: {e.strerror or e}")
            except KeyboardInterrupt:
                print(f"{prog}: interrupted; finished work is saved (rerun with --resume to continue)", file=sys.stderr)
                return 130
        return wrapper
    return deco


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else "no details"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
