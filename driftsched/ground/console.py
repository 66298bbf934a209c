"""Terminal output helpers: rich tables from DataFrames, and the one-line error format."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # pandas costs ~0.2 s to import: only the commands that print tables pay
    import pandas as pd

# Piped output (files, CI logs, tests) gets 160 columns (or $COLUMNS) instead of rich's 80.
console = Console(width=None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "") or 160))


def fmt(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000 or value == int(value):
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def table(frame: pd.DataFrame, title: str | None = None, index: bool | str = False, width=None):
    """``frame`` as rich tables that never cut a value: numbers right-aligned and shortened by
    :func:`fmt`, no ellipsis anywhere (a long header folds), and when the columns do not fit
    the console's width (or ``width``) they are split over several tables, each repeating the
    leading text columns that identify a row (the narrow layout). A text too long for a line
    beside those columns (a description) wraps within its cell. Values are printed as they
    are: ``[x]`` is text, not rich markup."""
    import pandas as pd

    if index:
        frame = frame.reset_index(names=index if isinstance(index, str) else "index")
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    return rows_table(
        list(frame.itertuples(index=False)), list(frame.columns), numeric, title, width
    )


def rows_table(rows, columns, numeric=None, title: str | None = None, width=None):
    """:func:`table` of plain ``rows`` (sequences) under ``columns``, without pandas (what a
    command that must start fast prints); ``numeric`` per column says which are right-aligned
    (default: none)."""
    from rich.console import Group
    from rich.text import Text

    names = [str(c) for c in columns]
    numeric = list(numeric) if numeric is not None else [False] * len(names)
    cells = [[fmt(v) for v in row] for row in rows]
    need = [
        max([min(len(name), HEADER_FOLD), *(len(r[k]) for r in cells)]) + PAD
        for k, name in enumerate(names)
    ]
    keys = []
    for k, is_number in enumerate(numeric):  # the leading text columns name each row
        if is_number or len(keys) >= 3:
            break
        keys.append(k)
    width = (width or console.width or 160) - 1
    keys_need = sum(need[k] for k in keys)
    for k, is_number in enumerate(numeric):  # prose too long for a line wraps in its cell
        beside = width - keys_need + (need[k] if k in keys else 0)  # beside the other keys
        if not is_number and need[k] > beside:
            need[k] = max(min(len(names[k]), HEADER_FOLD) + PAD, beside)
    groups, current = [], list(keys)
    for k in range(len(names)):
        if k in keys:
            continue
        if current != keys and sum(need[j] for j in [*current, k]) > width:
            groups.append(current)
            current = list(keys)
        current.append(k)
    groups.append(current)
    parts = []
    for g, cols in enumerate(groups):
        suffix = f" ({g + 1}/{len(groups)})" if len(groups) > 1 else ""
        heading = f"{title}{suffix}" if title else suffix.strip()
        t = Table(
            title=Text(heading) if heading else None, title_justify="left", header_style="bold"
        )
        for k in cols:
            t.add_column(
                Text(names[k]),
                justify="right" if numeric[k] else "left",
                overflow="fold",
                min_width=need[k] - PAD,
            )
        for row in cells:
            t.add_row(*(Text(row[k]) for k in cols))
        parts.append(t)
    return parts[0] if len(parts) == 1 else Group(*parts)


#: headers longer than this may fold (a table must fit); values never do
HEADER_FOLD = 24
PAD = 3  # a column's padding and border


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
