"""Terminal output helpers: rich tables from DataFrames, and the one-line error format."""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.table import Table

# Piped output (files, CI logs, tests) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)


def fmt(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000 or value == int(value):
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def table(frame: pd.DataFrame, title: str | None = None, index: bool | str = False) -> Table:
    """A rich Table of ``frame`` (numbers right-aligned, floats shortened)."""
    if index:
        frame = frame.reset_index(names=index if isinstance(index, str) else "index")
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        t.add_column(str(col), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        t.add_row(*(fmt(v) for v in row))
    return t


_INTERRUPT_NOTE: list[str] = []


def on_interrupt(note: str) -> None:
    """Say what an interrupt (Ctrl-C) at this point would leave behind; the CLI prints it in
    its one ``interrupted`` line (the last note given wins)."""
    _INTERRUPT_NOTE[:] = [note]


def interrupt_note() -> str:
    return _INTERRUPT_NOTE[0] if _INTERRUPT_NOTE else ""


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)
