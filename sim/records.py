"""The record builder: one row per request, the same columns whichever driver ran the model.

A :class:`RecordBook` holds a run's per-request columns as typed arrays indexed by trace row
(compact, and cheaper to write one element of than numpy); the SimPy driver and the live
real-time loop write it as requests are admitted, dispatched, scheduled, produce their first
token, finish and complete, and :meth:`RecordBook.frame` turns it into the records table —
views of the arrays, no copies (nothing writes them once the run is over). Columns (docs/model.md
describes each):

``request_id, tenant, tier, category, arrival_s, dispatch_s, scheduled_s, first_token_s,
finish_s, done_s, queue_wait_s, ttft_s, e2e_s, tpot_s, prompt_tokens, output_tokens,
estimate_tokens, est_class, true_class, preemptions, generated_tokens, dispatch_order, batch_id,
replica, finished, rejected, reject_reason`` and, when the trace has them, ``ttft_slo_s,
e2e_slo_s``. A rejected request (the policy's admission decision) has its estimate, its reason
and no other timestamp; it is neither finished nor unfinished.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd
from driftsched.sim.jobclass import CLASSES, JobClassConfig
from driftsched.sim.request import Outcome

NAN = float("nan")
#: the per-request timestamps, in column order
TIMES = ("dispatch_s", "scheduled_s", "first_token_s", "finish_s", "done_s")
#: job class name -> code in the ``est_class`` column
CLASS_CODES = {name: k for k, name in enumerate(CLASSES)}


def filled(typecode: str, n: int, value) -> array:
    """A typed array of ``n`` copies of ``value``."""
    return array(typecode, [value]) * n


def as_numpy(column: array) -> np.ndarray:
    """A typed-array column as a numpy array (a view; no copy)."""
    dtype = {"d": np.float64, "q": np.int64, "b": np.int8, "h": np.int16}[column.typecode]
    return np.frombuffer(column, dtype=dtype) if len(column) else np.empty(0, dtype=dtype)


def latencies(times, arrival_s: np.ndarray) -> dict[str, np.ndarray]:
    """``queue_wait_s``, ``ttft_s`` and ``e2e_s`` from the timestamps (``times``: a mapping with
    ``dispatch_s``, ``first_token_s``, ``done_s``) and the arrivals they are measured from."""
    return {
        "queue_wait_s": times["dispatch_s"] - arrival_s,
        "ttft_s": times["first_token_s"] - arrival_s,
        "e2e_s": times["done_s"] - arrival_s,
    }


class RecordBook:
    """The per-request columns of one run of ``n`` requests (trace rows ``0 .. n-1``).

    Timestamps are seconds on the run's clock (NaN until they happen); ``est_class`` is -1
    until the request is admitted, ``batch_id`` -1 outside micro-batches, ``replica`` -1 until
    dispatched. Drivers may write the arrays directly on hot paths; the methods say what each
    event writes.
    """

    def __init__(self, n: int):
        self.n = n
        self.times = {k: filled("d", n, NAN) for k in TIMES}
        self.estimate = filled("q", n, 0)
        self.est_class = filled("b", n, -1)
        self.batch_id = filled("q", n, -1)
        self.replica = filled("h", n, -1)
        self.preemptions = filled("q", n, 0)
        self.generated = filled("q", n, 0)
        self.dispatch_order = filled("q", n, -1)
        self.dispatched_count = 0
        self.reject_code = filled("h", n, -1)  # index into reject_reasons; -1: not rejected
        self.reject_reasons: dict[str, int] = {}  # reason -> code, in first-seen order
        # the same arrays under the names the per-request writes below use (a compiled build
        # types these as C arrays: records.pxd)
        self._estimate, self._est_class = self.estimate, self.est_class
        self._dispatch_s, self._finish_s = self.times["dispatch_s"], self.times["finish_s"]
        self._dispatch_order, self._batch_id = self.dispatch_order, self.batch_id
        self._replica, self._generated = self.replica, self.generated
        self._preemptions = self.preemptions

    def admitted(self, index: int, estimate_tokens: int, est_class: str) -> None:
        """The gateway estimated and classified request ``index``."""
        self._estimate[index] = estimate_tokens
        self._est_class[index] = CLASS_CODES[est_class]

    def dispatched(self, index: int, now_s: float, replica_id: int, batch: int = -1) -> None:
        """Request ``index`` left the gateway queue for replica ``replica_id`` at ``now_s``."""
        self._dispatch_s[index] = now_s
        self._dispatch_order[index] = self.dispatched_count
        self.dispatched_count += 1
        self._batch_id[index] = batch
        self._replica[index] = replica_id

    def rejected(self, index: int, reason: str) -> None:
        """The policy rejected request ``index`` at admission, for ``reason``."""
        code = self.reject_reasons.setdefault(reason, len(self.reject_reasons))
        self.reject_code[index] = code

    def outcome(self, index: int, now_s: float, arrival_s: float, output_tokens: int) -> Outcome:
        """Request ``index``'s :class:`~driftsched.sim.request.Outcome`, finishing at
        ``now_s`` (for a policy's ``on_finish``)."""
        t = self.times
        return Outcome(
            output_tokens,
            t["dispatch_s"][index] - arrival_s,
            t["first_token_s"][index] - arrival_s,
            now_s - arrival_s,
            now_s,
        )

    def finished(self, index: int, now_s: float, generated: int, preemptions: int) -> None:
        """The engine produced request ``index``'s last token at ``now_s``."""
        self._finish_s[index] = now_s
        self._generated[index] = generated
        self._preemptions[index] = preemptions

    def frame(
        self,
        trace: pd.DataFrame,
        arrival_s: np.ndarray,
        prompt_tokens: np.ndarray,
        output_tokens: np.ndarray,
        job_classes: JobClassConfig,
    ) -> pd.DataFrame:
        """The records table: the trace's identity columns and targets beside these columns."""
        t = {k: as_numpy(v) for k, v in self.times.items()}
        out = output_tokens
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(out > 1, (t["finish_s"] - t["first_token_s"]) / (out - 1), np.nan)
        columns = {
            "request_id": trace["request_id"],
            "tenant": trace["tenant"],
            "tier": trace["tier"],
            "category": trace["category"],
            "arrival_s": arrival_s,
            **t,
            **latencies(t, arrival_s),
            "tpot_s": tpot,
            "prompt_tokens": prompt_tokens,
            "output_tokens": out,
            "estimate_tokens": as_numpy(self.estimate),
            "est_class": pd.Categorical.from_codes(as_numpy(self.est_class), categories=CLASSES),
            "true_class": pd.Categorical.from_codes(
                job_classes.codes(prompt_tokens, out), categories=CLASSES
            ),
            "preemptions": as_numpy(self.preemptions),
            "generated_tokens": as_numpy(self.generated),
            "dispatch_order": as_numpy(self.dispatch_order),
            "batch_id": as_numpy(self.batch_id),
            "replica": as_numpy(self.replica),
            "finished": ~np.isnan(t["done_s"]),
            "rejected": as_numpy(self.reject_code) >= 0,
            "reject_reason": pd.Categorical.from_codes(
                as_numpy(self.reject_code), categories=list(self.reject_reasons)
            ),
        }
        for slo in ("ttft_slo_s", "e2e_slo_s"):
            if slo in trace.columns:
                columns[slo] = trace[slo].to_numpy()
        return pd.DataFrame(columns, copy=False)
