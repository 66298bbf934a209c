"""``sjf``: shortest estimated job first — smallest ``prompt_tokens + estimate_tokens``; ties by
arrival. Uses the corrector's estimate, never the true length."""

from __future__ import annotations

from driftsched.sim.policies.base import HeapPolicy
from driftsched.sim.request import RequestView


class SjfPolicy(HeapPolicy):
    name = "sjf"

    def key(self, req: RequestView) -> int:
        return req.budget_tokens
