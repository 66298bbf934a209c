"""What a policy may read of the gateway and the engines: :class:`GatewayState`, read-only.

A policy that defines ``attach(state)`` is handed one of these before the first request; it
stays current as requests are admitted, dispatched and finished, so the policy reads it in
``pop`` (or ``admit``) without the gateway building anything per call. The counts are kept only
for policies that attach: the others pay nothing.

Replica figures come from each replica's engine as the driver sees it: under the simulator the
simulated engine, under the live gateway the real vLLM scheduler (``running``/``waiting``
lengths and the KV block pool). A figure the driver cannot know is NaN (KV utilisation) or -1
(running/waiting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType


class ReplicaView:
    """One replica, read-only: requests in flight from the gateway, the engine's running and
    waiting counts, and its KV-cache utilisation (used / capacity blocks)."""

    __slots__ = ("_slot",)

    def __init__(self, slot):
        self._slot = slot

    @property
    def replica_id(self) -> int:
        return self._slot.replica_id

    @property
    def in_flight(self) -> int:
        """Requests dispatched to this replica and not finished."""
        return self._slot.in_engine

    @property
    def running(self) -> int:
        """Requests the engine is running now (-1: unknown)."""
        engine = self._slot.engine
        return len(engine.running) if engine is not None else -1

    @property
    def waiting(self) -> int:
        """Requests waiting inside the engine (-1: unknown)."""
        engine = self._slot.engine
        return len(engine.waiting) if engine is not None else -1

    @property
    def kv_utilisation(self) -> float:
        """Share of KV blocks in use, 0..1 (NaN: unknown)."""
        return self._slot.kv_utilisation

    def __repr__(self) -> str:
        return (
            f"ReplicaView(id={self.replica_id}, in_flight={self.in_flight}, "
            f"running={self.running}, waiting={self.waiting}, kv={self.kv_utilisation:.2f})"
        )


class GatewayState:
    """The gateway and its replicas as a policy may see them. Counts are of requests:
    ``queued_*`` in the policy's queue, ``in_flight_*`` dispatched and not finished."""

    __slots__ = ("_gateway", "replicas")

    def __init__(self, gateway, slots: Sequence):
        self._gateway = gateway
        #: one :class:`ReplicaView` per replica, in replica order
        self.replicas: tuple[ReplicaView, ...] = tuple(ReplicaView(s) for s in slots)

    @property
    def queued(self) -> int:
        return len(self._gateway)

    @property
    def queued_by_tier(self) -> Mapping[str, int]:
        return MappingProxyType(self._gateway.depth_by_tier)

    @property
    def queued_by_tenant(self) -> Mapping[str, int]:
        return MappingProxyType(self._gateway.queued_by_tenant)

    @property
    def in_flight_by_tenant(self) -> Mapping[str, int]:
        return MappingProxyType(self._gateway.in_flight_by_tenant)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    @property
    def kv_utilisation(self) -> float:
        """Mean KV utilisation over replicas (NaN when unknown)."""
        values = [r.kv_utilisation for r in self.replicas]
        return sum(values) / len(values) if values else float("nan")

    @property
    def engine_waiting(self) -> int:
        """Requests waiting inside the engines, summed (-1 when unknown)."""
        values = [r.waiting for r in self.replicas]
        return -1 if not values or min(values) < 0 else sum(values)
