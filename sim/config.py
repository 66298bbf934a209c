"""Simulation configuration: validated, immutable, with per-field help."""

from __future__ import annotations

from typing import Any, Literal

from driftsched.sim.correctors import CORRECTORS
from driftsched.sim.jobclass import JobClassConfig
from driftsched.sim.policies import POLICIES
from driftsched.sim.profile import DEFAULT_PROFILE
from driftsched.sim.router import ROUTERS
from pydantic import Field, field_validator

from driftsched.ground.config import Config

MODES = ("continuous", "microbatch")


class SimConfig(Config):
    """One simulation run: gateway policy + corrector + dispatch mode + engine profile.

    Policy, corrector and router names are checked here, when the config is built (an unknown
    name raises :class:`~driftsched.ground.errors.UnknownNameError` listing the valid ones),
    so no run starts — and no trace is built — with a name that cannot be resolved."""

    policy: str = Field("fifo", description="gateway policy (see driftsched sim list)")
    policy_params: dict[str, Any] = Field(default_factory=dict)
    corrector: str = Field("none", description="drift corrector: none | ewma | oracle")
    corrector_params: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["continuous", "microbatch"] = "continuous"
    max_concurrency: int = Field(
        64, ge=1, description="continuous: requests in flight per engine replica"
    )
    replicas: int = Field(1, ge=1, description="engine replicas behind the one gateway queue")
    router: str = Field(
        "round_robin",
        description="continuous mode, replicas > 1: round_robin | least_outstanding | least_kv",
    )
    batch_size: int = Field(32, ge=1, description="microbatch: requests per batch (B)")
    batch_wait_s: float = Field(0.010, ge=0, description="microbatch: max wait to fill a batch")
    profile: str = Field(DEFAULT_PROFILE, description="cost-model profile name or path")
    engine: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the profile's engine settings"
    )
    job_classes: JobClassConfig = Field(default_factory=JobClassConfig)
    horizon_s: float | None = Field(None, gt=0, description="stop here; later work unfinished")
    engine_impl: Literal["fast", "reference"] = Field(
        "fast", description="fast (event bookkeeping) or reference (literal per-request loop)"
    )
    fast_forward: bool = Field(
        True,
        description="fast engine: advance over runs of decode-only steps in one event (exact; "
        "false = one event per engine step, the step-by-step reference timing)",
    )
    timeseries_dt_s: float = Field(0.5, gt=0, description="time-series sampling interval")
    overheads: bool = Field(
        True,
        description="add the profile's measured per-step/per-request overheads outside "
        "engine steps (output processing, admission) to each step",
    )
    oversize: Literal["error", "drop"] = Field(
        "error", description="requests longer than max_model_len: refuse the trace, or drop them"
    )

    @field_validator("policy")
    @classmethod
    def _policy(cls, name: str) -> str:
        return POLICIES.check(name)

    @field_validator("corrector")
    @classmethod
    def _corrector(cls, name: str) -> str:
        return CORRECTORS.check(name)

    @field_validator("router")
    @classmethod
    def _router(cls, name: str) -> str:
        return ROUTERS.check(name)
