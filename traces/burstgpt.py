"""BurstGPT CSV reader (BurstGPT_1/2 layout, and BurstGPT_3 with ``Session ID``/``Elapsed time``).

Failed requests (``Response tokens`` 0) are dropped and counted under ``failed_zero_response``.
Extras kept for tenant rules: ``x_model``, ``x_log_type`` and, when present, ``x_session_id``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from driftsched.traces.importers import RawTrace, drop_rows, require_columns
from driftsched.traces.sources import read_csv

COLUMNS = ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"]


def read_burstgpt(path) -> RawTrace:
    table = read_csv(
        path,
        {
            "Timestamp": pa.float64(),
            "Request tokens": pa.int64(),
            "Response tokens": pa.int64(),
            "Session ID": pa.string(),
        },
    )
    require_columns(pd.DataFrame(columns=table.column_names), path, COLUMNS, "BurstGPT")
    frame = pd.DataFrame(
        {
            "arrival_s": table["Timestamp"].to_numpy(),
            "prompt_tokens": table["Request tokens"].to_numpy(),
            "output_tokens": table["Response tokens"].to_numpy(),
            "x_model": table["Model"].to_pandas().astype("string"),
            "x_log_type": table["Log Type"].to_pandas().astype("string"),
        }
    )
    if "Session ID" in table.column_names:
        frame["x_session_id"] = table["Session ID"].to_pandas().astype("string")
    dropped: dict[str, int] = {}
    frame = drop_rows(
        frame, frame["output_tokens"].to_numpy() == 0, "failed_zero_response", dropped
    )
    frame["arrival_s"] = frame["arrival_s"].to_numpy(dtype=np.float64)
    return RawTrace(frame.reset_index(drop=True), dropped)
