"""Synthetic multi-tenant workloads for capacity sweeps: ``poisson`` and ``gamma`` arrivals.

Tenants are given as ``name=tier:weight`` (each request picks a tenant by weight). Lengths are a
:mod:`~driftsched.traces.lengths` spec (log-normal or empirical from another trace). Categories
come from output-length bins with a little noise and ``max_tokens`` from a rule, both as for the
importers (:mod:`~driftsched.traces.assign`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
from driftsched.traces.arrivals import arrivals_from_gaps, gamma_gaps, poisson_gaps
from driftsched.traces.assign import (
    CATEGORY_CAPS,
    MaxTokensRule,
    categories_from_output,
    max_tokens_for,
)
from driftsched.traces.drift import Drift, combined_multiplier
from driftsched.traces.lengths import finalise, parse_length_spec
from driftsched.traces.schema import tier_rank
from driftsched.traces.trace import Trace, request_frame
from pydantic import AfterValidator, Field

from driftsched.ground.config import Config
from driftsched.ground.rng import streams


def parse_tenants(text: str) -> list[tuple[str, str, float]]:
    """Parse ``a=premium:0.5,b=standard:0.3`` into ``[(tenant, tier, weight), ...]``."""
    out = []
    for part in filter(None, text.split(",")):
        name, _, rest = part.partition("=")
        tier, _, weight = rest.partition(":")
        try:
            w = float(weight or 1)
            tier_rank(tier)
        except ValueError:
            w = -1
        if not name or w <= 0:
            raise ValueError(
                f"expected NAME=TIER:WEIGHT (tier premium|standard|batch|integer, weight > 0), "
                f"got {part!r}"
            )
        out.append((name, tier, w))
    if not out:
        raise ValueError("need at least one tenant")
    return out


def _tenants_ok(text: str) -> str:
    parse_tenants(text)
    return text


#: a ``NAME=TIER:WEIGHT,...`` tenant list, checked when a config is built
TenantSpec = Annotated[str, AfterValidator(_tenants_ok)]


class SyntheticConfig(Config):
    """A renewal-process workload. ``cv`` applies to ``gamma`` only (``poisson`` has cv 1)."""

    arrival: Literal["poisson", "gamma"] = "poisson"
    requests: int = Field(10_000, ge=1)
    seed: int = Field(0, ge=0)
    rate_per_s: float = Field(5.0, gt=0, description="mean arrival rate, requests/s")
    cv: float = Field(1.0, gt=0, description="inter-arrival coefficient of variation (gamma)")
    tenants: TenantSpec = "tenant-premium=premium:1,tenant-standard=standard:1,tenant-batch=batch:1"
    prompt_len: str = "lognormal:median=512,sigma=0.9"
    output_len: str = "lognormal:median=128,sigma=0.9"
    output_cap: int = Field(4096, ge=1, description="true outputs are clipped to this")
    prompt_cap: int = Field(8192, ge=1, description="prompts are clipped to this")
    max_total_tokens: int | None = Field(
        2048,
        ge=2,
        description="prompt + output are clipped to fit this (outputs first to one less, then "
        "prompts); the default is the bundled profiles' max_model_len, so the default trace "
        "runs on them; None: no joint limit",
    )
    category_noise: float = Field(0.1, ge=0, le=1)
    max_tokens_rule: MaxTokensRule = "pow2"
    drifts: tuple[str, ...] = ()


def generate_synthetic(config: SyntheticConfig) -> Trace:
    """Generate a renewal-process multi-tenant trace. Same config (incl. seed) -> same trace."""
    n = config.requests
    rng = streams(config.seed, "gap", "tenant", "prompt", "output", "category")
    if config.arrival == "poisson":
        gaps = poisson_gaps(rng["gap"], n, config.rate_per_s)
    else:
        gaps = gamma_gaps(rng["gap"], n, config.rate_per_s, config.cv)
    arrival_s = arrivals_from_gaps(gaps)
    specs = parse_tenants(config.tenants)
    weights = np.asarray([w for _, _, w in specs])
    idx = rng["tenant"].choice(len(specs), n, p=weights / weights.sum())
    tenants = _categorical([t for t, _, _ in specs], idx)
    tiers = _categorical([tier for _, tier, _ in specs], idx)
    prompt = finalise(
        parse_length_spec(config.prompt_len).sample(rng["prompt"], n), cap=config.prompt_cap
    )
    raw_out = parse_length_spec(config.output_len).sample(rng["output"], n)
    output_cap = config.output_cap
    if config.max_total_tokens is not None:
        output_cap = min(output_cap, config.max_total_tokens - 1)
    drifts = [Drift.parse(d) for d in config.drifts]
    # Drift by category needs a category first: bin the undrifted length, then apply drift.
    cat_names = categories_from_output(
        finalise(raw_out, cap=output_cap), rng["category"], config.category_noise
    )
    cats = pd.Categorical(cat_names, categories=list(CATEGORY_CAPS))
    output = finalise(
        raw_out,
        combined_multiplier(drifts, arrival_s, np.asarray(tenants), cat_names) if drifts else 1.0,
        output_cap,
    )
    if config.max_total_tokens is not None:
        prompt = np.minimum(prompt, config.max_total_tokens - output)
    max_tokens = max_tokens_for(output, cat_names, config.max_tokens_rule)
    frame = request_frame("req", arrival_s, tenants, tiers, cats, prompt, output, max_tokens)
    return Trace.from_frame(
        frame, config.arrival, source=config.arrival, config=config.model_dump(mode="json")
    )


def _categorical(per_spec: list[str], idx: np.ndarray) -> pd.Categorical:
    """``per_spec[idx]`` as a categorical column, built from codes (no Python string per row)."""
    names = sorted(set(per_spec))
    code_of = np.asarray([names.index(v) for v in per_spec], dtype=np.int32)
    return pd.Categorical.from_codes(code_of[idx], categories=names)
