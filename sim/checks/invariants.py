"""The invariants every policy must keep, checked on one simulated run: each a function of a
:class:`Case` that returns ``None`` when it holds, else one line saying what broke.

A policy may declare properties of its own: a class attribute ``properties``, a tuple of
functions ``(events, policy) -> str | None`` over the :class:`~driftsched.sim.checks.spy.Spy`
log (see :func:`pops_in_key_order`, declared by every heap-ordered policy).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from driftsched.sim.checks.spy import Event
from driftsched.sim.request import RequestView

TOL_S = 1e-9  # the simulator counts an arrival within 1e-9 s after a step boundary as before it


class Case(NamedTuple):
    """One checked run: the scenario, its result, the spy's log and the policy, and a second
    run of the same inputs (for determinism)."""

    scenario: object
    result: object
    events: list[Event]
    policy: object
    again: object
    again_events: list[Event]


def conservation(case: Case) -> str | None:
    """Every request is finished or rejected, exactly once; every queued request is handed out
    exactly once; a rejected one is never queued; each finish is fed back once."""
    rec = case.result.records
    both = rec["finished"] & rec["rejected"]
    neither = ~rec["finished"] & ~rec["rejected"]
    if both.any() or neither.any():
        row = int(np.flatnonzero(both | neither)[0])
        what = "both finished and rejected" if both.any() else "neither finished nor rejected"
        return f"request {rec['request_id'].iat[row]} is {what}"
    pushed = [e.view.seq for e in case.events if e.kind == "push"]
    popped = [e.view.seq for e in case.events if e.kind == "pop" and e.view is not None]
    if len(set(pushed)) != len(pushed) or sorted(pushed) != sorted(popped):
        return (
            f"queued {len(pushed)} requests, handed out {len(popped)} ({len(set(popped))} distinct)"
        )
    rejected = {e.view.seq for e in case.events if e.kind == "admit" and e.answer}
    if rejected & set(pushed):
        return f"rejected requests were queued: seq {sorted(rejected & set(pushed))[:5]}"
    finishes = [e.view.index for e in case.events if e.kind == "finish"]
    if hasattr(case.policy, "on_finish") and sorted(finishes) != sorted(
        np.flatnonzero(rec["finished"].to_numpy()).tolist()
    ):
        return (
            f"on_finish was called {len(finishes)} times for {int(rec['finished'].sum())} finishes"
        )
    return None


def causality(case: Case) -> str | None:
    """Nothing happens before it may: arrival <= dispatch <= scheduled < first token <= finish
    <= done; a request is handed out only after it was queued; feedback only after its finish,
    with the true length."""
    rec = case.result.records
    done = rec[rec["finished"]]
    chain = ["arrival_s", "dispatch_s", "scheduled_s", "first_token_s", "finish_s", "done_s"]
    for a, b in zip(chain, chain[1:], strict=False):
        bad = done[done[b] < done[a] - TOL_S]
        if len(bad):
            r = bad.iloc[0]
            return f"request {r['request_id']}: {b} {r[b]:.9g} before {a} {r[a]:.9g}"
    seen: set[int] = set()
    for e in case.events:
        if e.kind == "push":
            seen.add(e.view.seq)
        elif e.kind == "pop" and e.view is not None and e.view.seq not in seen:
            return f"request seq {e.view.seq} handed out before it was queued"
        elif e.kind == "finish":
            truth = int(rec["output_tokens"].iat[e.view.index])
            if e.outcome.output_tokens != truth:
                return f"on_finish told {e.outcome.output_tokens} tokens, the truth is {truth}"
    return None


def time_never_goes_back(case: Case) -> str | None:
    """The clock a policy is shown never decreases; dispatches happen in time order."""
    last = float("-inf")
    for e in case.events:
        if e.kind == "pop":
            if e.now_s < last - TOL_S:
                return f"pop at {e.now_s:.9g} s after a pop at {last:.9g} s"
            last = e.now_s
    rec = case.result.records
    sent = rec[rec["dispatch_order"] >= 0].sort_values("dispatch_order")["dispatch_s"]
    if (np.diff(sent.to_numpy()) < -TOL_S).any():
        return "a later dispatch has an earlier dispatch_s"
    if not case.result.series["time_s"].is_monotonic_increasing:
        return "the time series goes back in time"
    return None


def kv_within_capacity(case: Case) -> str | None:
    """The engines never use more KV blocks than they have."""
    kv = case.result.series["kv_utilisation"].to_numpy(dtype=float)
    if (kv > 1.0 + 1e-12).any():
        return f"KV utilisation reached {np.nanmax(kv):.3f}"
    return None


def no_true_lengths(case: Case) -> str | None:
    """What the policy is handed is a RequestView — which has no true output length — and
    nothing else (by construction; checked on every call)."""
    fields = RequestView._fields
    if "output_tokens" in fields:
        return "RequestView carries output_tokens"
    for e in case.events:
        if e.view is not None and type(e.view) is not RequestView:
            return f"the policy was handed a {type(e.view).__name__}"
    return None


def rejections_have_reasons(case: Case) -> str | None:
    """A rejected request's record carries the reason the policy gave."""
    rec = case.result.records
    bad = rec["rejected"] & rec["reject_reason"].isna()
    if bad.any():
        return f"request {rec.loc[bad, 'request_id'].iat[0]} rejected without a reason"
    return None


def deterministic(case: Case) -> str | None:
    """The same trace, config and seed give identical records and identical decisions."""
    try:
        pd.testing.assert_frame_equal(case.result.records, case.again.records)
    except AssertionError as exc:
        return f"two runs of the same inputs differ: {str(exc).splitlines()[0]}"
    first = [(e.kind, e.view.seq if e.view else None) for e in case.events]
    second = [(e.kind, e.view.seq if e.view else None) for e in case.again_events]
    if first != second:
        return "two runs of the same inputs made different decisions"
    return None


#: name -> invariant, in the order they are checked
INVARIANTS = {
    f.__name__: f
    for f in (
        conservation,
        causality,
        time_never_goes_back,
        kv_within_capacity,
        no_true_lengths,
        rejections_have_reasons,
        deterministic,
    )
}
