"""Shared fixtures: factories for small traces, the real traces beside the repo, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_TRACES = Path(os.environ.get("DRIFTSCHED_SHARED", REPO.parent / "shared")) / "traces"


def make_frame(n: int = 5, **columns) -> pd.DataFrame:
    """A valid raw trace frame of ``n`` rows; keyword arguments replace whole columns."""
    base = {
        "request_id": [f"r{i}" for i in range(n)],
        "arrival_s": [0.5 * i for i in range(n)],
        "tenant": ["a", "b"] * (n // 2) + ["a"] * (n % 2),
        "tier": ["premium", "batch"] * (n // 2) + ["standard"] * (n % 2),
        "category": ["short_qa"] * n,
        "prompt_tokens": [10 + i for i in range(n)],
        "output_tokens": [5 + i for i in range(n)],
        "max_tokens": [64] * n,
    }
    base.update(columns)
    return pd.DataFrame(base)


@pytest.fixture
def shared_traces() -> Path:
    """The real public traces in ../shared/traces; skips the test when they are absent."""
    if not SHARED_TRACES.is_dir():
        pytest.skip(f"real traces not found at {SHARED_TRACES}")
    return SHARED_TRACES


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``driftsched ARGS`` in a subprocess (as a user would) and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "driftsched.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )
