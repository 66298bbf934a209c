"""Azure LLM inference trace reader (2023 Splitwise and 2024 week-long releases).

Columns ``TIMESTAMP`` (wall clock, e.g. ``2023-11-16 18:15:46.6805900``, optionally with a zone
offset), ``ContextTokens`` (prompt) and ``GeneratedTokens`` (output). Arrival seconds count from
the first row. The source has no tenants or categories: the import options assign them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from driftsched.traces.importers import RawTrace, require_columns
from driftsched.traces.sources import cell_text, read_csv, source_ints

from driftsched.ground.errors import InputError

COLUMNS = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]


def _seconds(column: pa.ChunkedArray, path) -> np.ndarray:
    if pa.types.is_timestamp(column.type):
        ns = column.cast(pa.timestamp("ns")).to_numpy().astype("datetime64[ns]").astype(np.int64)
    else:
        text = column.to_pandas()
        try:
            parsed = pd.to_datetime(text, format="ISO8601", utc=True)
        except (ValueError, TypeError, OverflowError):
            parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        if parsed.isna().any():
            row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise InputError(
                f"{path}, row {row + 1}, column 'TIMESTAMP': expected a date-time like "
                f"2023-11-16 18:15:46.68, got {cell_text(text.iloc[row])}"
            )
        ns = parsed.to_numpy().astype("datetime64[ns]").astype(np.int64)
    return (ns - ns.min()) / 1e9 if ns.size else ns.astype(np.float64)


def read_azure(path) -> RawTrace:
    table = read_csv(path, {"ContextTokens": pa.int64(), "GeneratedTokens": pa.int64()})
    require_columns(pd.DataFrame(columns=table.column_names), path, COLUMNS, "Azure LLM trace")
    frame = pd.DataFrame(
        {
            "arrival_s": _seconds(table["TIMESTAMP"], path),
            "prompt_tokens": source_ints(table["ContextTokens"], path, "ContextTokens"),
            "output_tokens": source_ints(table["GeneratedTokens"], path, "GeneratedTokens"),
        }
    )
    return RawTrace(frame)
