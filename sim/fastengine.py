"""The fast engine: the same plans as :class:`~driftsched.sim.engine.ReferenceEngine`, step for
step, with work proportional to the requests whose state changes — and *fast-forward* over runs
of pure decode steps.

Why it is exact. Running order is admission order and a prefill chunk only ever belongs to the
most recently admitted requests, so every decoding request gets exactly one token per step (the
budget always covers ``max_num_seqs`` decodes). A decoding request's counters are therefore
``c0 + (tick - t0)`` and ``o0 + (tick - t0)``: it is kept as ``(t0, c0, o0)`` and one heap entry,
the tick at which it emits its last token.

With prefix caching (:mod:`driftsched.sim.prefixcache`) the blocks decoders take in a step
or a run are popped from the free queue by count too, and handed to each request when it is
next materialised (block labels are unobservable; keys, reference counts and the queue's
order are exactly those of the reference engine).

KV blocks are counted, not tracked per request: a decoding request with ``c`` computed tokens
holds ``ceil(c / block_size)`` blocks and needs one more exactly when ``c`` is a multiple of
``block_size``. With ``a = c0 - t0`` that is when ``(a + tick) % block_size == 0``, so the
number of blocks all decoders need at a tick is ``count[(-tick) % block_size]`` over a table of
decoders by ``a % block_size``: O(1) per step, O(block_size) for any run of steps. When the
blocks needed at a tick are all free (the common case) every allocation in vLLM's sequential
loop succeeds, so the fast path is exact. Otherwise (KV shortage: preemption) the step
materialises every request and runs the reference algorithm, then rebuilds the bookkeeping.

Fast-forward. A step that only decodes (no prefill chunk, nothing admitted, nothing preempted)
is followed by identical steps — one more context token per request each — until a request
finishes, the KV pool runs short, or the caller adds a request. :meth:`run_length` says how
many such steps can run back to back; ``complete(plan, steps)`` applies them at once. Their
total duration has a closed form (see :meth:`driftsched.sim.costmodel.CostModel.run_seconds`).
"""

from __future__ import annotations

import heapq

from driftsched.sim.engine import EngineBase
from driftsched.sim.enginestate import DECODE, PREFILL, EngineRequest, StepOutcome, StepPlan
from driftsched.sim.kvcache import blocks_for


class FastRequest(EngineRequest):
    """:class:`EngineRequest` plus the fast engine's bookkeeping. While decoding, the counters
    are ``c0``/``o0`` at tick ``t0`` and grow by one per step; ``gen`` changes whenever the
    request starts or stops decoding, so heap entries of an earlier run are recognised as stale
    (an entry is live only while its ``gen`` matches and the request decodes); ``run_seq`` is
    its position in running order (set on each admission; increasing)."""

    __slots__ = ("t0", "c0", "o0", "gen", "run_seq")

    def __init__(self, index: int, prompt_tokens: int, target_tokens: int):
        EngineRequest.__init__(self, index, prompt_tokens, target_tokens)
        self.t0 = 0
        self.c0 = 0
        self.o0 = 0
        self.gen = 0
        self.run_seq = 0


def _run_seq(req: FastRequest) -> int:
    return req.run_seq


class FastEngine(EngineBase):
    request_type = FastRequest

    def __init__(self, settings):
        super().__init__(settings)
        self._run_seq = 0
        self._finish_heap: list[tuple[int, int, int, FastRequest]] = []
        self._decoding = 0  # number of decoding requests
        self._base = 0  # sum over decoding requests of (c0 - t0)
        # decoders by (c0 - t0) % block_size: which need a block at which tick
        self._by_residue: list[dict[int, FastRequest]] = [{} for _ in range(self.block_size)]
        self._counts = [0] * self.block_size  # len() of each residue table, for fast sums
        # running requests still prefilling, in running order (they are its tail)
        self._prefilling: dict[int, FastRequest] = {}

    def _admitted(self, req: FastRequest) -> None:
        req.run_seq = self._run_seq
        self._run_seq += 1

    # -- decode bookkeeping -------------------------------------------------------------
    def _materialise(self, req: FastRequest) -> None:
        """Write a decoding request's counters (and blocks held) for the current tick."""
        steps = self.tick - req.t0
        req.num_computed_tokens = req.c0 + steps
        req.num_output_tokens = req.o0 + steps
        req.num_blocks = blocks_for(req.num_computed_tokens, self.block_size)
        if self.caching:  # hand over the blocks taken for it while it ran ahead
            self.pool.sync(req, req.num_blocks)

    def _start_decoding(self, req: FastRequest, tick: int) -> None:
        """``req`` decodes from ``tick`` on (its counters are current for that tick)."""
        req.gen += 1
        req.t0, req.c0, req.o0 = tick, req.num_computed_tokens, req.num_output_tokens
        self._decoding += 1
        self._base += req.c0 - tick
        r = (req.c0 - tick) % self.block_size
        self._by_residue[r][req.index] = req
        self._counts[r] += 1
        heapq.heappush(
            self._finish_heap, (tick + req.target_tokens - req.o0 - 1, req.index, req.gen, req)
        )

    def _stop_decoding(self, req: FastRequest) -> None:
        self._decoding -= 1
        self._base -= req.c0 - req.t0
        r = (req.c0 - req.t0) % self.block_size
        del self._by_residue[r][req.index]
        self._counts[r] -= 1
        req.gen += 1

    def _needs(self, tick: int, steps: int) -> int:
        """Blocks the decoders need over ``steps`` ticks from ``tick`` on (no one stops)."""
        size, counts = self.block_size, self._counts
        total = (steps // size) * self._decoding
        rest = steps % size
        # ticks tick .. tick+rest-1 need residues -tick, -tick-1, ...: a descending run of the
        # table, wrapping round through negative indices
        top = -tick % size
        for r in range(top - rest + 1, top + 1):
            total += counts[r]
        return total

    def _next_finish(self) -> int | None:
        heap = self._finish_heap
        while heap and (heap[0][2] != heap[0][3].gen or heap[0][3].phase != DECODE):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _due(self, heap: list, tick: int) -> list[FastRequest]:
        out = []
        while heap and heap[0][0] <= tick:
            due, _, gen, req = heapq.heappop(heap)
            if gen == req.gen and req.phase == DECODE:
                assert due == tick, "a decode event was skipped"
                out.append(req)
        return out

    # -- the step -------------------------------------------------------------------------
    def schedule(self) -> StepPlan:
        tick, decoding, pool = self.tick, self._decoding, self.pool
        needs = self._counts[-tick % self.block_size] if decoding else 0
        if needs > pool.free:
            plan = self._schedule_shortage(tick)
        else:
            pool.take(needs)  # all fit: every decoder's allocation succeeds
            plan = StepPlan(tick, [], decoding, self._base + decoding * (tick + 1))
        prefilling = self._prefilling
        if prefilling or self.waiting:
            budget = self.settings.max_num_batched_tokens - self._decoding
            if prefilling:
                before = len(plan.preempted)
                budget = self._schedule_running(list(prefilling.values()), budget, plan, [])
                for victim in plan.preempted[before:]:
                    del prefilling[victim.index]
            if not plan.preempted:
                self._schedule_waiting(budget, plan)
                for req in plan.admitted:
                    prefilling[req.index] = req
        return plan.finalise()

    def run_length(self, plan: StepPlan, limit: int) -> int:
        """How many steps, this one included and at most ``limit``, run with this plan's shape
        (decode context growing by one token per request per step): up to and including the
        next step in which a request finishes (its last step still decodes with the others),
        and stopping before a KV shortage. 1 unless the plan only decodes."""
        if limit <= 1 or plan.chunks or plan.preempted or not plan.decode_requests:
            return 1  # a preemption blocks admission for this step only: the next may differ
        finish = self._next_finish()
        steps = min(limit, finish - plan.tick + 1) if finish is not None else limit
        if steps <= 1:
            return 1
        free = self.pool.free  # after this step's own needs were taken
        if self._needs(plan.tick + 1, steps - 1) <= free:
            return steps
        size, d = self.block_size, self._decoding
        extra = (free // d) * size  # whole block cycles that fit
        taken = (extra // size) * d
        tick = plan.tick + 1 + extra
        while extra < steps - 1:
            taken += self._counts[-tick % size]
            if taken > free:
                break
            extra += 1
            tick += 1
        return 1 + extra

    def _schedule_shortage(self, tick: int) -> StepPlan:
        """The decoders need more blocks than are free. vLLM walks the running order giving
        each decoder its token; one that needs a block while none is free preempts the last
        running request (prefilling ones first: they are the tail), until it fits or is itself
        the victim (then the walk ends). Survivors are a prefix of the running order, so only
        the needing decoders (in running order) and the victims have to be visited."""
        size = self.block_size
        needing = sorted(self._by_residue[-tick % size].values(), key=_run_seq)
        free, allocated = self.pool.free, 0
        victims: list[FastRequest] = []
        tail = reversed(self.running.values())
        for req in needing:
            if victims and req.run_seq >= victims[-1].run_seq:
                break  # already preempted, and so is everyone after it
            while free < 1:
                victim = next(tail)
                victims.append(victim)
                if victim is req:
                    break
                if victim.phase == DECODE:
                    self._materialise(victim)
                # with prefix caching, blocks another request also holds stay in use
                free += self.pool.freed_by(victim) if self.caching else victim.num_blocks
            if victims and victims[-1] is req:
                break
            free -= 1
            allocated += 1
        for victim in victims:
            if victim.phase == DECODE:
                self._materialise(victim)  # counters and blocks held at this tick
                self._stop_decoding(victim)
            else:
                del self._prefilling[victim.index]
            del self.running[victim.index]
            self._preempt(victim)
        taken = self.pool.take(allocated)
        assert taken, "shortage walk allocated more blocks than were free"
        plan = StepPlan(tick, [], self._decoding, self._base + self._decoding * (tick + 1))
        plan.preempted.extend(victims)
        return plan

    def complete(self, plan: StepPlan, steps: int = 1) -> StepOutcome:
        """Apply the plan; with ``steps > 1`` (from :meth:`run_length`) apply that many decode
        steps of its shape at once — requests finishing in the last of them finish."""
        outcome = StepOutcome([], [])
        if steps > 1:
            taken = self.pool.take(self._needs(plan.tick + 1, steps - 1))
            assert taken, "fast-forward ran past a KV shortage"
            self.tick = plan.tick + steps - 1  # the run's last step
        tick, heap = self.tick, self._finish_heap
        due = self._due(heap, tick)
        if self.caching and len(due) > 1:
            # release order is observable with prefix caching (freed blocks queue up for
            # eviction in it): finish in running order, as the reference engine does
            due.sort(key=_run_seq)
        for req in due:
            self._materialise(req)
            req.num_computed_tokens += 1
            req.num_output_tokens += 1
            req.num_blocks = blocks_for(req.num_computed_tokens, self.block_size)
            if self.caching:
                self.pool.sync(req, req.num_blocks)
            self._stop_decoding(req)
            self._finish(req, outcome)
        for req, new in plan.chunks:
            if self._advance(req, new, outcome):
                self._start_decoding(req, tick + 1)
            if req.phase != PREFILL:
                del self._prefilling[req.index]
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
