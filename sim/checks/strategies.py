"""Hypothesis strategies for simulator tests and for the conformance kit: tiny engines,
fixed-cost profiles, hand-made and random traces (:func:`scenarios`).

Needs Hypothesis (the ``test`` extra). The project's own tests and a plugin's tests draw from
the same strategies (``driftsched.testing`` re-exports them).
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd
from driftsched.sim.costmodel import FEATURES
from driftsched.sim.profile import PROFILE_SCHEMA_VERSION, EngineSettings, Profile, Provenance
from driftsched.traces.trace import Trace
from hypothesis import strategies as st


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
        coefficients={
            **{f: 0.0 for f, feat in FEATURES.items() if not feat.optional},
            "const": step_s,
            "prefill_tokens": per_token_s,
        },
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
    """``rows`` of (arrival_s, tier, category, prompt_tokens, output_tokens[, tenant]); the
    tenant defaults to ``t-<tier>``."""
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(len(rows))],
            "arrival_s": [r[0] for r in rows],
            "tenant": [r[5] if len(r) > 5 else f"t-{r[1]}" for r in rows],
            "tier": [r[1] for r in rows],
            "category": [r[2] for r in rows],
            "prompt_tokens": [r[3] for r in rows],
            "output_tokens": [r[4] for r in rows],
            "max_tokens": [max(r[4], 1) for r in rows],
            **extra,
        }
    )
    return Trace.from_frame(frame, "test")


class Scenario(NamedTuple):
    """A random simulation case: trace rows, engine settings, config overrides, step costs."""

    rows: list[tuple]
    engine: dict
    config: dict
    step_s: float
    per_token_s: float
    prefixes: tuple[str, ...] | None = None  # the trace's ``prefix`` column, if any
    e2e_slos: tuple[float, ...] | None = None  # the trace's ``e2e_slo_s`` column, if any

    def trace(self, **columns) -> Trace:
        """The case's trace; ``columns`` (name -> one value per row) replace or add columns."""
        extra = {"prefix": list(self.prefixes)} if self.prefixes is not None else {}
        if self.e2e_slos is not None:
            extra["e2e_slo_s"] = list(self.e2e_slos)
        return trace(self.rows, **extra, **columns)

    def run(self, columns: dict | None = None, **overrides):
        """Simulate this case (config overrides on top of the drawn ones; ``policy`` may be
        a Python object, as :func:`~driftsched.sim.simulation.simulate` takes it; ``columns``
        as :meth:`trace` takes them)."""
        from driftsched.sim.simulation import simulate

        p = profile(self.step_s, per_token_s=self.per_token_s, **self.engine)
        tr = self.trace(**(columns or {}))
        return simulate(tr, profile=p, **{**self.config, **overrides})


@st.composite
def scenarios(
    draw,
    *,
    max_requests: int = 40,
    max_model_len: int = 128,
    max_prompt: int = 100,
    gaps_s=(0.0, 0.001, 0.05, 0.3, 2.0),
    block_sizes=(4, 16),
    max_num_seqs: int = 16,
    batched_tokens=(32, 64, 256),
    max_blocks: int = 80,
    correctors=("none", "ewma", "oracle"),
    policies=None,
    tenants: int = 1,
    steps_s=(0.001, 0.02, 0.2),
    tokens_per_step=(50,),
    clusters: bool = False,
    prefix_caching: bool = False,
) -> Scenario:
    """Random traces (bursts and gaps, all tiers and categories, prompt + output within
    ``max_model_len``), tiny engines (KV pools small enough to preempt), both dispatch modes;
    ``policies``: the specs to draw from (default: every built-in); ``tenants`` > 1: each
    request from one of that many tenants (``u0``, ``u1``, ...) and, at random, with an E2E
    SLO; with ``clusters``, overheads and 1-3 replicas behind every router too."""
    from driftsched.sim.policies import POLICIES

    t, rows = 0.0, []
    for _ in range(draw(st.integers(1, max_requests))):
        t += draw(st.sampled_from(gaps_s))
        prompt = draw(st.integers(1, max_prompt))
        rows.append(
            (
                t,
                draw(st.sampled_from(["premium", "standard", "batch"])),
                draw(st.sampled_from(["short_qa", "summary", "technical", "report"])),
                prompt,
                draw(st.integers(1, max_model_len - prompt)),
                *((f"u{draw(st.integers(0, tenants - 1))}",) if tenants > 1 else ()),
            )
        )
    slos = None
    if tenants > 1 and draw(st.booleans()):
        slos = tuple(draw(st.sampled_from([0.5, 2.0, 10.0, 60.0])) for _ in rows)
    engine = {
        "block_size": draw(st.sampled_from(block_sizes)),
        "max_model_len": max_model_len,
        "max_num_seqs": draw(st.integers(1, max_num_seqs)),
        "max_num_batched_tokens": draw(st.sampled_from(batched_tokens)),
    }
    engine["num_gpu_blocks"] = draw(
        st.integers(max_model_len // engine["block_size"] + 1, max_blocks)
    )
    config = {
        "policy": draw(st.sampled_from(list(policies or POLICIES))),
        "corrector": draw(st.sampled_from(correctors)),
        "mode": draw(st.sampled_from(["continuous", "microbatch"])),
        "max_concurrency": draw(st.integers(1, max_num_seqs + 4)),
        "batch_size": draw(st.integers(1, 8)),
    }
    if clusters:
        config["overheads"] = draw(st.booleans())
        config["replicas"] = draw(st.sampled_from([1, 1, 2, 3]))
        config["router"] = draw(st.sampled_from(["round_robin", "least_outstanding", "least_kv"]))
    prefixes = None
    if prefix_caching:  # shared chunks from a tiny alphabet, so prompts share a lot
        engine["enable_prefix_caching"] = True
        chunk = draw(st.sampled_from([2, 4, 16]))
        prefixes = tuple(
            f"{chunk}:" + " ".join(map(str, draw(st.lists(st.integers(0, 1), max_size=12))))
            for _ in rows
        )
        if clusters:
            config["router"] = draw(
                st.sampled_from(["prefix_affinity", "least_outstanding", "round_robin"])
            )
    step_s = draw(st.sampled_from(steps_s))
    per_token_s = step_s / draw(st.sampled_from(tokens_per_step))
    return Scenario(rows, engine, config, step_s, per_token_s, prefixes, slos)
