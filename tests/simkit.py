"""Small factories for simulator tests: tiny engines, fixed-cost profiles, hand-made traces."""

from __future__ import annotations

import pandas as pd
from driftsched.sim.costmodel import PROFILE_SCHEMA_VERSION, EngineSettings, Profile, Provenance
from driftsched.traces.trace import Trace


def profile(step_s: float = 1.0, per_token_s: float = 0.0, **engine) -> Profile:
    """A measured-looking test profile: every step costs ``step_s`` (+ per prefill token)."""
    settings = {
        "block_size": 16,
        "num_gpu_blocks": 1000,
        "max_num_seqs": 256,
        "max_num_batched_tokens": 2048,
        "max_model_len": 2048,
        **engine,
    }
    return Profile(
        schema_version=PROFILE_SCHEMA_VERSION,
        name="test",
        coefficients={"const": step_s, "prefill_tokens": per_token_s},
        engine=EngineSettings(**settings),
        provenance=Provenance(
            kind="measured",
            hardware="test",
            model="test",
            date="2026-01-01",
            method="hand-made for tests",
        ),
    )


def trace(rows: list[tuple], **extra) -> Trace:
    """``rows`` of (arrival_s, tier, category, prompt_tokens, output_tokens)."""
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(len(rows))],
            "arrival_s": [r[0] for r in rows],
            "tenant": [f"t-{r[1]}" for r in rows],
            "tier": [r[1] for r in rows],
            "category": [r[2] for r in rows],
            "prompt_tokens": [r[3] for r in rows],
            "output_tokens": [r[4] for r in rows],
            "max_tokens": [max(r[4], 1) for r in rows],
            **extra,
        }
    )
    return Trace.from_frame(frame, "test")
