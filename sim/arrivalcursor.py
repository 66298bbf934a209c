"""The trace's requests, admitted in arrival order: a cursor over the trace's rows.

A pure state machine: :meth:`ArrivalCursor.admit_next` admits the next request *at its own
arrival time* (the time the gateway, the policy and the records see), whoever calls it and
whenever. That is what lets the driver (:mod:`driftsched.sim.simulation`) admit the requests
that arrived during an engine step at the step's boundary, in order, instead of waking up for
each one: nothing observes the gateway between an arrival and the next boundary, so the
records are the same — and the simulator schedules one event fewer per request.

Trace columns are turned into Python objects a chunk at a time, so a large trace never exists
as a million objects.
"""

from __future__ import annotations

import math

import numpy as np
from driftsched.sim.request import SLO_COLUMNS, Admission, from_fields
from driftsched.traces.schema import tier_rank

CHUNK = 65_536  # trace rows turned into Python objects at a time


def _strings(column) -> list[str]:
    """A column's values as Python strings, as ``column.astype(str).tolist()`` gives them; a
    categorical column (no missing values) by indexing its converted categories with its codes
    (~10x faster than converting row by row)."""
    if getattr(column.dtype, "name", "") == "category":
        codes = column.cat.codes.to_numpy()
        if not len(codes) or codes.min() >= 0:
            names = np.asarray(column.cat.categories.astype(str).tolist(), dtype=object)
            return names[codes].tolist()
    return column.astype(str).tolist()


class ArrivalCursor:
    """Admits the rows of ``frame`` (arrival order) to ``gateway``; an admitted request is
    kept in ``admissions`` (``{index: Admission}``) until the driver pops it, a rejected one
    is recorded in ``book``; in continuous mode each admission is followed by the
    dispatcher's ``fill`` at the same time. ``next_s`` is the next arrival time (inf: done)."""

    def __init__(
        self, frame, arrival_s, prompt_tokens, slos, gateway, dispatcher, book, admissions
    ):
        self.frame, self.arrival_s, self.prompt_tokens = frame, arrival_s, prompt_tokens
        self.slos = slos
        self.gateway, self.dispatcher, self.book = gateway, dispatcher, book
        self.admissions = admissions
        self.n = len(frame)
        self._ranks: dict[str, int] = {}
        self._start, self._k, self._len = 0, 0, 0
        self._times: list[float] = []
        self.next_s = math.inf
        # The clock an admission is made at: the time a process that slept from one arrival
        # to the next (``now + (t - now)``) would wake at — the arrival time, or within an
        # ulp of it, exactly as the simulator's event clock gets there.
        self._clock_s = 0.0
        if self.n:
            self._load(0)

    def _load(self, start: int) -> None:
        f, rows = self.frame, slice(start, start + CHUNK)
        self._start, self._k = start, 0
        self._times = self.arrival_s[rows].tolist()
        self._len = len(self._times)
        self._ids, self._tenants, self._tiers, self._categories = (
            _strings(f[c].iloc[rows]) for c in ("request_id", "tenant", "tier", "category")
        )
        self._prompt = self.prompt_tokens[rows].tolist()
        self._max_tokens = f["max_tokens"].iloc[rows].to_numpy(dtype=np.int64).tolist()
        self._ttft_slo, self._e2e_slo = (
            self.slos[c][rows].tolist() if c in self.slos else [math.nan] * self._len
            for c in SLO_COLUMNS
        )  # one shared NaN when the trace gives no SLOs
        self.next_s = self._times[0]

    def due_s(self) -> float:
        """When the next request is admitted (:attr:`next_s` on the event clock)."""
        wait = self.next_s - self._clock_s
        return self._clock_s + wait if wait > 0 else self._clock_s

    def admit_next(self) -> bool:
        """Admit the next request at its arrival time (:meth:`due_s`); True if the policy took
        it (False: rejected, recorded with its reason). Then ``next_s`` moves on."""
        k = self._k
        i = self._start + k
        t_s = self._times[k]
        wait = t_s - self._clock_s
        if wait > 0:
            self._clock_s += wait
        now = self._clock_s
        t = self._tiers[k]
        rank = self._ranks.get(t)
        if rank is None:
            rank = self._ranks[t] = tier_rank(t)
        adm = from_fields(Admission, (
            i, self._ids[k], t_s, self._tenants[k], t, rank, self._categories[k],
            self._prompt[k], self._max_tokens[k], self._ttft_slo[k], self._e2e_slo[k],
        ))  # fmt: skip
        self._k = k = k + 1
        if k < self._len:
            self.next_s = self._times[k]
        elif i + 1 < self.n:
            self._load(i + 1)
        else:
            self.next_s = math.inf
        view, rejection = self.gateway.admit(adm, now)
        self.book.admitted(i, view.estimate_tokens, view.est_class)
        if rejection is not None:
            self.book.rejected(i, rejection)
            return False
        self.admissions[i] = adm
        if self.dispatcher.continuous:
            self.dispatcher.fill(now)
        return True

    def admit_before(self, limit_s: float) -> None:
        """Admit, in order, every request due strictly before ``limit_s``."""
        while self.due_s() < limit_s:
            self.admit_next()
