"""The gateway service's configuration file (TOML): the gateway's scheduling — the very
:class:`~driftsched.sim.config.SimConfig` fields a simulation takes — its upstreams, its state
and its tenants. Example (docs/serve.md)::

    [gateway]
    policy = "sjf"
    corrector = "ewma"
    mode = "continuous"          # or "microbatch" (batch_size, batch_wait_s)
    max_concurrency = 16         # requests in flight per upstream
    upstreams = ["http://127.0.0.1:8100"]
    records = "out/gateway/records.jsonl"
    redis_url = "redis://127.0.0.1:6379/0"   # corrector state survives restarts

    [[tenants]]
    name = "acme"
    key_sha256 = "<driftsched gateway hash-key>"
    tier = "premium"
    requests_per_s = 5
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from driftsched.validate.serve.http import MAX_BODY_BYTES
from driftsched.validate.serve.tenants import TenantConfig
from pydantic import Field, field_validator

from driftsched.ground.config import Config, build
from driftsched.ground.errors import InputError


class GatewaySettings(Config):
    """The ``[gateway]`` table."""

    policy: str = Field("fifo", description="gateway policy (driftsched sim list)")
    policy_params: dict[str, Any] = Field(default_factory=dict)
    corrector: str = Field("none", description="drift corrector (driftsched sim list)")
    corrector_params: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["continuous", "microbatch"] = "continuous"
    max_concurrency: int = Field(16, ge=1, description="continuous: in flight per upstream")
    batch_size: int = Field(32, ge=1, description="microbatch: requests per batch")
    batch_wait_s: float = Field(0.010, ge=0, description="microbatch: max wait to fill one")
    router: str = Field("least_outstanding", description="which upstream gets the next one")
    upstreams: list[str] = Field(min_length=1, description="base URLs of vLLM OpenAI servers")
    upstream_model: str | None = Field(None, description="model name sent upstream")
    records: str | None = Field(None, description="per-request log (JSON lines), appended")
    redis_url: str | None = Field(None, description="corrector state in Redis (else memory)")
    state_key: str = Field("driftsched:gateway", description="Redis key prefix")
    max_body_bytes: int = Field(MAX_BODY_BYTES, ge=1024)
    max_queued: int = Field(10_000, ge=1, description="requests queued at once, all tenants")
    upstream_timeout_s: float = Field(600.0, gt=0)
    retry_cooldown_s: float = Field(5.0, ge=0, description="a failed upstream rests this long")

    @field_validator("corrector")
    @classmethod
    def _no_oracle(cls, v: str) -> str:
        if v == "oracle":
            raise ValueError("the oracle reads true lengths: a live gateway has none")
        return v

    @field_validator("upstreams")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"an upstream is a base URL such as http://host:8000 (got {url!r})"
                )
        return [u.rstrip("/").removesuffix("/v1") for u in v]


class GatewayConfig(Config):
    gateway: GatewaySettings
    tenants: list[TenantConfig] = Field(min_length=1)

    def sim_config(self):
        """The scheduling part as the simulator's config (the same objects run both)."""
        from driftsched.sim.config import SimConfig

        g = self.gateway
        params = dict(g.policy_params)
        if "tenant_weights" in _param_fields(g.policy) and "tenant_weights" not in params:
            params["tenant_weights"] = {t.name: t.weight for t in self.tenants}
        return SimConfig(
            policy=g.policy,
            policy_params=params,
            corrector=g.corrector,
            corrector_params=g.corrector_params,
            mode=g.mode,
            max_concurrency=g.max_concurrency,
            replicas=len(g.upstreams),
            router=g.router,
            batch_size=g.batch_size,
            batch_wait_s=g.batch_wait_s,
        )


def _param_fields(policy: str) -> set[str]:
    from driftsched.sim.policies import POLICIES

    try:
        cls = POLICIES.resolve(policy)
    except Exception:  # a plugin spec: its params are its own business
        return set()
    params = getattr(cls, "Params", None)
    return set(getattr(params, "model_fields", {}))


def load_gateway_config(path: str | Path) -> GatewayConfig:
    """The config in ``path``, or :class:`InputError` naming the file and the field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read the gateway config: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not TOML: {exc}") from None
    config = build(GatewayConfig, data, str(path))
    try:
        config.sim_config()
    except Exception as exc:
        raise InputError(f"{path}: [gateway]: {exc}".splitlines()[0]) from None
    return config
