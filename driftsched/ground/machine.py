"""The machine a figure was measured on (every timing figure is printed beside it)."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_line() -> str:
    """``"<CPU model>, <n> cores, Python <version>, simulator <build>"``: the build is
    ``compiled`` or ``pure`` (:mod:`driftsched.ground.compiled`), ~1.4x apart in speed."""
    from driftsched.ground.compiled import build

    return (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"simulator {build()}"
    )
