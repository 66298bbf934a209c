"""Saturation, as the Gateway API Inference Extension's detector judges it: the engines are
saturated when *every* replica is — ``queue_threshold`` or more requests waiting inside its
engine, or KV-cache utilisation at or over ``kv_threshold``. A replica whose figures are unknown
(a live engine that does not expose them) never counts as saturated."""

from __future__ import annotations

from driftsched.sim.gatewaystate import GatewayState
from pydantic import Field

from driftsched.ground.config import Config


class SaturationParams(Config):
    queue_threshold: int = Field(4, ge=1, description="engine-waiting requests per replica")
    kv_threshold: float = Field(0.9, gt=0, le=1, description="KV utilisation per replica")


def saturated(state: GatewayState, params: SaturationParams) -> bool:
    """Whether every replica is over a threshold (see the module docstring)."""
    for r in state.replicas:
        kv = r.kv_utilisation
        if r.waiting < params.queue_threshold and not kv >= params.kv_threshold:
            return False
    return bool(state.replicas)
