"""Fast-forward over decode-only runs is exact: same records as the step-by-step reference.

Speed is measured by ``bench/scale.py``, never asserted here; these tests check that jumping
changes nothing but the number of events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from driftsched.sim.costmodel import FEATURES, BatchShape, CostModel
from driftsched.sim.fastengine import FastEngine
from driftsched.sim.profile import EngineSettings
from driftsched.sim.simulation import simulate
from driftsched.traces.generators import generate
from hypothesis import HealthCheck, example, given, settings

from tests.simkit import Scenario, profile, scenarios

TIMES = ["dispatch_s", "scheduled_s", "first_token_s", "finish_s", "done_s"]
DERIVED = ["queue_wait_s", "ttft_s", "e2e_s", "tpot_s"]


def assert_same_records(fast: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Identical except float times, which agree to 1e-9 relative."""
    others = [c for c in ref.columns if c not in TIMES + DERIVED]
    pd.testing.assert_frame_equal(fast[others], ref[others], check_exact=True)
    for col in TIMES + DERIVED:
        np.testing.assert_allclose(fast[col], ref[col], rtol=1e-9, atol=1e-12, err_msg=col)


#: bigger cases than the invariant test's: longer contexts, more requests, clusters
FF_SCENARIOS = scenarios(
    max_requests=60,
    max_model_len=256,
    max_prompt=200,
    gaps_s=(0.0, 0.0007, 0.013, 0.21, 1.7),
    block_sizes=(4, 16, 32),
    max_num_seqs=24,
    batched_tokens=(32, 64, 512),
    max_blocks=120,
    correctors=("none", "ewma"),
    steps_s=(0.0011, 0.017, 0.19),
    tokens_per_step=(37, 300),
    clusters=True,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FF_SCENARIOS)
def test_fast_forward_gives_the_reference_records(case):
    fast = case.run()
    ref = case.run(engine_impl="reference")
    assert_same_records(fast.records, ref.records)
    assert fast.meta["engine_steps"] == ref.meta["engine_steps"]
    assert fast.meta["engine_events"] <= ref.meta["engine_events"]
    assert ref.meta["engine_events"] == ref.meta["engine_steps"]  # the reference never jumps


#: found by Hypothesis: two requests finishing in one step, admitted out of index order (the
#: priority policy); with prefix caching their release order decides which cached block is
#: evicted first, so the fast engine must finish them in running order as the reference does
RELEASE_ORDER_CASE = Scenario(
    rows=[
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "standard", "short_qa", 19, 13),
        (0.0, "standard", "short_qa", 38, 28),
        (0.0, "premium", "report", 147, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "standard", "short_qa", 199, 27),
        (0.0, "standard", "short_qa", 89, 17),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 1, 1),
        (0.0, "standard", "short_qa", 1, 1),
        (0.0, "standard", "short_qa", 1, 1),
        (0.0, "standard", "short_qa", 1, 1),
        (0.0, "standard", "short_qa", 1, 1),
        (0.0, "premium", "short_qa", 31, 87),
        (0.0, "batch", "report", 2, 87),
        (0.0, "standard", "short_qa", 22, 1),
        (0.0, "premium", "report", 69, 79),
        (0.0007, "premium", "report", 186, 30),
    ],
    engine={
        "block_size": 4,
        "max_model_len": 256,
        "max_num_seqs": 16,
        "max_num_batched_tokens": 512,
        "num_gpu_blocks": 83,
        "enable_prefix_caching": True,
    },
    config={
        "policy": "priority",
        "corrector": "none",
        "mode": "microbatch",
        "max_concurrency": 1,
        "batch_size": 6,
        "overheads": False,
        "replicas": 1,
        "router": "prefix_affinity",
    },
    step_s=0.0011,
    per_token_s=2.9729729729729733e-05,
    prefixes=(
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:0 1",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:",
        "2:0 1",
        "2:0 1",
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(RELEASE_ORDER_CASE)
@given(
    scenarios(
        max_requests=50,
        max_model_len=256,
        max_prompt=200,
        gaps_s=(0.0, 0.0007, 0.013, 0.21),
        block_sizes=(4, 16),
        max_num_seqs=16,
        batched_tokens=(32, 64, 512),
        max_blocks=100,
        correctors=("none", "ewma"),
        steps_s=(0.0011, 0.017),
        tokens_per_step=(37, 300),
        clusters=True,
        prefix_caching=True,
    )
)
def test_fast_forward_gives_the_reference_records_with_prefix_caching(case):
    """Prefix caching (shared chunks, hits, evictions, preemptions) and the prefix-affinity
    router: the fast engine with fast-forward equals the literal reference engine."""
    fast = case.run()
    ref = case.run(engine_impl="reference")
    assert_same_records(fast.records, ref.records)
    assert fast.meta["engine_steps"] == ref.meta["engine_steps"]
    assert fast.meta["prefix_cache"] == ref.meta["prefix_cache"]


def test_fast_forward_on_the_paper_workload_in_both_modes():
    tr = generate("driftsched-paper", requests=400, seed=5)
    for mode in ("continuous", "microbatch"):
        fast = simulate(tr, policy="sjf", corrector="ewma", mode=mode)
        step = simulate(tr, policy="sjf", corrector="ewma", mode=mode, fast_forward=False)
        assert_same_records(fast.records, step.records)
        # the same engine steps, in events that scale with requests, not tokens
        assert fast.meta["engine_steps"] == step.meta["engine_steps"]
        assert fast.meta["engine_events"] < step.meta["engine_events"]
        assert fast.meta["engine_events"] <= 3 * len(tr)
        generated = int(step.records["generated_tokens"].sum())
        assert step.meta["engine_events"] > generated / 64  # step by step pays per token


def test_run_time_is_the_sum_of_the_steps():
    # every feature, distinct coefficients (the context term makes later steps longer)
    coefficients = dict(zip(FEATURES, (0.004, 1e-4, 1e-8, 2e-4, 3e-4, 7e-7, 5e-5), strict=True))
    cm = CostModel(profile(0.013).model_copy(update={"coefficients": coefficients}))
    assert cm.coefficients == coefficients
    shape = BatchShape(decode_requests=23, decode_context_tokens=23 * 300)
    steps = [
        BatchShape(decode_requests=23, decode_context_tokens=23 * (300 + k)) for k in range(500)
    ]
    first, d = cm.step_time(shape) + 0.001, shape.decode_requests
    total = 0.0
    for k, s in enumerate(steps, start=1):
        total += cm.step_time(s) + 0.001
        assert cm.run_seconds(first, d, k) == pytest.approx(total, rel=1e-12)
    for seconds in (1e-6, 0.0123, 0.5, total * 0.37, total - 1e-9):
        k = cm.steps_within(first, d, seconds)
        assert cm.run_seconds(first, d, k) >= seconds
        assert k == 1 or cm.run_seconds(first, d, k - 1) < seconds


def test_run_length_stops_before_a_kv_shortage_and_a_finish():
    """Two long decoders filling a small pool: the jump ends exactly where a step-by-step
    engine preempts, and at the step where a request finishes."""
    settings_ = EngineSettings(
        block_size=4,
        num_gpu_blocks=33,
        max_num_seqs=2,
        max_num_batched_tokens=32,
        max_model_len=128,
    )

    def run(jump: bool):
        e = FastEngine(settings_)
        e.add(0, 51, 43)
        e.add(1, 1, 39)
        log = []
        while e.has_work():
            plan = e.schedule()
            k = e.run_length(plan, 1 << 30) if jump else 1
            out = e.complete(plan, k)
            log.append(
                (
                    e.tick,
                    e.pool.free,
                    [r.index for r in plan.preempted],
                    [r.index for r in out.finished],
                )
            )
        return log

    steps, jumps = run(False), run(True)
    at_tick = {tick: entry for tick, *entry in steps}
    for tick, *entry in jumps:  # every jump lands on a state the step-by-step engine had
        assert at_tick[tick] == entry
    assert len(jumps) < len(steps) / 3
    assert [p for _, _, p, _ in jumps if p] == [p for _, _, p, _ in steps if p]
