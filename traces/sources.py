"""Low-level readers shared by importers: open CSV/JSONL with pyarrow, one-line errors."""

from __future__ import annotations

from pathlib import Path

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
    """Read a CSV with pyarrow (multi-threaded, typed where ``column_types`` says)."""
    path = _check(path)
    try:
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=column_types or {}, strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise _fail(path, "CSV", exc) from None


def read_jsonl(path) -> pa.Table:
    """Read newline-delimited JSON with pyarrow."""
    path = _check(path)
    try:
        return pajson.read_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise _fail(path, "JSON lines", exc) from None
