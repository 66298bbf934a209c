"""The gateway service's per-request log, in the simulator's record schema.

Every request that reaches the gateway ends with exactly one line in the log (JSON lines,
appended and flushed as each request ends, so a crash loses nothing already written):
``outcome`` says how it ended — ``finished``, ``rejected`` (the policy's admission decision),
``rate_limited``, ``queue_full``, ``cancelled`` (the client left), ``failed`` (the upstream
failed), ``unauthorized`` or ``bad_request`` — and ``reason`` why. Times are seconds since the
gateway started; ``upstream_s`` is how long the upstream took, from sending the request to its
last byte (what the gateway did not add). :func:`records_frame` turns a log into the
simulator's records table (:mod:`driftsched.sim.records` columns: ``finished``, ``rejected``
and ``reject_reason`` set from the outcome), which ``driftsched gateway export`` writes as a
run folder that ``driftsched report`` and the fidelity comparison read as they read a
simulation.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

#: outcomes that count as rejections in the records table (with the reason)
REJECTED = ("rejected", "rate_limited", "queue_full")
#: the log line's fields, in order
FIELDS = [
    "request_id",
    "tenant",
    "tier",
    "category",
    "arrival_s",
    "dispatch_s",
    "first_token_s",
    "finish_s",
    "done_s",
    "prompt_tokens",
    "max_tokens",
    "estimate_tokens",
    "est_class",
    "generated_tokens",
    "dispatch_order",
    "batch_id",
    "replica",
    "upstream_s",
    "attempts",
    "outcome",
    "reason",
    "status",
]


class RecordLog:
    """Appends one JSON line per ended request to ``path`` (None: no log is written)."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def write(self, row: dict) -> None:
        if self._file is None:
            return
        clean = {k: _json_value(row.get(k)) for k in FIELDS}
        self._file.write(json.dumps(clean, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _json_value(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v


def read_log(path: str | Path) -> pd.DataFrame:
    """A log as a frame (one row per line); a torn last line (a crash mid-write) is skipped."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return pd.DataFrame(rows, columns=FIELDS)


def records_frame(log: pd.DataFrame) -> pd.DataFrame:
    """The simulator's records table of a gateway log (module docstring)."""
    f = log.copy()
    for c in ("arrival_s", "dispatch_s", "first_token_s", "finish_s", "done_s"):
        f[c] = pd.to_numeric(f[c], errors="coerce").astype(float)
    out = pd.DataFrame(
        {
            "request_id": f["request_id"].astype(str),
            "tenant": f["tenant"].astype(str),
            "tier": f["tier"].astype(str),
            "category": f["category"].astype(str),
            "arrival_s": f["arrival_s"],
            "dispatch_s": f["dispatch_s"],
            "scheduled_s": np.nan,  # inside the upstream engine: not seen by the gateway
            "first_token_s": f["first_token_s"],
            "finish_s": f["finish_s"],
            "done_s": f["done_s"],
        }
    )
    out["queue_wait_s"] = out["dispatch_s"] - out["arrival_s"]
    out["ttft_s"] = out["first_token_s"] - out["arrival_s"]
    out["e2e_s"] = out["done_s"] - out["arrival_s"]
    gen = pd.to_numeric(f["generated_tokens"], errors="coerce").fillna(0).astype(np.int64)
    decode_s = out["finish_s"] - out["first_token_s"]
    out["tpot_s"] = np.where(gen > 1, decode_s / (gen - 1).clip(lower=1), np.nan)
    out["prompt_tokens"] = (
        pd.to_numeric(f["prompt_tokens"], errors="coerce").fillna(0).astype(np.int64)
    )
    out["output_tokens"] = gen  # the true length is what the engine generated
    out["estimate_tokens"] = (
        pd.to_numeric(f["estimate_tokens"], errors="coerce").fillna(-1).astype(np.int64)
    )
    out["est_class"] = f["est_class"].fillna("").astype(str)
    out["preemptions"] = 0
    out["generated_tokens"] = gen
    for c in ("dispatch_order", "batch_id", "replica"):
        out[c] = pd.to_numeric(f[c], errors="coerce").fillna(-1).astype(np.int64)
    out["finished"] = f["outcome"].eq("finished").to_numpy()
    out["rejected"] = f["outcome"].isin(REJECTED).to_numpy()
    reason = f["outcome"].astype(str) + ": " + f["reason"].fillna("").astype(str)
    out["reject_reason"] = np.where(out["rejected"], reason, "")
    out["outcome"] = f["outcome"].astype(str)
    return out
