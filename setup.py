"""Build hook: compile the simulator's hot path with Cython where possible (else pure Python).

Everything else about the package is in pyproject.toml. The modules compiled, and why the
build stays optional, are in driftsched/ground/compiled.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_compiled", HERE / "driftsched/ground/compiled.py")
compiled = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compiled)


class OptionalBuildExt(build_ext):
    """A module that fails to compile stays pure Python: the install never fails for it. The
    modules built are recorded with their source digests (``compiled.MANIFEST``), so that a
    source edited after the build runs as source, never as the stale extension."""

    def run(self):
        self.failed = set()
        root = HERE if self.inplace else Path(self.build_lib)
        target = root / "driftsched" / "ground" / compiled.MANIFEST
        digests = {
            ext.name: compiled.source_digest(str(HERE / compiled.source_path(ext.name)), ext.name)
            for ext in self.extensions
        }
        every = self.extensions
        if self.inplace:  # an editable install: what is built from today's source stays as is
            self.extensions = [ext for ext in every if not self._current(ext, digests, target)]
            if len(self.extensions) < len(every):
                _skip(f"{len(every) - len(self.extensions)} extensions up to date, not rebuilt")
        try:
            if self.extensions:
                super().run()
        except Exception as exc:  # no compiler, no headers
            _skip(f"C extensions not built ({exc}); driftsched runs as pure Python")
            self.failed = {ext.name for ext in self.extensions}
        self.extensions = every
        built = {name: d for name, d in digests.items() if name not in self.failed}
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(built, indent=1, sort_keys=True) + "\n")

    def _current(self, ext, digests: dict, manifest: Path) -> bool:
        """The in-place extension exists and was built from the source as it is now (so it is
        never rewritten under a process that has it loaded)."""
        source = HERE / compiled.source_path(ext.name)
        built = source.parent / os.path.basename(self.get_ext_filename(ext.name))
        try:
            recorded = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return False
        return built.exists() and recorded.get(ext.name) == digests[ext.name]

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            _skip(f"{ext.name} not compiled ({exc}); it runs as pure Python")
            self.failed.add(ext.name)


def _skip(message: str) -> None:
    print(f"driftsched: {message}", file=sys.stderr)


def _pxd_tree() -> str:
    """A directory where ``cimport driftsched.sim.engine`` finds ``sim/engine.pxd``: the
    source folders under their installed package names (``package-dir``), as symlinks."""
    root = HERE / "build" / "pxd"
    for package, folder in compiled.SOURCE_DIRS.items():
        link = root.joinpath(*package.split("."))
        link.parent.mkdir(parents=True, exist_ok=True)
        for parent in link.parents:
            if parent == root:
                break
            (parent / "__init__.pxd").touch()
        if not link.is_symlink():
            link.symlink_to(HERE / folder, target_is_directory=True)
    return str(root)


def extensions() -> list:
    if os.environ.get(compiled.PURE_BUILD_ENV, "") not in ("", "0"):
        _skip(f"{compiled.PURE_BUILD_ENV} is set: pure Python build")
        return []
    try:
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError:
        _skip("Cython is not installed: pure Python build")
        return []
    modules = [
        Extension(name, [compiled.source_path(name)])  # Python's own flags (-O3)
        for name in compiled.COMPILED
    ]
    return cythonize(
        modules,
        include_path=[_pxd_tree()],
        compiler_directives={
            "language_level": 3,
            "annotation_typing": False,  # annotations are documentation: Python semantics
            # binding: compiled functions keep their introspectable signature (inspect), so
            # no signature is embedded in their docstrings: __doc__ is the source's, both builds
            "binding": True,
        },
        build_dir="build/cython",  # the generated C stays out of the source tree
        nthreads=os.cpu_count() or 1,
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
