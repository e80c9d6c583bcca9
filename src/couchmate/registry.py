"""A lazy name → object registry, shared by every extension point.

Built-ins register a dotted path ("package.module:attr"); plugins register the same way
through an entry-point group, so a user's plugin is a peer of ours. Nothing is imported
until it is asked for, which keeps `couchmate --help` fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from couchmate.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str):
        self.kind = kind
        self.group = group
        self._targets: dict[str, str | T] = {}
        self._plugins_loaded = False

    def register(self, name: str, target: str | T) -> None:
        """Register `target` (an object or a "module:attr" path) under `name`."""
        self._targets[name] = target

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            self._targets.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._targets)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._targets

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            target = self._targets[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UserError(
                f"unknown {self.kind} {name!r}", hint=f"known {self.kind}s: {known}"
            ) from None
        if isinstance(target, str):
            target = _resolve(target)
            self._targets[name] = target
        return target  # type: ignore[return-value]


def _resolve(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj
