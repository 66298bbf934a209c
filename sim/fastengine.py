"""The fast engine: the same plans as :class:`~driftsched.sim.engine.ReferenceEngine`, step for
step, with work proportional to the requests whose state changes.

Why it is exact. Running order is admission order and a prefill chunk only ever belongs to the
most recently admitted requests, so every decoding request gets exactly one token per step (the
budget always covers ``max_num_seqs`` decodes). A decoding request's counters are therefore
``c0 + (tick - t0)`` and ``o0 + (tick - t0)``: it is kept as ``(t0, c0, o0)`` and two heap
entries, the tick at which it next needs a KV block and the tick at which it emits its last
token. A step pops the entries due now. When the blocks needed this tick are all free (the
common case), every allocation in vLLM's sequential loop succeeds, so the fast path is exact.
Otherwise (KV shortage: preemption) the step materialises every request and runs the reference
algorithm, then rebuilds the bookkeeping.
"""

from __future__ import annotations

import heapq

from driftsched.sim.engine import (
    DECODE,
    PREFILL,
    EngineBase,
    EngineRequest,
    StepOutcome,
    StepPlan,
)


class FastEngine(EngineBase):
    def __init__(self, settings):
        super().__init__(settings)
        self._finish_heap: list[tuple[int, int, int, EngineRequest]] = []
        self._block_heap: list[tuple[int, int, int, EngineRequest]] = []
        self._decoding = 0  # number of decoding requests
        self._base = 0  # sum over decoding requests of (c0 - t0)

    # -- decode bookkeeping -------------------------------------------------------------
    def _materialise(self, req: EngineRequest) -> None:
        """Write a decoding request's counters for the current tick into its fields."""
        steps = self.tick - req.t0
        req.num_computed_tokens = req.c0 + steps
        req.num_output_tokens = req.o0 + steps

    def _start_decoding(self, req: EngineRequest, tick: int) -> None:
        """``req`` decodes from ``tick`` on (its counters are current for that tick)."""
        req.gen += 1
        req.t0, req.c0, req.o0 = tick, req.num_computed_tokens, req.num_output_tokens
        self._decoding += 1
        self._base += req.c0 - tick
        heapq.heappush(
            self._finish_heap, (tick + req.target_tokens - req.o0 - 1, req.index, req.gen, req)
        )
        self._push_block_need(req)

    def _push_block_need(self, req: EngineRequest) -> None:
        need_tick = req.t0 + req.num_blocks * self.block_size - req.c0
        heapq.heappush(self._block_heap, (need_tick, req.index, req.gen, req))

    def _stop_decoding(self, req: EngineRequest) -> None:
        self._decoding -= 1
        self._base -= req.c0 - req.t0
        req.gen += 1

    def _due(self, heap: list, tick: int) -> list[EngineRequest]:
        out = []
        while heap and heap[0][0] <= tick:
            due, _, gen, req = heapq.heappop(heap)
            if gen == req.gen and req.phase == DECODE:
                assert due == tick, "a decode event was skipped"
                out.append(req)
        return out

    # -- the step -------------------------------------------------------------------------
    def schedule(self) -> StepPlan:
        tick, budget = self.tick, self.settings.max_num_batched_tokens
        needs = self._due(self._block_heap, tick)
        if len(needs) > self.pool.free:
            return self._schedule_slow()
        self.pool.take(len(needs))
        for req in needs:
            req.num_blocks += 1
            self._push_block_need(req)
        plan = StepPlan(tick, [], self._decoding, self._base + self._decoding * (tick + 1))
        budget -= self._decoding
        tail = [r for r in reversed(self.running.values()) if r.phase == PREFILL][::-1]
        if tail:
            budget = self._schedule_running(tail, budget, plan, [])
        if not plan.preempted:
            self._schedule_waiting(budget, plan)
        return plan.finalise()

    def _schedule_slow(self) -> StepPlan:
        """KV shortage: materialise all requests and run the exact loop."""
        order = list(self.running.values())
        for req in order:
            if req.phase == DECODE:
                self._materialise(req)
                self._stop_decoding(req)
        plan = StepPlan(self.tick, [], 0, 0, decodes=[], slow=True)
        budget = self._schedule_running(
            order, self.settings.max_num_batched_tokens, plan, plan.decodes
        )
        if not plan.preempted:
            self._schedule_waiting(budget, plan)
        self._finish_heap.clear()
        self._block_heap.clear()
        return plan.finalise()

    def complete(self, plan: StepPlan) -> StepOutcome:
        outcome = StepOutcome([], [])
        tick = plan.tick
        if plan.slow:
            for req in plan.decodes:
                self._advance(req, 1, outcome)
            for req, new in plan.chunks:
                self._advance(req, new, outcome)
            self.tick += 1
            for req in self.running.values():  # rebuild the bookkeeping for the next tick
                if req.phase == DECODE:
                    self._start_decoding(req, self.tick)
            return outcome
        for req in self._due(self._finish_heap, tick):
            self._materialise(req)
            req.num_computed_tokens += 1
            req.num_output_tokens += 1
            self._stop_decoding(req)
            self._finish(req, outcome)
        for req, new in plan.chunks:
            if self._advance(req, new, outcome):
                self._start_decoding(req, tick + 1)
        self.tick += 1
        return outcome

    def materialise_all(self) -> None:
        """Bring every decoding request's counters up to date (for inspection and tests)."""
        for req in self.running.values():
            if req.phase == DECODE:
                self._materialise(req)

    def scheduled_tokens(self, plan: StepPlan) -> dict[int, int]:
        """``{request index: tokens}`` for the step (decoding requests at ``plan.tick``)."""
        if plan.decodes is not None:
            out = {r.index: 1 for r in plan.decodes}
        else:
            out = {
                r.index: 1 for r in self.running.values() if r.phase == DECODE and r.t0 <= plan.tick
            }
        out.update((r.index, n) for r, n in plan.chunks)
        return out
