"""The layout's rules, read from the source: who may import whom, and how big a module may grow.

- the ground floor (``driftsched/ground``) imports no subsystem and not the face;
- no subsystem (``sim``, ``traces``, ``calibrate``, ``validate``) imports the CLI or the public
  API module (``import driftsched`` / ``from driftsched import ...``);
- ``sim`` and ``traces`` import neither ``calibrate`` nor ``validate`` (the model does not
  depend on what measures it), and ``traces`` does not import ``sim``;
- no module is over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {
    "ground": REPO / "driftsched" / "ground",
    "sim": REPO / "sim",
    "traces": REPO / "traces",
    "calibrate": REPO / "calibrate",
    "validate": REPO / "validate",
    "cli": REPO / "driftsched" / "cli",
}
SUBSYSTEMS = ("sim", "traces", "calibrate", "validate")
#: folder -> module prefixes it must never import
FORBIDDEN = {
    "ground": ["driftsched.sim", "driftsched.traces", "driftsched.calibrate",
               "driftsched.validate", "driftsched.cli", "driftsched"],
    "sim": ["driftsched.cli", "driftsched", "driftsched.calibrate", "driftsched.validate"],
    "traces": ["driftsched.cli", "driftsched", "driftsched.sim", "driftsched.calibrate",
               "driftsched.validate"],
    "calibrate": ["driftsched.cli", "driftsched", "driftsched.validate"],
    "validate": ["driftsched.cli", "driftsched"],
}  # fmt: skip
MAX_LINES = 400


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import in ``path``; ``from driftsched import x`` counts as
    importing ``driftsched`` itself (the public API module)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
    return out


def _violates(module: str, prefix: str) -> bool:
    if prefix == "driftsched":  # the public API module itself, not its subpackages
        return module == "driftsched"
    return module == prefix or module.startswith(prefix + ".")


def _modules(folder: str) -> list[Path]:
    return sorted(FOLDERS[folder].rglob("*.py"))


@pytest.mark.parametrize("folder", list(FORBIDDEN))
def test_no_forbidden_imports(folder):
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in _modules(folder)
        for line, module in imports(path)
        for prefix in FORBIDDEN[folder]
        if _violates(module, prefix)
    ]
    assert not bad, "\n".join(bad)


def test_the_rule_reader_sees_real_imports():
    """The reader is not vacuous: it finds the imports these modules are known to make."""
    found = {m for _, m in imports(REPO / "sim" / "tracecheck.py")}
    assert {"driftsched.sim.profile", "driftsched.ground.errors", "numpy"} <= found
    assert _violates("driftsched", "driftsched") and not _violates("driftsched.sim", "driftsched")
    assert _violates("driftsched.cli.common", "driftsched.cli")


@pytest.mark.parametrize("folder", [*SUBSYSTEMS, "ground", "cli"])
def test_no_module_over_400_lines(folder):
    long = [
        f"{p.relative_to(REPO)}: {n} lines"
        for p in _modules(folder)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, "\n".join(long)
