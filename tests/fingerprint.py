"""Content fingerprints of simulation outputs, independent of library versions.

A Parquet file's bytes carry the writer's version, so refactors are checked on content instead:
every column's name, dtype and values (numbers as their exact IEEE bytes, text as UTF-8) feed one
SHA-256. Two frames with the same fingerprint hold the same data to the last bit.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and values, in column order."""
    h = hashlib.sha256()
    h.update(str(len(frame)).encode())
    for name in frame.columns:
        col = frame[name]
        h.update(f"|{name}:{col.dtype}|".encode())
        if isinstance(col.dtype, pd.CategoricalDtype):
            h.update("\x1f".join(map(str, col.cat.categories)).encode())
            h.update(np.ascontiguousarray(col.cat.codes.to_numpy()).tobytes())
        elif pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            h.update(np.ascontiguousarray(col.to_numpy()).tobytes())
        else:
            h.update("\x1f".join(map(str, col.tolist())).encode())
    return h.hexdigest()


#: columns added since the golden fingerprints were taken (#14: a policy's admission decision).
#: A run with no rejections has them all empty — checked here — and they are then left out, so
#: the rest is compared bit for bit with the fingerprints taken before they existed.
ADDED_RECORD_COLUMNS = ("rejected", "reject_reason")
ADDED_SUMMARY_COLUMNS = ("rejected", "rejected_rate")


def result_digests(result) -> dict[str, str]:
    """Fingerprints of a :class:`~driftsched.sim.result.SimResult`: records, time series,
    corrector series, and the summaries (overall, by tier, by tenant) plus the run's counters."""
    summaries = pd.concat(
        [result.summary(), result.summary("tier"), result.summary("tenant")], ignore_index=True
    )
    records = result.records
    assert not records["rejected"].any() and records["reject_reason"].isna().all()
    assert (summaries["rejected"] == 0).all() and (summaries["rejected_rate"] == 0).all()
    records = records.drop(columns=list(ADDED_RECORD_COLUMNS))
    summaries = summaries.drop(columns=list(ADDED_SUMMARY_COLUMNS))
    counters = {k: result.meta[k] for k in ("engine_events", "engine_steps", "simulated_until_s")}
    counters["engine_busy_s"] = float(result.meta["engine_busy_s"]).hex()
    return {
        "records": frame_digest(records),
        "series": frame_digest(result.series),
        "corrector": frame_digest(result.corrector_series),
        "summary": frame_digest(summaries),
        "counters": hashlib.sha256(json.dumps(counters, sort_keys=True).encode()).hexdigest(),
    }
