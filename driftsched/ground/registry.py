"""Named tables of extensions: one :class:`Registry` per extension point, one door for all.

A registry maps a name to an entry (a policy class, a corrector class, a router factory). It is
a ``dict`` of the built-ins, so it lists, iterates and tests membership as one. What it adds is
the one place where an extension is looked up, the same for a built-in and for a user's plugin.
A *spec* is any of:

- a registered name (``fifo``);
- an entry point's name in the registry's group (``driftsched.policies``, ...), which an
  installed plugin package declares in its pyproject;
- ``package.module:Class`` or ``path/to/file.py:Class`` (:mod:`driftsched.ground.plugins`).

:meth:`Registry.check` validates a spec (importing it, and checking the object with the
registry's ``accepts``) and returns its canonical form, which any process can resolve again;
:meth:`Registry.resolve` returns the entry. Unknown names raise
:class:`~driftsched.ground.errors.UnknownNameError` listing the valid ones; a spec that does not
import or is not the right kind of object is one :class:`InputError` line naming it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Generic, TypeVar

from driftsched.ground.errors import InputError, UnknownNameError
from driftsched.ground.parse import parse_list
from driftsched.ground.plugins import canonical_spec, is_spec, load_spec

T = TypeVar("T")

BUILT_IN = "built-in"


class Registry(dict[str, T], Generic[T]):
    """``name -> entry`` for one kind of extension (``kind`` names it in error messages).

    ``group``: the entry-point group plugins register in (None: no entry points).
    ``accepts(obj) -> str | None``: why a loaded object is not a valid entry (None: it is).
    """

    def __init__(
        self,
        kind: str,
        entries: dict[str, T] | None = None,
        *,
        group: str | None = None,
        accepts: Callable[[object], str | None] | None = None,
    ):
        super().__init__(entries or {})
        self.kind, self.group = kind, group
        self.accepts = accepts or (lambda obj: None)
        self._loaded: dict[str, T] = {}  # canonical spec -> entry (imported plugins)
        self._entry_points: dict | None = None

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` (a name is registered once); returns the entry."""
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self[name] = entry
        return entry

    # -- plugins -----------------------------------------------------------------------------
    def entry_points(self) -> dict:
        """Installed plugins of this registry's group: name -> ``EntryPoint`` (read once).
        A plugin named like a built-in is left out (the built-in wins; :meth:`listing` says so)."""
        if self._entry_points is None:
            found = {}
            if self.group:
                found = {ep.name: ep for ep in _installed_entry_points().select(group=self.group)}
            self._entry_points = found
        return {n: ep for n, ep in self._entry_points.items() if n not in self}

    def names(self) -> list[str]:
        """Every name a user may type: the built-ins, then installed plugins, sorted."""
        return [*self, *sorted(self.entry_points())]

    def listing(self) -> list[tuple[str, str]]:
        """``(name, origin)`` for every built-in and installed plugin: ``built-in``, or
        ``plugin <distribution> (<module:attr>)``."""
        rows = [(name, BUILT_IN) for name in self]
        for name in sorted(self.entry_points()):
            ep = self._entry_points[name]
            dist = getattr(ep.dist, "name", None) or "?"
            rows.append((name, f"plugin {dist} ({ep.value})"))
        shadowed = sorted(set(self._entry_points or {}) & set(self))
        rows += [(name, "plugin ignored: a built-in has this name") for name in shadowed]
        return rows

    # -- lookup ------------------------------------------------------------------------------
    def check(self, spec: str) -> str:
        """The canonical form of ``spec`` once it resolves (see the module docstring)."""
        if spec in self:
            return spec
        entry = self.resolve(spec)  # errors name the spec as the user wrote it
        canonical = canonical_spec(spec) if is_spec(spec) else spec
        self._loaded[canonical] = entry
        return canonical

    def resolve(self, spec: str) -> T:
        """The entry ``spec`` names; built-ins first, then entry points, then import specs."""
        if spec in self:
            return self[spec]
        if spec in self._loaded:
            return self._loaded[spec]
        if is_spec(spec):
            obj = load_spec(spec, self.kind)
        else:
            ep = self.entry_points().get(spec)
            if ep is None:
                more = " (or a plugin: 'package.module:Class' or 'path/to/file.py:Class')"
                raise UnknownNameError(self.kind, spec, self.names(), more if self.group else "")
            try:
                obj = ep.load()
            except Exception as exc:
                raise InputError(
                    f"{self.kind} {spec!r} (entry point {ep.value}): import failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        why = self.accepts(obj)
        if why:
            raise InputError(f"{self.kind} {spec!r}: {why}")
        self._loaded[spec] = obj
        return obj

    def parse(self, text: str) -> list[str]:
        """``"all"`` (every built-in: the same set on every machine, whatever plugins are
        installed) or a comma list of specs, each checked; returns canonical specs."""
        if text.strip() == "all":
            return list(self)
        return [self.check(name) for name in parse_list(text, f"--{self.kind}")]


@functools.cache
def _installed_entry_points():
    """Every installed distribution's entry points, read once per process (one scan of the
    installed metadata serves every registry's group)."""
    from importlib.metadata import entry_points

    return entry_points()
