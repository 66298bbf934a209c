"""Routers: which engine replica gets the request the gateway policy hands out next.

The gateway policy orders the one shared queue; the router only picks the replica. It is
called with the replicas that have room (fewer than ``max_concurrency`` requests in flight),
in replica order, and returns one of them. Pure and clock-free, like the policies.

To add a built-in: a function (stateless) or a class of callables (built fresh for each run:
it may keep state, like round robin's turn) here and one ``ROUTERS`` entry. A user's router
comes in by the same door: an entry point in the group ``driftsched.routers``, or
``module:Attr`` / ``file.py:Attr``. A router with ``routes_by_request = True`` is also handed
the request's view (``router(candidates, replicas, view)``).
"""

from __future__ import annotations

from collections import OrderedDict
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


class PrefixAffinity:
    """Send a request where its prompt's prefix was sent before, so that replica's prefix
    cache holds it (for prefix caching; in the spirit of SGLang's cache-aware router and
    llm-d's approximate prefix-cache scorer, which keep the same kind of view).

    The router keeps, per replica, an LRU of the prefix-chunk chains it routed there (at most
    ``capacity_chunks``; the router does not read the engines' caches, so it behaves the same
    in front of a simulated and a real engine). A request's score on a replica is how many of
    its leading chunks that replica has seen; the highest score wins, ties to fewer in flight
    then the lowest id. Load guard: when the winner has more than ``imbalance`` requests in
    flight beyond the least loaded candidate, or no replica has seen a chunk, the request goes
    to the least loaded (``least_outstanding``). Its chunks are then recorded for the chosen
    replica. Requests without a prefix go to the least loaded.

    ``prefix_of(index) -> chunk ids`` is bound by the driver (:meth:`bind`), since requests
    carry their prefix in the trace, not in what the gateway hands out."""

    routes_by_request = True

    def __init__(self, capacity_chunks: int = 1 << 16, imbalance: int = 8) -> None:
        self.capacity, self.imbalance = capacity_chunks, imbalance
        self._seen: dict[int, OrderedDict[int, None]] = {}
        self._prefix_of: Callable[[int], tuple[int, ...]] = lambda index: ()

    def bind(self, prefix_of: Callable[[int], tuple[int, ...]]) -> None:
        self._prefix_of = prefix_of

    def __call__(self, candidates: Sequence[ReplicaState], replicas: int, view) -> ReplicaState:
        chain, h = [], 0
        for cid in self._prefix_of(view.index):
            h = hash((h, cid))
            chain.append(h)
        least = least_outstanding(candidates, replicas)
        best, best_score = least, 0
        if chain:
            for r in candidates:
                seen = self._seen.get(r.replica_id)
                score = 0
                if seen:
                    while score < len(chain) and chain[score] in seen:
                        score += 1
                if score > best_score or (
                    score == best_score
                    and score
                    and (r.in_engine, r.replica_id) < (best.in_engine, best.replica_id)
                ):
                    best, best_score = r, score
        if best_score and best.in_engine - least.in_engine > self.imbalance:
            best, best_score = least, 0
        if chain:
            seen = self._seen.setdefault(best.replica_id, OrderedDict())
            for key in chain:
                seen[key] = None
                seen.move_to_end(key)
            while len(seen) > self.capacity:
                seen.popitem(last=False)
        return best


def least_kv(candidates: Sequence[ReplicaState], replicas: int) -> ReplicaState:
    """Lowest KV-cache utilisation; ties to fewer in flight, then the lowest id."""
    return min(candidates, key=lambda r: (r.kv_utilisation, r.in_engine, r.replica_id))


#: a router that reads ``kv_utilisation`` says so: the simulator then steps every engine one
#: step at a time, so each replica's pool is current at every dispatch
least_kv.reads_kv = True


def not_a_router(obj: object) -> str | None:
    """Why ``obj`` cannot serve as a router (a class of callables, or a function)."""
    if not callable(obj):
        return f"{obj!r} is not a router: expected a class or a function"
    return None


#: name -> a router class (instantiated per run) or a stateless router function
#: (``candidates, replica count -> the chosen replica``)
ROUTERS: Registry[Callable] = Registry(
    "router",
    {
        "round_robin": RoundRobin,
        "least_outstanding": least_outstanding,
        "least_kv": least_kv,
        "prefix_affinity": PrefixAffinity,
    },
    group="driftsched.routers",
    accepts=not_a_router,
)


def make_router(spec) -> Callable:
    """A fresh router from a spec (registered name, entry point, ``module:Attr``,
    ``file.py:Attr``), a class (instantiated), or a router callable (used as is)."""
    obj = ROUTERS.resolve(spec) if isinstance(spec, str) else spec
    return obj() if isinstance(obj, type) else obj
