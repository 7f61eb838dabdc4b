"""One guard for optional dependencies: import a package when a feature first needs it, or say how to install it.

Heavy or optional packages are imported where they are used, not when ``hat`` is imported (``import hat.export.tvm``
must not load TVM; the numpy runtime must not load torch). Where a package may be absent (the ``tvm`` extra,
``tensorboard``, and the packages a minimal device or runtime install can lack: ``onnxruntime``, ``paramiko``), the
feature calls :func:`require`, so a missing package is a one-line :class:`~hat.errors.HatError` with the pip command
instead of an ``ImportError`` traceback. ``tests/test_structure.py`` checks that ``hat`` catches ``ImportError``
nowhere else.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional

from hat.errors import HatError


def require(module: str, purpose: str, pip: Optional[str] = None, extra: Optional[str] = None) -> ModuleType:
    """Import and return ``module``, or raise HatError naming what needs it and the command that installs it.

    Args:
        module: dotted module name (``"tvm.relax.frontend.torch"``, ``"torch.utils.tensorboard"``).
        purpose: what needs it, as the user asked for it (``"runtime tvm"``, ``"log_format tensorboard"``).
        pip: the pip requirement providing it (default: the top-level package name).
        extra: the ``hat`` extra providing it (``"tvm"``); the hint is then ``pip install 'hat[tvm]'``.

    Raises:
        HatError: the import failed (the message keeps the ImportError's text: a broken install shows here too).
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package = pip or module.split(".")[0]
        command = f"pip install 'hat[{extra}]'" if extra else f"pip install {package}"
        raise HatError(f"{purpose} needs the {package} package ({e}): {command}") from None
