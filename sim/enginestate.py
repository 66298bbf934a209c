"""The engine's state records: a request as the engine holds it (:class:`EngineRequest`), one
step's schedule (:class:`StepPlan`) and what the step did (:class:`StepOutcome`).

Plain classes with slots; a compiled build gives them C-typed fields (``enginestate.pxd``).
The engine model that moves them is :mod:`driftsched.sim.engine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftsched.sim.costmodel import BatchShape, chunk_attention
from driftsched.sim.request import from_fields

if TYPE_CHECKING:
    from driftsched.sim.prefixcache import Prefix

WAITING, PREFILL, DECODE, FINISHED = "waiting", "prefill", "decode", "finished"


class EngineRequest:
    """Engine-side request state (vLLM's ``Request``): one progress counter chasing another.

    ``num_tokens = prompt_tokens + num_output_tokens``; the request is decoding once a token has
    been sampled after its last (re)prefill. ``target_tokens`` is how many tokens the engine
    will generate (the trace's ``output_tokens``; the engine generates them, policies never see
    them). Compared by identity.

    With prefix caching only (see :mod:`driftsched.sim.prefixcache`): ``prefix`` is what the
    prompt shares, ``blocks`` the request's block labels in position order, ``cached_blocks``
    how many are registered, ``keys`` its key memo. A new request has nothing computed, holds
    no blocks and shares nothing (the engine sets ``prefix`` when caching); ``num_output_tokens``
    may be given (a request resumed with output, in tests).

    A plain class with slots (a compiled build types its fields: ``enginestate.pxd``).
    """

    __slots__ = (
        "index", "prompt_tokens", "target_tokens", "num_computed_tokens", "num_output_tokens",
        "num_blocks", "num_preemptions", "phase", "prefix", "blocks", "cached_blocks", "keys",
    )  # fmt: skip

    def __init__(
        self, index: int, prompt_tokens: int, target_tokens: int, num_output_tokens: int = 0
    ):
        self.index, self.prompt_tokens, self.target_tokens = index, prompt_tokens, target_tokens
        self.num_computed_tokens, self.num_output_tokens = 0, num_output_tokens
        self.num_blocks = self.num_preemptions = self.cached_blocks = 0
        self.phase = WAITING
        self.prefix: Prefix | None = None
        self.blocks: list[int] | None = None
        self.keys: list[int] | None = None

    @property
    def num_tokens(self) -> int:
        return self.prompt_tokens + self.num_output_tokens

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(index={self.index}, phase={self.phase!r}, "
            f"computed={self.num_computed_tokens}, output={self.num_output_tokens}/"
            f"{self.target_tokens}, blocks={self.num_blocks})"
        )


class StepPlan:
    """One step's schedule. ``chunks`` are the (request, tokens) pairs of prefill-phase requests;
    decoding requests get one token each (``decode_requests`` of them). ``preempted`` and
    ``admitted`` list the requests the step preempts and admits; ``decodes`` is the explicit
    list of decoding requests (reference engine only); ``shape`` is set when the plan is final,
    before any state changes (:meth:`finalise`)."""

    __slots__ = (
        "tick", "chunks", "decode_requests", "decode_context_tokens", "preempted", "admitted",
        "decodes", "shape",
    )  # fmt: skip

    def __init__(
        self,
        tick: int,
        chunks: list[tuple[EngineRequest, int]],
        decode_requests: int,
        decode_context_tokens: int,
        decodes: list[EngineRequest] | None = None,
    ):
        self.tick = tick
        self.chunks = chunks
        self.decode_requests = decode_requests
        self.decode_context_tokens = decode_context_tokens
        self.preempted: list[EngineRequest] = []
        self.admitted: list[EngineRequest] = []
        self.decodes = decodes
        self.shape: BatchShape | None = None

    def finalise(self) -> StepPlan:
        """Compute :attr:`shape` from the plan (call before :meth:`complete` mutates state)."""
        if not self.chunks:
            self.shape = from_fields(
                BatchShape, (0, 0.0, 0, self.decode_requests, self.decode_context_tokens)
            )
            return self
        tokens, attention = 0, 0.0
        for req, n in self.chunks:
            tokens += n
            attention += chunk_attention(n, req.num_computed_tokens)
        self.shape = from_fields(
            BatchShape,
            (tokens, attention, len(self.chunks), self.decode_requests, self.decode_context_tokens),
        )
        return self

    @property
    def empty(self) -> bool:
        return not self.chunks and not self.decode_requests


class StepOutcome:
    """What a step did: the requests that produced their first token, and those that finished."""

    __slots__ = ("first_token", "finished")

    def __init__(self, first_token: list[EngineRequest], finished: list[EngineRequest]):
        self.first_token = first_token
        self.finished = finished
