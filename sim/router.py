"""Routers: which engine replica gets the request the gateway policy hands out next.

The gateway policy orders the one shared queue; the router only picks the replica. It is
called with the replicas that have room (fewer than ``max_concurrency`` requests in flight),
in replica order, and returns one of them. Pure and clock-free, like the policies.

To add a router: a function (or a class of callables) here and one ``ROUTERS`` entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from driftsched.ground.registry import Registry


class ReplicaState(Protocol):
    """What a router may read about a replica."""

    replica_id: int
    in_engine: int  # requests dispatched to it and not finished

    @property
    def kv_utilisation(self) -> float: ...


class RoundRobin:
    """Replicas in turn, skipping full ones."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self, candidates: Sequence[ReplicaState], replicas: int) -> ReplicaState:
        by_id = {r.replica_id: r for r in candidates}
        for k in range(replicas):
            rid = (self._next + k) % replicas
            if rid in by_id:
                self._next = rid + 1
                return by_id[rid]
        raise ValueError("no candidate replica")


def least_outstanding(candidates: Sequence[ReplicaState], replicas: int) -> ReplicaState:
    """Fewest requests in flight; ties to the lowest replica id."""
    return min(candidates, key=lambda r: (r.in_engine, r.replica_id))


def least_kv(candidates: Sequence[ReplicaState], replicas: int) -> ReplicaState:
    """Lowest KV-cache utilisation; ties to fewer in flight, then the lowest id."""
    return min(candidates, key=lambda r: (r.kv_utilisation, r.in_engine, r.replica_id))


#: name -> factory of a router (a callable: candidates, replica count -> the chosen replica)
ROUTERS: Registry[Callable[[], Callable]] = Registry(
    "router",
    {
        "round_robin": RoundRobin,
        "least_outstanding": lambda: least_outstanding,
        "least_kv": lambda: least_kv,
    },
)


def make_router(name: str) -> Callable:
    """A fresh router ``name`` (routers may keep state, such as round robin's turn)."""
    return ROUTERS.resolve(name)()
