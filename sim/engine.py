"""The engine model: vLLM V1's scheduler as a pure state machine (no clock, no SimPy).

``plan = engine.schedule()`` decides one step; the caller runs it for
``cost_model.step_time(plan.shape)`` seconds; ``engine.complete(plan)`` applies the result and
returns which requests produced their first token and which finished.

Semantics (vLLM ``vllm/v1/core/sched/scheduler.py`` and ``kv_cache_manager.py``, FCFS policy):

1. **Running requests first**, in running order, while the token budget
   (``max_num_batched_tokens``) lasts: each is given ``min(num_tokens - num_computed_tokens,
   budget)`` tokens — 1 for a decoding request, a chunk for one still prefilling. Each needs KV
   slots for ``num_computed_tokens + new`` tokens; if the blocks are not free, the **last**
   running request is preempted (recompute: its blocks are freed, ``num_computed_tokens`` resets
   to 0 and it goes to the **head** of the waiting queue) and the allocation is retried; when the
   request itself was the last one, it is preempted and the loop stops.
2. **Then waiting requests** — only if nothing was preempted this step — in queue order while
   budget is left and fewer than ``max_num_seqs`` run: each gets ``min(num_tokens, budget)``
   tokens (a chunk when chunked prefill is on; without it a prompt that does not fit stops the
   loop) if its KV blocks are free, otherwise the loop stops (no preemption for waiting ones).
   With ``reserve_full_prompt`` (vLLM 0.32's ``scheduler_reserve_full_isl``, on by default) a
   waiting request is admitted only if the blocks for its *whole* sequence
   (``min(num_tokens, max_model_len)``) are free, not just those of its first chunk
   (``kv_cache_manager.allocate_slots(full_sequence_must_fit=True)``).
   With **prefix caching** (``enable_prefix_caching``; :mod:`driftsched.sim.prefixcache`) a
   waiting request with nothing computed first looks up its cached leading blocks: those
   tokens count as computed, its chunk starts after them, and the block counts above become
   "blocks for the tokens held - hit blocks + hit blocks that are free" (touching a free hit
   block takes it out of the free pool).
3. **After the step** every request whose computed tokens reach its ``num_tokens`` samples one
   token (the first at the end of the step that completes its prefill); it finishes at the end
   of the step that produces its ``target_tokens``-th token, and its blocks are freed.

This module holds the :class:`Engine` protocol every driver relies on (the request state and
the plan types are :mod:`driftsched.sim.enginestate`), and :class:`ReferenceEngine`, a literal
per-request implementation.
:mod:`driftsched.sim.fastengine` gives the same plans step for step while doing work only for
requests whose state changes, and fast-forwards over runs of decode-only steps.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from driftsched.sim.enginestate import (
    DECODE,
    FINISHED,
    PREFILL,
    WAITING,
    EngineRequest,
    StepOutcome,
    StepPlan,
)
from driftsched.sim.kvcache import BlockPool, blocks_for
from driftsched.sim.prefixcache import Prefix, PrefixCache
from driftsched.sim.profile import EngineSettings


class Engine(Protocol):
    """What a driver asks of an engine model; both engines implement it, so the SimPy driver
    (and any other) never asks which one it has.

    ``add`` queues a request; ``schedule`` plans one step (and allocates its KV blocks);
    ``run_length(plan, limit)`` says how many steps of the plan's shape may run as one event
    (1 for an engine that cannot fast-forward, or for a plan that does not only decode);
    ``complete(plan, steps)`` applies that many steps and reports first tokens and finishes.
    """

    settings: EngineSettings
    pool: BlockPool
    waiting: deque
    running: dict

    def add(
        self, index: int, prompt_tokens: int, target_tokens: int, prefix: Prefix | None = None
    ) -> EngineRequest: ...

    def has_work(self) -> bool: ...

    def schedule(self) -> StepPlan: ...

    def run_length(self, plan: StepPlan, limit: int) -> int: ...

    def complete(self, plan: StepPlan, steps: int = 1) -> StepOutcome: ...


class EngineBase:
    """Queues, block pool and the parts of the algorithm both engines share."""

    #: the request state this engine keeps (an engine may extend it with its own bookkeeping)
    request_type: type[EngineRequest] = EngineRequest

    def __init__(self, settings: EngineSettings):
        if settings.max_num_batched_tokens < settings.max_num_seqs:
            raise ValueError("max_num_batched_tokens must be >= max_num_seqs")
        self.settings = settings
        self.block_size = settings.block_size
        self.caching = settings.enable_prefix_caching
        self.pool = (
            PrefixCache(settings.num_gpu_blocks, settings.block_size)
            if self.caching
            else BlockPool(settings.num_gpu_blocks)
        )
        self.waiting: deque[EngineRequest] = deque()
        self.running: dict[int, EngineRequest] = {}  # insertion-ordered: running order
        self.tick = 0

    def add(
        self, index: int, prompt_tokens: int, target_tokens: int, prefix: Prefix | None = None
    ) -> EngineRequest:
        """Queue a new request (``index`` unique among the engine's requests) at the tail of
        the waiting queue; returns the engine's state object for it. ``prefix`` says what its
        prompt shares with others (read only with prefix caching on)."""
        req = self.request_type(index, prompt_tokens, target_tokens)
        if prefix is not None:
            req.prefix = prefix
        self.waiting.append(req)
        return req

    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    # the step (each engine's own; see :class:`Engine`)
    def schedule(self) -> StepPlan:
        raise NotImplementedError

    def run_length(self, plan: StepPlan, limit: int) -> int:
        raise NotImplementedError

    def complete(self, plan: StepPlan, steps: int = 1) -> StepOutcome:
        raise NotImplementedError

    def _release(self, req: EngineRequest) -> None:
        if self.caching:
            self.pool.release(req)
        else:
            self.pool.give(req.num_blocks)
        req.num_blocks = 0

    def _preempt(self, req: EngineRequest) -> None:
        self._release(req)
        req.num_computed_tokens = 0
        req.num_preemptions += 1
        req.phase = WAITING
        self.waiting.appendleft(req)

    def _allocate(self, req: EngineRequest, new_tokens: int) -> bool:
        """Make room in ``req``'s KV blocks for ``new_tokens`` more tokens; False (nothing
        taken) when the blocks are not free."""
        if self.caching:
            return self._allocate_cached(req, new_tokens)
        need = blocks_for(req.num_computed_tokens + new_tokens, self.block_size) - req.num_blocks
        if need <= 0:
            return True
        if self.pool.take(need):
            req.num_blocks += need
            return True
        return False

    def _allocate_cached(self, req: EngineRequest, new_tokens: int) -> bool:
        """:meth:`_allocate` with prefix caching: fresh blocks from the free queue's head, and
        the blocks the scheduled tokens fill registered under their keys."""
        pool, held = self.pool, len(req.blocks) if req.blocks else 0
        tokens = req.num_computed_tokens + new_tokens
        need = blocks_for(tokens, self.block_size) - held
        if need > 0:
            if need > pool.free:
                return False
            pool.grow(req, held + need)
            req.num_blocks = held + need
        pool.register(req, min(tokens, req.num_tokens))
        return True

    def _schedule_running(
        self, order: list[EngineRequest], budget: int, plan: StepPlan, decodes: list[EngineRequest]
    ) -> int:
        """The exact running loop over ``order`` (materialised requests); returns the budget
        left. Preempted requests leave ``self.running``."""
        i = 0
        while i < len(order) and budget > 0:
            req = order[i]
            new = min(req.num_tokens - req.num_computed_tokens, budget)
            while not self._allocate(req, new):
                victim = order.pop()
                del self.running[victim.index]
                self._preempt(victim)
                plan.preempted.append(victim)
                if victim is req:
                    return budget
            if req.phase == DECODE:
                decodes.append(req)
                plan.decode_requests += 1
                plan.decode_context_tokens += req.num_computed_tokens + 1
            else:
                plan.chunks.append((req, new))
            budget -= new
            i += 1
        return budget

    def _schedule_waiting(self, budget: int, plan: StepPlan) -> None:
        """Admit waiting requests in queue order while ``budget`` tokens and the KV pool
        last (rule 2 of the module docstring)."""
        if self.caching:
            self._schedule_waiting_cached(budget, plan)
            return
        s = self.settings
        max_seqs, chunked = s.max_num_seqs, s.enable_chunked_prefill
        full, max_len = s.reserve_full_prompt, s.max_model_len
        while self.waiting and budget > 0 and len(self.running) < max_seqs:
            req = self.waiting[0]
            if full and blocks_for(min(req.num_tokens, max_len), self.block_size) > self.pool.free:
                break  # the whole sequence must fit before its first chunk is admitted
            new = req.num_tokens - req.num_computed_tokens
            if not chunked and new > budget:
                break
            new = min(new, budget)
            if not self._allocate(req, new):
                break
            self.waiting.popleft()
            self._run(req, new, plan)
            budget -= new

    def _schedule_waiting_cached(self, budget: int, plan: StepPlan) -> None:
        """:meth:`_schedule_waiting` with prefix caching (see the module docstring): a loop of
        its own, so the loop without caching pays nothing for it."""
        s, pool, size = self.settings, self.pool, self.block_size
        max_seqs, chunked = s.max_num_seqs, s.enable_chunked_prefill
        full, max_len = s.reserve_full_prompt, s.max_model_len
        while self.waiting and budget > 0 and len(self.running) < max_seqs:
            req = self.waiting[0]
            hit = pool.lookup(req)  # a waiting request has nothing computed (recompute)
            extra = pool.evictable(hit) - len(hit)  # blocks to allocate = needed + extra
            if full and blocks_for(min(req.num_tokens, max_len), size) + extra > pool.free:
                break
            computed = len(hit) * size
            new = req.num_tokens - computed
            if not chunked and new > budget:
                break
            new = min(new, budget)
            if blocks_for(computed + new, size) + extra > pool.free:
                break
            self.waiting.popleft()
            pool.touch(req, hit)  # before taking new blocks: a free hit block must not be popped
            req.num_computed_tokens = computed
            req.num_blocks = blocks_for(computed + new, size)
            pool.grow(req, req.num_blocks)
            pool.register(req, min(computed + new, req.num_tokens))
            pool.query_tokens += req.num_tokens
            pool.hit_tokens += computed
            self._run(req, new, plan)
            budget -= new

    def _run(self, req: EngineRequest, new: int, plan: StepPlan) -> None:
        """``req`` leaves the waiting queue for the running set with a first chunk of ``new``
        tokens this step."""
        req.phase = PREFILL
        self._admitted(req)
        self.running[req.index] = req
        plan.chunks.append((req, new))
        plan.admitted.append(req)

    def _admitted(self, req: EngineRequest) -> None:
        """Hook: ``req`` just left the waiting queue for the running set."""

    def _finish(self, req: EngineRequest, outcome: StepOutcome) -> None:
        self._release(req)
        req.phase = FINISHED
        del self.running[req.index]
        outcome.finished.append(req)

    def _advance(self, req: EngineRequest, new: int, outcome: StepOutcome) -> bool:
        """Apply ``new`` computed tokens; sample when caught up. Returns True if a token was
        sampled and the request continues decoding."""
        req.num_computed_tokens += new
        if req.num_computed_tokens < req.num_tokens:
            return False
        if req.num_output_tokens == 0:
            outcome.first_token.append(req)
        req.num_output_tokens += 1
        if req.num_output_tokens >= req.target_tokens:
            self._finish(req, outcome)
            return False
        req.phase = DECODE
        return True


class ReferenceEngine(EngineBase):
    """Literal per-request implementation of the semantics in the module docstring."""

    def schedule(self) -> StepPlan:
        plan = StepPlan(self.tick, [], 0, 0, decodes=[])
        budget = self._schedule_running(
            list(self.running.values()), self.settings.max_num_batched_tokens, plan, plan.decodes
        )
        if not plan.preempted:
            self._schedule_waiting(budget, plan)
        return plan.finalise()

    def run_length(self, plan: StepPlan, limit: int) -> int:
        """Always 1: the reference engine runs step by step."""
        return 1

    def complete(self, plan: StepPlan, steps: int = 1) -> StepOutcome:
        assert steps == 1, "the reference engine runs one step at a time"
        outcome = StepOutcome([], [])
        for req in plan.decodes:
            self._advance(req, 1, outcome)
        for req, new in plan.chunks:
            self._advance(req, new, outcome)
        self.tick += 1
        return outcome

    def abort(self, req: EngineRequest) -> bool:
        """Take ``req`` out of the engine between steps — waiting or running, its KV blocks
        freed (vLLM's ``finish_requests(..., FINISHED_ABORTED)``: a client went away). Returns
        False when it had already finished (nothing to do)."""
        if req.phase == FINISHED:
            return False
        if self.running.pop(req.index, None) is not None:
            self._release(req)
        else:
            self.waiting.remove(req)  # identity (eq=False); a preempted one holds no blocks
        req.phase = FINISHED
        return True

    def scheduled_tokens(self, plan: StepPlan) -> dict[int, int]:
        """``{request index: tokens}`` for the step (vLLM's ``num_scheduled_tokens``)."""
        out = {r.index: 1 for r in plan.decodes}
        out.update((r.index, n) for r, n in plan.chunks)
        return out
