"""Gateway policies: one registry, :data:`POLICIES` (name -> (class, params model)).

To add a policy: one new file here with a :class:`Policy` subclass (and a params model if it
has parameters), then one ``POLICIES`` entry. The conformance suite in
``tests/test_policies.py`` runs over every registered policy automatically. See docs/policies.md.
"""

from __future__ import annotations

from typing import Any

from driftsched.sim.policies.aging import AgingParams, AgingPolicy
from driftsched.sim.policies.base import NoParams, Policy
from driftsched.sim.policies.fifo import FifoPolicy
from driftsched.sim.policies.priority import PriorityPolicy
from driftsched.sim.policies.sjf import SjfPolicy
from driftsched.sim.policies.weighted import WeightedParams, WeightedPolicy

from driftsched.ground.config import Config, build
from driftsched.ground.registry import Registry

#: name -> (class, params model)
POLICIES: Registry[tuple[type[Policy], type[Config]]] = Registry(
    "policy",
    {
        "fifo": (FifoPolicy, NoParams),
        "priority": (PriorityPolicy, NoParams),
        "weighted": (WeightedPolicy, WeightedParams),
        "sjf": (SjfPolicy, NoParams),
        "aging": (AgingPolicy, AgingParams),
    },
)


def make_policy(name: str, params: dict[str, Any] | None = None) -> Policy:
    """Build policy ``name`` with validated ``params``; unknown names list the valid ones."""
    cls, model = POLICIES.resolve(name)
    return cls(build(model, params or {}, f"policy {name}"))


__all__ = ["POLICIES", "Policy", "make_policy"]
