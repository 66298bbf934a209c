"""The reference study's workload (DriftSched, arXiv 2606.02982) as a seeded generator.

Three tenants (``tenant-premium``/premium, ``tenant-standard``/standard, ``tenant-batch``/batch),
picked uniformly per request. Four categories with output caps 64/256/384/512. A *learning phase*
(the first 1000 requests when the total is >= 3000, else ``max(100, 33%)``) with category weights
40/25/25/10 and gaps Uniform(0.05, 0.15) s, then a *stress phase* with weights 10/20/40/30 and gaps
Uniform(0.005, 0.03) s.

True output lengths are log-normal per category, clipped at the cap. The study does not publish
its length distribution; the defaults put each median near half the cap with sigma 0.4-0.55, so
most outputs end well before the cap and ~6-7 % hit it (see docs/traces.md for the reasoning:
LLM output lengths are right-skewed and well fitted by log-normals in the Azure and BurstGPT
traces, and ``max_tokens`` truncation turns the upper tail into a spike at the cap).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from driftsched.traces.assign import CATEGORY_CAPS
from driftsched.traces.drift import Drift, combined_multiplier
from driftsched.traces.lengths import LogNormal, finalise
from driftsched.traces.trace import Trace, request_frame
from pydantic import Field, model_validator

from driftsched.ground.config import Config
from driftsched.ground.rng import streams


class LengthParams(Config):
    """Log-normal parameters in tokens."""

    median: float = Field(gt=0)
    sigma: float = Field(ge=0)


def _ln(median: float, sigma: float) -> LengthParams:
    return LengthParams(median=median, sigma=sigma)


class PaperConfig(Config):
    """Parameters of the study's workload; defaults reproduce the study's description."""

    requests: int = Field(3000, ge=1, description="total requests")
    seed: int = Field(0, ge=0)
    learning_requests: int | None = Field(
        None,
        ge=0,
        description="learning-phase length; default 1000 if total >= 3000 else "
        "max(100, 33% of total)",
    )
    learning_gap_s: tuple[float, float] = (0.05, 0.15)
    stress_gap_s: tuple[float, float] = (0.005, 0.03)
    learning_weights: dict[str, float] = {
        "short_qa": 40,
        "summary": 25,
        "technical": 25,
        "report": 10,
    }
    stress_weights: dict[str, float] = {
        "short_qa": 10,
        "summary": 20,
        "technical": 40,
        "report": 30,
    }
    caps: dict[str, int] = dict(CATEGORY_CAPS)
    output_lengths: dict[str, LengthParams] = {
        "short_qa": _ln(28, 0.55),
        "summary": _ln(120, 0.5),
        "technical": _ln(190, 0.45),
        "report": _ln(280, 0.4),
    }
    prompt_lengths: dict[str, LengthParams] = {
        "short_qa": _ln(40, 0.6),
        "summary": _ln(600, 0.5),
        "technical": _ln(200, 0.6),
        "report": _ln(150, 0.6),
    }
    prompt_cap: int = Field(1536, ge=1, description="prompt tokens are clipped to this")
    drifts: tuple[str, ...] = Field((), description="drift specs, see driftsched.traces.drift")

    @model_validator(mode="after")
    def _categories_agree(self):
        for name in ("learning_weights", "stress_weights", "output_lengths", "prompt_lengths"):
            missing = set(self.caps) ^ set(getattr(self, name))
            if missing:
                raise ValueError(
                    f"{name} must name exactly the categories in caps ({', '.join(self.caps)}); "
                    f"mismatch: {', '.join(sorted(missing))}"
                )
        for name in ("learning_gap_s", "stress_gap_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must satisfy 0 <= low <= high, got ({lo}, {hi})")
        return self

    def learning_count(self) -> int:
        if self.learning_requests is not None:
            return min(self.learning_requests, self.requests)
        if self.requests >= 3000:
            return 1000
        return min(self.requests, max(100, int(0.33 * self.requests)))


TENANTS = (
    ("tenant-premium", "premium"),
    ("tenant-standard", "standard"),
    ("tenant-batch", "batch"),
)


def _draw_categories(rng, weights: dict[str, float], n: int) -> np.ndarray:
    names = np.asarray(list(weights), dtype=object)
    p = np.asarray(list(weights.values()), dtype=np.float64)
    return names[rng.choice(len(names), n, p=p / p.sum())]


def generate_paper(config: PaperConfig) -> Trace:
    """Generate the study's workload. Same config (incl. seed) -> identical trace."""
    n, n_learn = config.requests, config.learning_count()
    rng = streams(config.seed, "tenant", "category", "gap", "prompt", "output")
    drifts = [Drift.parse(d) for d in config.drifts]
    learning = np.arange(n) < n_learn

    tenant_idx = rng["tenant"].integers(0, len(TENANTS), n)
    tenants = np.asarray([t for t, _ in TENANTS], dtype=object)[tenant_idx]
    tiers = np.asarray([t for _, t in TENANTS], dtype=object)[tenant_idx]
    cats = np.where(
        learning,
        _draw_categories(rng["category"], config.learning_weights, n),
        _draw_categories(rng["category"], config.stress_weights, n),
    )
    (lo_l, hi_l), (lo_s, hi_s) = config.learning_gap_s, config.stress_gap_s
    u = rng["gap"].random(n)
    gaps = np.where(learning, lo_l + u * (hi_l - lo_l), lo_s + u * (hi_s - lo_s))
    gaps[0] = 0.0
    arrival_s = np.cumsum(gaps)

    caps = pd.Series(cats).map(config.caps).to_numpy(dtype=np.int64)
    prompt = np.empty(n, dtype=np.int64)
    raw_out = np.empty(n, dtype=np.float64)
    for cat in config.caps:
        sel = cats == cat
        k = int(sel.sum())
        p, o = config.prompt_lengths[cat], config.output_lengths[cat]
        prompt[sel] = finalise(
            LogNormal(p.median, p.sigma).sample(rng["prompt"], k), cap=config.prompt_cap
        )
        raw_out[sel] = LogNormal(o.median, o.sigma).sample(rng["output"], k)
    output = finalise(raw_out, combined_multiplier(drifts, arrival_s, tenants, cats), caps)

    frame = request_frame("req", arrival_s, tenants, tiers, cats, prompt, output, caps)
    return Trace.from_frame(
        frame,
        "driftsched-paper",
        source="driftsched-paper",
        config=config.model_dump(mode="json"),
        learning_requests=n_learn,
    )
