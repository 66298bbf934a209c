"""``hrrn``: highest response ratio next — largest ``(wait_s + service) / service`` first, where
the service is the estimated budget (prompt + estimated output tokens); ties by arrival.

A short job goes first, as in SJF, but every waiting job's ratio grows with its wait, so none
starves (Brinch Hansen, 1971). The ratio ``1 + wait_s / service`` is maximised by the largest
``wait_s / budget_tokens`` whatever the tokens-to-seconds scale, so there is no parameter. The
order changes with ``now``, so ``pop`` scans the queue: O(queued) per dispatch.
"""

from __future__ import annotations

from driftsched.sim.policies.base import Policy
from driftsched.sim.request import RequestView


def highest_ratio_first(events, policy) -> str | None:
    """Each request handed out has the largest ``wait_s / budget_tokens`` of those queued at
    that moment (the earliest admitted among equals)."""
    for e in events:
        if e.kind == "pop" and e.view is not None and e.queued:

            def rank(v, now=e.now_s):
                return (-(now - v.arrival_s) / v.budget_tokens, v.seq)

            best = min(e.queued, key=rank)
            if best.seq != e.view.seq:
                return f"at {e.now_s:.6g} s handed out seq {e.view.seq}, not seq {best.seq}"
    return None


class HrrnPolicy(Policy):
    name = "hrrn"
    properties = (highest_ratio_first,)

    def __init__(self, params=None):
        super().__init__(params)
        self._queue: list[RequestView] = []

    def push(self, req: RequestView) -> None:
        self._queue.append(req)  # kept in admission (seq) order

    def pop(self, now_s: float) -> RequestView | None:
        queue = self._queue
        if not queue:
            return None
        best, best_ratio = 0, -1.0
        for k, view in enumerate(queue):  # strict '>': the earlier request wins a tie
            ratio = (now_s - view.arrival_s) / view.budget_tokens
            if ratio > best_ratio:
                best, best_ratio = k, ratio
        return queue.pop(best)

    def __len__(self) -> int:
        return len(self._queue)
