"""The simulator's compiled path: which modules are built as C extensions, and the switch that
runs their Python source instead.

The readable Python is the only implementation. At install time (``setup.py``) Cython
compiles the modules of :data:`COMPILED` *unchanged* — no type declarations, annotations not
used for typing — into extension modules that sit beside their ``.py`` files and that Python
imports in their place. Where no C compiler or Cython is available, or with
``DRIFTSCHED_PURE_BUILD=1`` at install time, nothing is compiled and the package is pure Python.

``DRIFTSCHED_PURE=1`` at run time makes an installed compiled build run its ``.py`` sources:
a meta-path finder (:func:`honour_pure_switch`, installed when ``driftsched`` is imported, so
before any of these modules) loads the source of every module in :data:`COMPILED`. That is how
one machine runs both builds side by side, and how the tests show them byte-identical. The same
finder runs the source of a module edited since the install (the build records each source's
digest in :data:`MANIFEST`): in an editable checkout an edit takes effect at once, slower until
the next ``pip install -e .`` compiles it.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

#: the per-request hot path of a simulation (module names, as imported). Not a module whose
#: pydantic models have methods or validators: pydantic does not take a compiled function for
#: one (fields-only models, like the parameter models here, compile fine).
COMPILED = (
    "driftsched.sim.arrivalcursor",
    "driftsched.sim.costmodel",
    "driftsched.sim.dispatcher",
    "driftsched.sim.engine",
    "driftsched.sim.enginestate",
    "driftsched.sim.fastengine",
    "driftsched.sim.gateway",
    "driftsched.sim.gatewaystate",
    "driftsched.sim.kvcache",
    "driftsched.sim.prefixcache",
    "driftsched.sim.records",
    "driftsched.sim.replica",
    "driftsched.sim.request",
    "driftsched.sim.router",
    "driftsched.sim.simulation",
    "driftsched.sim.timeseries",
    "driftsched.sim.correctors.base",
    "driftsched.sim.correctors.ewma",
    "driftsched.sim.correctors.none",
    "driftsched.sim.policies.base",
    "driftsched.sim.policies.fifo",
    "driftsched.sim.policies.queues",
    "driftsched.sim.policies.sjf",
)
#: the package folders the module names above live in (``package-dir`` in pyproject.toml)
SOURCE_DIRS = {"driftsched.sim": "sim"}
PURE_ENV = "DRIFTSCHED_PURE"
PURE_BUILD_ENV = "DRIFTSCHED_PURE_BUILD"
#: written by the build beside this module: each compiled module's source digest
MANIFEST = "compiled_sources.json"


def source_path(module: str) -> str:
    """``driftsched.sim.policies.sjf`` -> ``sim/policies/sjf.py`` (relative to the repo)."""
    for package, folder in SOURCE_DIRS.items():
        if module.startswith(package + "."):
            rest = module[len(package) + 1 :].split(".")
            return os.path.join(folder, *rest) + ".py"
    raise ValueError(f"{module} is not in a compiled package")


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def source_digest(path: str, module: str) -> str:
    """SHA-256 over what ``module``'s extension is built from: its source at ``path``, the
    ``.pxd`` beside it (the C types of the compiled build, if any) and, through that file's
    ``cimport`` lines, the same of every module it is typed against — so an edit to
    ``engine.py`` also makes ``fastengine``, compiled against its classes, run as source."""
    import hashlib  # here: OpenSSL's start-up is ~10 ms a CLI's --help need not pay

    digest = hashlib.sha256()
    for part in _build_inputs(path, module, set()):
        with open(part, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def _build_inputs(path: str, module: str, seen: set[str]) -> list[str]:
    """The files ``module``'s extension is built from (see :func:`source_digest`)."""
    seen.add(module)
    files = [path]
    declarations = path[: -len(".py")] + ".pxd"
    if not os.path.exists(declarations):
        return files
    files.append(declarations)
    package = next(p for p in SOURCE_DIRS if module.startswith(p + "."))
    # the package's folder: ``path`` less the module's name within the package
    root = path
    for _ in module[len(package) + 1 :].split("."):
        root = os.path.dirname(root)
    with open(declarations) as f:
        cimported = [
            line.split()[1] for line in f if line.startswith("from ") and " cimport " in line
        ]
    for dep in cimported:
        if dep.startswith(package + ".") and dep not in seen:
            rest = dep[len(package) + 1 :].split(".")
            files += _build_inputs(os.path.join(root, *rest) + ".py", dep, seen)
    return files


def _manifest() -> dict[str, str]:
    """``{module: source digest}`` written by the build beside this file; empty if none."""
    import json

    try:
        with open(os.path.join(os.path.dirname(__file__), MANIFEST)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class _SourceWhenStale:
    """A meta-path finder (``find_spec``; not an ``importlib.abc`` subclass: importing that
    costs ~8 ms at every start). Finds a module of :data:`COMPILED` as its ``.py`` source when
    the pure build is asked for, or when the extension beside it was not built from that
    source (edited since the install): an edit always runs, never a stale build of it."""

    def __init__(self, pure: bool):
        self.pure, self._built = pure, None

    @property
    def built(self) -> dict[str, str]:
        """The build manifest, read when a compiled module is first looked for."""
        if self._built is None:
            self._built = _manifest()
        return self._built

    @built.setter
    def built(self, value: dict[str, str]) -> None:
        self._built = value

    def find_spec(self, fullname, path, target=None):
        if fullname not in _NAMES or not path:
            return None
        leaf = fullname.rpartition(".")[2] + ".py"
        for folder in path:
            candidate = os.path.join(folder, leaf)
            if os.path.exists(candidate):
                if not self.pure and self.built.get(fullname) == source_digest(candidate, fullname):
                    return None  # the extension is this source, compiled: the usual finders
                loader = importlib.machinery.SourceFileLoader(fullname, candidate)
                return importlib.util.spec_from_file_location(fullname, candidate, loader=loader)
        return None


_NAMES = frozenset(COMPILED)


def honour_pure_switch() -> None:
    """Put the finder ahead of the others (once): the sources run with ``DRIFTSCHED_PURE=1``
    and for any module edited since its extension was built."""
    if not any(isinstance(f, _SourceWhenStale) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceWhenStale(pure_requested()))


def build() -> str:
    """``compiled`` (every module of :data:`COMPILED` would be imported from an extension),
    ``pure`` (none) or ``mixed (source: <those that run as source>)``. Looks at the files the
    finder would choose between, importing none of the modules (``--version`` stays fast)."""
    finder = _SourceWhenStale(pure_requested())
    source = [name for name in COMPILED if not _runs_compiled(name, finder)]
    if not source:
        return "compiled"
    if len(source) == len(COMPILED):
        return "pure"
    return "mixed (source: " + ", ".join(name.rpartition(".")[2] for name in source) + ")"


def _runs_compiled(name: str, finder: _SourceWhenStale) -> bool:
    module = sys.modules.get(name)
    if module is not None:
        return not (getattr(module, "__file__", "") or "").endswith(".py")
    package = next(p for p in SOURCE_DIRS if name.startswith(p + "."))
    spec = importlib.util.find_spec(package)  # the package's light __init__ only
    if spec is None or not spec.submodule_search_locations:
        return False
    rest = name[len(package) + 1 :].split(".")
    folder = os.path.join(spec.submodule_search_locations[0], *rest[:-1])
    extension = any(
        os.path.exists(os.path.join(folder, rest[-1] + suffix))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )
    return extension and finder.find_spec(name, [folder]) is None
