"""Loading a user's extension from a *spec*: ``package.module:Attr`` or ``path/to/file.py:Attr``.

A spec names an object by where it lives, so any process — a sweep's pool worker, a Ray worker,
the live gateway — imports it afresh from the same string; nothing depends on a registry patched
in the parent process. Entry points (``[project.entry-points."driftsched.policies"]`` in a
plugin package's pyproject) are the third way in; :class:`~driftsched.ground.registry.Registry`
reads them.

Every failure is an :class:`~driftsched.ground.errors.InputError` of one line that names the spec.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path

from driftsched.ground.errors import InputError

#: prefix of the module name a file named by path is imported as (one module per resolved path)
FILE_MODULE_PREFIX = "driftsched_plugin_"


def is_spec(text: str) -> bool:
    """Whether ``text`` names an object by location (``module:Attr`` / ``file.py:Attr``)
    rather than by a registered name."""
    return ":" in text


def canonical_spec(spec: str) -> str:
    """The spec as every process can read it: a file path made absolute (a Ray worker or a
    pool worker may run elsewhere); module specs unchanged."""
    where, _, attr = spec.rpartition(":")
    if _is_file(where):
        return f"{Path(where).expanduser().resolve()}:{attr}"
    return spec


def load_spec(spec: str, kind: str) -> object:
    """Import the object ``spec`` names. ``kind`` (policy, corrector, router) is for messages."""
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise InputError(
            f"{kind} {spec!r}: expected a registered name, 'package.module:Class' or "
            "'path/to/file.py:Class'"
        )
    module = (
        _import_file(where, spec, kind) if _is_file(where) else _import_module(where, spec, kind)
    )
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InputError(f"{kind} {spec!r}: {where} has no attribute {attr!r}") from None
    return obj


def spec_of(obj: object) -> str:
    """``module:QualifiedName`` of a class (or of an instance's class): how outputs label an
    extension handed over as a Python object."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def file_safe(spec: str) -> str:
    """A registered name as it is; a plugin spec (``pkg.mod:Class``, ``dir/file.py:Class``)
    as its object's name plus a short hash of the whole spec, so distinct specs stay distinct."""
    if ":" not in spec:
        return spec
    name = re.sub(r"[^A-Za-z0-9_.]+", "_", spec.rpartition(":")[2])
    return f"{name}.{hashlib.sha1(spec.encode()).hexdigest()[:8]}"


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _import_module(name: str, spec: str, kind: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise InputError(f"{kind} {spec!r}: cannot import {name!r}: {exc}") from None
    except Exception as exc:  # the plugin's own code failed on import
        raise InputError(
            f"{kind} {spec!r}: importing {name!r} failed: {type(exc).__name__}: {exc}"
        ) from None


def _import_file(where: str, spec: str, kind: str):
    path = Path(where).expanduser().resolve()
    if not path.is_file():
        raise InputError(f"{kind} {spec!r}: no such file {where!r}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"{FILE_MODULE_PREFIX}{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise InputError(f"{kind} {spec!r}: {where!r} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before running it: dataclasses and pickling look it up
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise InputError(
            f"{kind} {spec!r}: running {where!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    return module
