"""Named tables of extensions: one :class:`Registry` per extension point.

A registry maps a name to an entry (a class, a factory, a ``(class, params model)`` pair). It is
a ``dict``, so it lists, iterates and tests membership as one; what it adds is the one place
where a name is checked: :meth:`Registry.resolve` and :meth:`Registry.check` raise
:class:`~driftsched.ground.errors.UnknownNameError` listing the valid names, and
:meth:`Registry.parse` reads ``"all"`` or a comma list, checking each name.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from driftsched.ground.errors import UnknownNameError
from driftsched.ground.parse import parse_list

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """``name -> entry`` for one kind of extension (``kind`` names it in error messages)."""

    def __init__(self, kind: str, entries: dict[str, T] | None = None):
        super().__init__(entries or {})
        self.kind = kind

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` (a name is registered once); returns the entry."""
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self[name] = entry
        return entry

    def check(self, name: str) -> str:
        """``name`` itself if registered, else :class:`UnknownNameError`."""
        if name not in self:
            raise UnknownNameError(self.kind, name, list(self))
        return name

    def resolve(self, name: str) -> T:
        """The entry registered as ``name``; :class:`UnknownNameError` lists the valid ones."""
        return self[self.check(name)]

    def parse(self, text: str) -> list[str]:
        """``"all"`` (every name, in registration order) or a comma list, each name checked."""
        if text.strip() == "all":
            return list(self)
        return [self.check(name) for name in parse_list(text, f"--{self.kind}")]
