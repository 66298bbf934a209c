"""The compiled build and the pure-Python build are one implementation: the same records.

The compiled build is the ``.py`` sources of :data:`driftsched.ground.compiled.COMPILED` put
through Cython unchanged; ``DRIFTSCHED_PURE=1`` runs the sources instead. Here the refactor
fingerprints (every dispatch path, both engines) are computed in this process and in a
``DRIFTSCHED_PURE=1`` subprocess and must match each other and the golden file bit for bit.
CI also runs the fast-forward equality properties under ``DRIFTSCHED_PURE=1`` (``.ci/run``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from driftsched.ground.compiled import (
    COMPILED,
    _SourceWhenStale,
    build,
    source_digest,
    source_path,
)
from tests.test_refactor_hashes import CASES, GOLDEN, digests

ROOT = Path(__file__).resolve().parents[1]
#: the fingerprint cases that need no shared trace
LOCAL = [name for name, (kind, _) in CASES.items() if kind != "azure"]


def _in_pure_python(code: str) -> str:
    env = {**os.environ, "DRIFTSCHED_PURE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_every_compiled_module_has_its_source_in_the_tree():
    for name in COMPILED:
        assert (ROOT / source_path(name)).is_file(), name


def test_the_pure_switch_runs_the_sources():
    out = _in_pure_python(
        "from driftsched.ground.compiled import build\n"
        "import driftsched.sim.fastengine as m\n"
        "print(build(), m.__file__)"
    )
    kind, path = out.split()
    assert kind == "pure" and path.endswith("fastengine.py")


def test_a_module_edited_since_the_build_runs_as_source():
    name = "driftsched.sim.fastengine"
    folder = str(ROOT / "sim")
    path = str(ROOT / source_path(name))
    finder = _SourceWhenStale(pure=False)
    finder.built = {name: source_digest(path, name)}  # built from this very source: the extension
    assert finder.find_spec(name, [folder]) is None
    finder.built = {name: "0" * 64}  # built from another source: this one runs
    assert finder.find_spec(name, [folder]).origin == path
    finder.built = {}  # never built (pure install, or no manifest)
    assert finder.find_spec(name, [folder]).origin == path
    assert _SourceWhenStale(pure=False).find_spec("driftsched.sim.config", [folder]) is None


@pytest.mark.skipif(build() != "compiled", reason="this install is pure Python: one build only")
def test_compiled_and_pure_builds_give_bit_identical_results():
    code = (
        "import json\n"
        "from tests.test_refactor_hashes import digests\n"
        f"print(json.dumps({{n: digests(n) for n in {LOCAL!r}}}))"
    )
    pure = json.loads(_in_pure_python(code).strip().splitlines()[-1])
    compiled = {name: digests(name) for name in LOCAL}
    golden = json.loads(GOLDEN.read_text())
    assert compiled == pure
    assert pure == {name: golden[name] for name in LOCAL}


@pytest.mark.slow
def test_without_a_c_compiler_the_build_succeeds_as_pure_python(tmp_path):
    pytest.importorskip("Cython", reason="the build's Cython (the test extra installs it)")
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT, tree, ignore=shutil.ignore_patterns(".*", "out", "build", "*.so", "__pycache__")
    )
    env = {**os.environ, "CC": "/bin/false"}
    env.pop("DRIFTSCHED_PURE_BUILD", None)
    out = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=tree, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "not compiled" in out.stderr  # said, once per module
    assert not list(tree.rglob("*.so"))
    manifest = tree / "driftsched" / "ground" / "compiled_sources.json"
    assert json.loads(manifest.read_text()) == {}  # nothing recorded as built: all source


def test_a_module_typed_against_another_is_rebuilt_with_it():
    """fastengine's extension is compiled against engine's C classes (its .pxd cimports them):
    its digest covers engine's source and declarations, so an edit to either runs both as
    source — never a compiled fastengine beside an engine it no longer matches."""
    from driftsched.ground.compiled import _build_inputs

    name = "driftsched.sim.fastengine"
    files = _build_inputs(str(ROOT / source_path(name)), name, set())
    names = sorted(os.path.relpath(f, ROOT) for f in files)
    assert names == sorted(
        f"sim/{m}.{ext}" for m in ("fastengine", "engine", "enginestate") for ext in ("py", "pxd")
    )
