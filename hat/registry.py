"""Named registries of extension points (runtimes, predictor models, export formats, search strategies).

One mechanism for every family, after nn-Meter's backend registry and timm's ``register_model``: a name maps to a
member (a class or a factory). Built-in members are given as ``"module:attr"`` strings and imported on first use,
so an optional dependency (ctranslate2, TVM) is imported only by the code that needs it; members from outside the
package register the object itself::

    from hat.latency.runtimes import register_runtime

    @register_runtime("my_engine")
    class MyEngineBackend(Backend):
        ...

Each family's contract tests are parametrized over ``names()``, so a new member is tested without editing them.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from hat.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """``name -> member`` for one family of extension points.

    Args:
        kind: what the members are, for messages ("runtime", "export format", ...).
        builtins: name -> ``"module:attr"``, imported when first asked for (registration order is kept).
    """

    def __init__(self, kind: str, builtins: Optional[dict[str, str]] = None):
        self.kind = kind
        self._members: dict[str, Any] = dict(builtins or {})

    def register(self, name: str, member: Optional[T] = None, *, replace: bool = False) -> Any:
        """Add ``member`` under ``name``; without ``member``, a decorator that registers what it decorates.

        Raises:
            ConfigError: ``name`` is taken (and ``replace`` is False), or not a plain name.
        """
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{self.kind} name must be letters, digits, '_' or '-', got {name!r}")
        if name in self._members and not replace:
            raise ConfigError(f"{self.kind} '{name}' is already registered")

        def add(obj: T) -> T:
            self._members[name] = obj
            return obj
        return add if member is None else add(member)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that registered a dummy member clean up with this)."""
        self._members.pop(name, None)

    def names(self) -> list[str]:
        """The registered names, built-ins first, in registration order."""
        return list(self._members)

    def get(self, name: str, where: str = "") -> T:
        """The member registered as ``name`` (a built-in's module is imported now).

        Raises:
            ConfigError: unknown name (the known ones are listed).
        """
        if name not in self._members:
            raise ConfigError(f"{where or self.kind}: unknown {self.kind} '{name}' (known: {', '.join(self)})")
        member = self._members[name]
        if isinstance(member, str):
            module, attr = member.split(":")
            member = getattr(importlib.import_module(module), attr)
            self._members[name] = member
        return member

    def items(self) -> Iterator[tuple[str, T]]:
        """``(name, member)`` for every member (imports the built-ins)."""
        for name in self.names():
            yield name, self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._members)


def make_register(registry: Registry) -> Callable[..., Any]:
    """The family's public ``register_*`` function (same signature as :meth:`Registry.register`)."""
    def register(name: str, member=None, *, replace: bool = False):
        return registry.register(name, member, replace=replace)
    register.__doc__ = f"Register a {registry.kind}: ``register(name, member)`` or ``@register(name)``."
    return register
