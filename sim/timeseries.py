"""What a run samples over time: queue depths, engine occupancy and KV use
(:class:`SeriesLog`), and the corrector's learnable state after each finish
(:class:`CorrectorLog`). Both are kept compactly while the run goes and become DataFrames at
the end.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd


def state_row(now_s: float, gateway, replicas) -> tuple:
    """One :class:`SeriesLog` row at ``now_s``: the gateway's queue by tier, and the engines'
    running and waiting requests (summed) and KV utilisation (mean over ``replicas``: objects
    with an ``engine`` and a dispatcher ``slot``)."""
    depth = gateway.depth_by_tier
    if len(replicas) == 1:  # the common case, without generators
        only = replicas[0]
        running, waiting = len(only.engine.running), len(only.engine.waiting)
        kv = only.slot.kv_utilisation
    else:
        running = sum(len(r.engine.running) for r in replicas)
        waiting = sum(len(r.engine.waiting) for r in replicas)
        kv = sum(r.slot.kv_utilisation for r in replicas) / len(replicas)
    return (now_s, len(gateway), depth["premium"], depth["standard"], depth["batch"],
            running, waiting, kv)  # fmt: skip


class SeriesLog:
    """Time-series rows, kept as one flat ``float64`` array (8 bytes per value, no Python object
    per row); their columns are typed when the frame is built. Counts are exact as floats
    (below 2**53). Rows are appended to a short list first and moved into the array
    ``CHUNK`` rows at a time (one C loop instead of one per row)."""

    CHUNK = 8192

    #: column name -> dtype, in row order (what :class:`SimResult` exposes as ``series``)
    COLUMNS = {
        "time_s": np.float64,
        "queue_total": np.int64,
        "queue_premium": np.int64,
        "queue_standard": np.int64,
        "queue_batch": np.int64,
        "engine_running": np.int64,
        "engine_waiting": np.int64,
        "kv_utilisation": np.float64,
    }

    def __init__(self):
        self._values = array("d")
        self._pending: list[float] = []
        self._limit = self.CHUNK * len(self.COLUMNS)

    def append(self, row: tuple) -> None:
        """Add one row (a :func:`state_row`: a value per column, in order)."""
        pending = self._pending
        pending.extend(row)
        if len(pending) >= self._limit:
            self._values.fromlist(pending)
            pending.clear()

    def frame(self) -> pd.DataFrame:
        self._values.fromlist(self._pending)
        self._pending.clear()
        rows = np.frombuffer(self._values, dtype=np.float64).reshape(-1, len(self.COLUMNS))
        columns = {
            name: rows[:, k].astype(dtype) for k, (name, dtype) in enumerate(self.COLUMNS.items())
        }
        return pd.DataFrame(columns, copy=False)  # (each column is already a fresh array)


class CorrectorLog:
    """Corrector state after each finish, kept compactly: only the values that changed, in
    typed arrays (a million finishes cost ~25 MB, not a dict each)."""

    def __init__(self):
        self.time_s, self.value = array("d"), array("d")
        self.category, self.key = array("i"), array("i")
        self._names: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def _code(self, name: str) -> int:
        return self._names.setdefault(name, len(self._names))

    def record(self, now_s: float, category: str, state: dict[str, float]) -> None:
        last = self._last
        for key, value in state.items():
            if last.get(key) != value:
                last[key] = value
                self.time_s.append(now_s)
                self.category.append(self._code(category))
                self.key.append(self._code(key))
                self.value.append(value)

    def frame(self) -> pd.DataFrame:
        names = np.asarray(list(self._names), dtype=object)
        if not len(self.time_s):
            return pd.DataFrame({"time_s": [], "category": [], "key": [], "value": []}).astype(
                {"time_s": float, "category": object, "key": object, "value": float}
            )
        return pd.DataFrame(
            {
                "time_s": np.frombuffer(self.time_s, dtype=np.float64),
                "category": names[np.frombuffer(self.category, dtype=np.int32)],
                "key": names[np.frombuffer(self.key, dtype=np.int32)],
                "value": np.frombuffer(self.value, dtype=np.float64),
            }
        )
