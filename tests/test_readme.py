"""The README runs as written: every ``bash`` and ``python`` block, in order, in one scratch
folder laid out like a clone (``../shared`` beside it), each command exiting 0.

The first two blocks (install + main job, install + tests) are CI's own first two steps and are
not repeated here, nor is the main job where the tour shows it again; ``pip`` lines are skipped
(the test runs in the installed environment). Commands that need vLLM (``driftsched calibrate
profile``/``fit`` on a fresh profile, ``validate run``; none of them reads an earlier step's
output but their own) run in a separate test marked ``live``, in CI's live step; ``validate
run`` may exit 3 — the documented outcome of a gate it was asked to apply — but never anything
else.

Run with ``pytest -m readme`` (CI does); plain ``pytest`` leaves these out (minutes of runs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED_TRACES

LIVE = ("driftsched calibrate profile", "driftsched calibrate fit", "driftsched validate run")


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced ``bash``/``python`` block, in order."""
    return re.findall(r"^```(bash|python)\n(.*?)^```", text, flags=re.S | re.M)


def bash_commands(code: str) -> list[str]:
    """A bash block's commands: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\s*\\\n\s*", " ", code)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def steps() -> list[tuple[str, str, bool]]:
    """``(language, code or command, live)`` for everything the test runs, in README order;
    where the tour repeats the main job (the first block's last command, CI's own first step,
    run as written there), it is not run again."""
    blocks = readme_blocks((REPO / "README.md").read_text())
    main_job = blocks[0][1].strip().split("&&")[-1].strip()
    out = []
    for lang, code in blocks[2:]:
        if lang == "python":
            out.append(("python", code, False))
            continue
        for cmd in bash_commands(code):
            if cmd.startswith("pip ") or cmd.split("#")[0].strip() == main_job:
                continue
            out.append(("bash", cmd, cmd.startswith(LIVE)))
    return out


def test_the_reader_sees_the_readme():
    """Not vacuous: the README's tour and its Python section are found."""
    found = steps()
    commands = [c for lang, c, _ in found if lang == "bash"]
    assert any(c.startswith("driftsched sweep") for c in commands)
    assert not any(c.startswith("driftsched paper -o out/paper") for c in commands)  # CI's own
    assert any("driftsched traces import azure" in c for c in commands)
    assert any(lang == "python" and "import driftsched" in c for lang, c, _ in found)
    assert bash_commands("a \\\n   b  # x\n# comment\n\nc\n") == ["a b  # x", "c"]


def run_readme(tmp_path: Path, live: bool) -> Path:
    """Every step of the README (``live``: the ones that need vLLM; else the others), in a
    folder laid out like a clone under ``tmp_path``; returns that folder."""
    if not SHARED_TRACES.is_dir():
        pytest.skip(f"the README's examples read ../shared/traces; not found at {SHARED_TRACES}")
    work = tmp_path / "clone"
    work.mkdir()
    # what of a clone the examples read besides their own outputs: the example plugin package
    shutil.copytree(
        REPO / "examples", work / "examples", ignore=shutil.ignore_patterns("*.egg-info")
    )
    (tmp_path / "shared").symlink_to(SHARED_TRACES.parent)
    env = {**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "120"}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    ran = 0
    for lang, code, needs_live in steps():
        if needs_live != live:  # the live steps need no earlier step's output
            continue
        if lang == "python":
            argv = [sys.executable, "-c", code]
        else:
            argv = ["bash", "-c", f"set -o pipefail; {code}"]
        started = time.monotonic()
        r = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=1500)
        print(f"{time.monotonic() - started:7.1f} s  exit {r.returncode}  {code[:90]!r}")
        allowed = (0, 3) if code.startswith("driftsched validate run") else (0,)
        assert r.returncode in allowed, (
            f"README step failed (exit {r.returncode}): {code}\n{r.stdout[-3000:]}\n"
            f"{r.stderr[-3000:]}"
        )
        ran += 1
    assert ran
    return work


@pytest.mark.readme
def test_every_readme_example_runs_as_written(tmp_path):
    run_readme(tmp_path, live=False)


@pytest.mark.readme
@pytest.mark.live
def test_every_readme_example_runs_as_written_with_vllm(tmp_path):
    """With ``DRIFTSCHED_LIVE_FLOW`` set, the folder the commands ran in is kept there (a copy)
    for tests/test_live.py to gate on (CI does: the calibration and validation run once)."""
    pytest.importorskip("vllm")
    work = run_readme(tmp_path, live=True)
    keep = os.environ.get("DRIFTSCHED_LIVE_FLOW")
    if keep:
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(work, keep, symlinks=True)
