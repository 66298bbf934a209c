"""Gateway policies: one registry table.

To add a policy: one new file here with a :class:`Policy` subclass (and a params model if it
has parameters), then one line in ``POLICIES``. The conformance suite in
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
from driftsched.ground.errors import UnknownNameError

#: name -> (class, params model)
POLICIES: dict[str, tuple[type[Policy], type[Config]]] = {
    "fifo": (FifoPolicy, NoParams),
    "priority": (PriorityPolicy, NoParams),
    "weighted": (WeightedPolicy, WeightedParams),
    "sjf": (SjfPolicy, NoParams),
    "aging": (AgingPolicy, AgingParams),
}


def make_policy(name: str, params: dict[str, Any] | None = None) -> Policy:
    """Build policy ``name`` with validated ``params``; unknown names list the valid ones."""
    if name not in POLICIES:
        raise UnknownNameError("policy", name, list(POLICIES))
    cls, model = POLICIES[name]
    return cls(build(model, params or {}, f"policy {name}"))


def parse_names(text: str, table: dict, kind: str) -> list[str]:
    """``"all"`` or a comma list -> names, each checked against ``table``."""
    names = list(table) if text.strip() == "all" else [n.strip() for n in text.split(",") if n]
    for name in names:
        if name not in table:
            raise UnknownNameError(kind, name, list(table))
    return names


__all__ = ["POLICIES", "Policy", "make_policy", "parse_names"]
