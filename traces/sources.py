"""Low-level readers shared by importers: open CSV/JSONL with pyarrow, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from driftsched.ground.errors import InputError


def _check(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return path


def _fail(path, what: str, exc: Exception) -> InputError:
    lines = str(exc).strip().splitlines()
    return InputError(f"{path}: cannot read as {what}: {lines[0] if lines else type(exc).__name__}")


def read_csv(path, column_types: dict | None = None) -> pa.Table:
    """Read a CSV with pyarrow (multi-threaded, typed where ``column_types`` says). A cell that
    does not convert is reported as ``path, row N, column 'C': expected ..., got 'cell'``."""
    path = _check(path)

    def read(types):
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )

    try:
        return read(column_types or {})
    except pa.ArrowInvalid as exc:
        if column_types:  # find the cell: read those columns as text and convert them here
            try:
                table = read({c: pa.string() for c in column_types})
            except (pa.ArrowInvalid, OSError):
                raise _fail(path, "CSV", exc) from None
            for name, kind in column_types.items():
                if name in table.column_names and pa.types.is_integer(kind):
                    source_ints(table[name], path, name)
        raise _fail(path, "CSV", exc) from None
    except OSError as exc:
        raise _fail(path, "CSV", exc) from None


def cell_text(cell) -> str:
    """A source cell for an error message: ``nothing`` for a missing one, else its repr."""
    return "nothing" if cell is None or cell != cell else repr(cell)


def source_ints(column, path, name: str, first_row: int = 1) -> np.ndarray:
    """A source column as int64; a missing, fractional or non-numeric cell is an
    :class:`InputError` naming ``path``, the row (counting requests from ``first_row``), the
    column and the cell as written."""
    return _source_numbers(column, path, name, first_row, integer=True).astype(np.int64)


def source_floats(column, path, name: str, first_row: int = 1) -> np.ndarray:
    """A source column as float64, reported as :func:`source_ints` does (any finite number)."""
    return _source_numbers(column, path, name, first_row, integer=False)


def _source_numbers(column, path, name: str, first_row: int, integer: bool) -> np.ndarray:
    import pandas as pd

    values = column.to_pandas() if hasattr(column, "to_pandas") else pd.Series(column)
    if pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        return values.to_numpy(dtype=np.int64 if integer else np.float64)
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(numeric)
    if integer:
        bad |= numeric != np.round(numeric)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        shown = cell_text(values.iloc[row])
        wanted = "an integer token count" if integer else "a finite number"
        raise InputError(
            f"{path}, row {row + first_row}, column {name!r}: expected {wanted}, got {shown}"
        )
    return numeric


def read_jsonl(path) -> pa.Table:
    """Read newline-delimited JSON with pyarrow."""
    path = _check(path)
    try:
        return pajson.read_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _fail(path, "JSON lines", exc) from None
