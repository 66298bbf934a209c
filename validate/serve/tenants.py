"""Tenants of the gateway service: who may call, at what tier, within which limits.

A tenant's API key is stored only as its SHA-256 (``key_sha256``; ``driftsched gateway
hash-key`` prints it) and checked in constant time against every tenant's hash
(:func:`hmac.compare_digest`), so neither the key nor a timing difference says which tenant
almost matched. Keys never appear in logs, errors or records — records carry the tenant's name.

Limits are token buckets (:class:`TokenBucket`): one on requests per second, one on tokens per
second (a request costs its prompt plus ``max_tokens``); a request over either is refused with
429 and ``Retry-After`` (seconds until the bucket holds enough). ``max_queued`` bounds the
tenant's requests waiting in the gateway's queue.
"""

from __future__ import annotations

import hashlib
import hmac
import math

from pydantic import Field

from driftsched.ground.config import Config


def hash_key(key: str) -> str:
    """The SHA-256 hex digest a tenant's ``key_sha256`` holds."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class TokenBucket:
    """``rate`` units per second, holding at most ``burst``; starts full. Pure: callers pass
    ``now_s``."""

    def __init__(self, rate: float, burst: float, now_s: float = 0.0):
        self.rate, self.burst = rate, burst
        self.level, self.at_s = burst, now_s

    def _refill(self, now_s: float) -> None:
        if now_s > self.at_s:
            self.level = min(self.burst, self.level + (now_s - self.at_s) * self.rate)
            self.at_s = now_s

    def take(self, amount: float, now_s: float) -> float:
        """Take ``amount`` if the bucket holds it: returns 0.0. Otherwise take nothing and
        return the seconds until it would (``inf`` when ``amount`` exceeds ``burst``)."""
        self._refill(now_s)
        if amount <= self.level:
            self.level -= amount
            return 0.0
        if amount > self.burst:
            return math.inf
        return (amount - self.level) / self.rate


class TenantConfig(Config):
    """One tenant (see the module docstring)."""

    name: str = Field(min_length=1)
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the API key")
    tier: str = Field("standard", description="premium, standard, batch or an integer rank")
    weight: float = Field(1.0, gt=0, description="share for tenant-weighted policies")
    category: str = Field("unknown", description="request category when none is sent")
    ttft_slo_s: float | None = Field(None, gt=0)
    e2e_slo_s: float | None = Field(None, gt=0)
    requests_per_s: float | None = Field(None, gt=0, description="request rate limit")
    request_burst: float | None = Field(None, gt=0, description="default: 2 s of the rate")
    tokens_per_s: float | None = Field(None, gt=0, description="token rate limit")
    token_burst: float | None = Field(None, gt=0, description="default: 2 s of the rate")
    max_queued: int | None = Field(None, ge=1, description="requests queued at once")


class Tenant:
    """A configured tenant with its live limit state."""

    def __init__(self, config: TenantConfig, now_s: float = 0.0):
        self.config = config
        self.name = config.name
        c = config
        self.requests = (
            TokenBucket(c.requests_per_s, c.request_burst or 2 * c.requests_per_s, now_s)
            if c.requests_per_s
            else None
        )
        self.tokens = (
            TokenBucket(c.tokens_per_s, c.token_burst or 2 * c.tokens_per_s, now_s)
            if c.tokens_per_s
            else None
        )
        self.queued = 0  # requests of this tenant waiting in the gateway's queue

    def limit(self, tokens: int, now_s: float) -> tuple[str, float] | None:
        """``(limit, retry_after_s)`` when the request is over a limit (nothing is taken
        then), else None (the request's share is taken from both buckets)."""
        c = self.config
        if c.max_queued is not None and self.queued >= c.max_queued:
            return "max_queued", 1.0
        wait = self.requests.take(1, now_s) if self.requests else 0.0
        if wait:
            return "requests_per_s", wait
        wait = self.tokens.take(tokens, now_s) if self.tokens else 0.0
        if wait:
            if self.requests:  # give back the request taken above
                self.requests.level = min(self.requests.burst, self.requests.level + 1)
            return "tokens_per_s", wait
        return None


class Tenants:
    """The tenant table: lookup by API key (constant time, every hash compared)."""

    def __init__(self, configs: list[TenantConfig], now_s: float = 0.0):
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ValueError("tenant names must be unique")
        if len({c.key_sha256 for c in configs}) != len(configs):
            raise ValueError("two tenants share a key")
        self.by_name = {c.name: Tenant(c, now_s) for c in configs}
        self._hashes = [(bytes.fromhex(c.key_sha256), c.name) for c in configs]

    def authenticate(self, key: str | None) -> Tenant | None:
        """The tenant whose key this is, or None."""
        if not key:
            return None
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        found = None
        for stored, name in self._hashes:  # no early exit: the time does not say which
            if hmac.compare_digest(stored, digest):
                found = name
        return self.by_name[found] if found is not None else None

    def weights(self) -> dict[str, float]:
        return {name: t.config.weight for name, t in self.by_name.items()}
