"""Simulation configuration: validated, immutable, with per-field help."""

from __future__ import annotations

from typing import Any, Literal

from driftsched.sim.estimatorview import EstimatorViewConfig
from driftsched.sim.jobclass import JobClassConfig
from driftsched.sim.profile import DEFAULT_PROFILE
from pydantic import Field, ValidationInfo, field_validator

from driftsched.ground.config import Config

MODES = ("continuous", "microbatch")


class SimConfig(Config):
    """One simulation run: gateway policy + corrector + dispatch mode + engine profile.

    Policy, corrector and router specs (a registered name, an installed plugin's name,
    ``package.module:Class`` or ``path/to/file.py:Class``) are checked here, when the config is
    built — imported, and stored in their canonical form, which any worker process resolves
    again — so no run starts, and no trace is built, with a spec that cannot be resolved (an
    unknown name raises :class:`~driftsched.ground.errors.UnknownNameError` listing the valid
    ones). Built with the validation context ``{"objects": {"policy", ...}}``, a field holds
    the label of a Python object handed to :func:`~driftsched.sim.simulation.simulate`
    instead, and is not resolved."""

    policy: str = Field("fifo", description="gateway policy (see driftsched sim list)")
    policy_params: dict[str, Any] = Field(default_factory=dict)
    corrector: str = Field("none", description="drift corrector (see driftsched sim list)")
    corrector_params: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["continuous", "microbatch"] = "continuous"
    max_concurrency: int = Field(
        64, ge=1, description="continuous: requests in flight per engine replica"
    )
    replicas: int = Field(1, ge=1, description="engine replicas behind the one gateway queue")
    router: str = Field(
        "round_robin",
        description="continuous mode, replicas > 1: which replica gets the next request "
        "(see driftsched sim list)",
    )
    batch_size: int = Field(32, ge=1, description="microbatch: requests per batch (B)")
    batch_wait_s: float = Field(0.010, ge=0, description="microbatch: max wait to fill a batch")
    profile: str = Field(DEFAULT_PROFILE, description="cost-model profile name or path")
    engine: dict[str, Any] = Field(
        default_factory=dict, description="overrides of the profile's engine settings"
    )
    job_classes: JobClassConfig = Field(default_factory=JobClassConfig)
    estimator_view: EstimatorViewConfig = Field(
        default_factory=EstimatorViewConfig,
        description="what the corrector counts in (tokens|words) and how often its category "
        "is wrong: the study's with-split variant (sim/estimatorview.py)",
    )
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
    def _policy(cls, spec: str, info: ValidationInfo) -> str:
        from driftsched.sim.policies import POLICIES  # (here: --help needs no registry)

        return spec if _is_object(info, "policy") else POLICIES.check(spec)

    @field_validator("corrector")
    @classmethod
    def _corrector(cls, spec: str, info: ValidationInfo) -> str:
        from driftsched.sim.correctors import CORRECTORS

        return spec if _is_object(info, "corrector") else CORRECTORS.check(spec)

    @field_validator("router")
    @classmethod
    def _router(cls, spec: str, info: ValidationInfo) -> str:
        from driftsched.sim.router import ROUTERS

        return spec if _is_object(info, "router") else ROUTERS.check(spec)


def _is_object(info: ValidationInfo, field: str) -> bool:
    return bool(info.context) and field in info.context.get("objects", ())
