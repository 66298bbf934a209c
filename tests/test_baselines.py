"""The field's baselines, each against its own stated property (the kit's invariants run over
all of them in tests/test_policies.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from driftsched.sim.policies import make_policy
from driftsched.sim.policies.bands import SHED_REASON
from driftsched.sim.request import Outcome, RequestView
from driftsched.sim.simulation import simulate
from driftsched.traces.generators import generate
from hypothesis import given, settings
from hypothesis import strategies as st

NAN = float("nan")
RANKS = {"premium": 1, "standard": 2, "batch": 3}


def view(seq, tenant="a", prompt=10, estimate=50, arrival_s=0.0, tier="standard", e2e_slo=NAN):
    return RequestView(seq, f"r{seq}", arrival_s, tenant, tier, RANKS[tier], "summary", prompt,
                       512, NAN, e2e_slo, estimate, "medium", seq)  # fmt: skip


sizes = st.lists(st.tuples(st.integers(1, 400), st.integers(1, 400)), min_size=20, max_size=80)


# -- vtc ------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(a=sizes, b=sizes, weight=st.sampled_from([1.0, 2.0, 0.5]))
def test_vtc_keeps_two_backlogged_tenants_within_one_charge(a, b, weight):
    """The bound: while both tenants are backlogged, their (weighted) counters differ by at most
    the largest single charge. Induction: the policy serves the tenant with the smaller counter;
    after its charge x it exceeds the other by at most x; both start at 0."""
    policy = make_policy("vtc", {"tenant_weights": {"b": weight}})
    seq = 0
    for tenant, reqs in (("a", a), ("b", b)):
        for prompt, est in reqs:
            policy.push(view(seq, tenant, prompt, est))
            seq += 1
    views = [view(k, "a", p, e) for k, (p, e) in enumerate(a)]
    views += [view(k, "b", p, e) for k, (p, e) in enumerate(b)]
    max_charge = max(policy.charge(v) for v in views)
    while {"a", "b"} <= set(policy.queues.backlogged):
        policy.pop(0.0)
        gap = abs(policy.counters["a"] - policy.counters["b"])
        assert gap <= max_charge + 1e-9


def test_vtc_lifts_a_tenant_back_from_idle_and_corrects_charges_at_finish():
    policy = make_policy("vtc")
    for k in range(6):
        policy.push(view(k, "a", 100, 100))  # charge 100 + 2 x 100 = 300 each
    for _ in range(4):
        policy.pop(0.0)
    assert policy.counters["a"] == 1200
    policy.push(view(10, "b", 100, 100))  # b was idle: lifted to a's 1200, no banked credit
    assert policy.counters["b"] == 1200
    served = policy.pop(0.0)  # tie at 1200: the earlier head request (a's seq 4)
    assert served.tenant == "a"
    policy.on_finish(served, Outcome(150, 0.0, 0.1, 1.0, 1.0))  # 50 tokens longer than estimated
    assert policy.counters["a"] == 1200 + 300 + 2 * 50


# -- drr ------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), weight=st.sampled_from([1.0, 2.0, 3.0]))
def test_drr_long_run_token_shares_match_the_quanta_within_two_points(seed, weight):
    rng = np.random.default_rng(seed)
    policy = make_policy("drr", {"quantum_tokens": 512, "tenant_weights": {"b": weight}})
    seq = 0
    for tenant in ("a", "b"):
        for _ in range(3000):
            policy.push(view(seq, tenant, int(rng.integers(1, 200)), int(rng.integers(1, 300))))
            seq += 1
    served = {"a": 0, "b": 0}
    while {"a", "b"} <= set(policy.queues.backlogged):
        v = policy.pop(0.0)
        served[v.tenant] += v.budget_tokens
    share_b = served["b"] / (served["a"] + served["b"])
    assert abs(share_b - weight / (1 + weight)) <= 0.02


# -- edf ------------------------------------------------------------------------------------
def test_edf_uses_the_request_slo_else_the_tier_default():
    policy = make_policy("edf", {"default_slo_s": {"premium": 5.0, "batch": 100.0}})
    policy.push(view(0, arrival_s=0.0, tier="batch"))  # deadline 100
    policy.push(view(1, arrival_s=10.0, tier="premium"))  # 15
    policy.push(view(2, arrival_s=1.0, tier="batch", e2e_slo=2.0))  # its own: 3
    assert [policy.pop(20.0).seq for _ in range(3)] == [2, 1, 0]


def test_edf_meets_more_deadlines_than_fifo_when_slos_differ():
    tr = generate("driftsched-paper", requests=800, seed=2)
    frame = tr.frame.copy()
    frame["e2e_slo_s"] = frame["tier"].map({"premium": 20.0, "standard": 60.0, "batch": 240.0})
    tr = type(tr).from_frame(frame, "slo", source="test")
    edf = simulate(tr, policy="edf").summary().iloc[0]["e2e_slo_attainment"]
    fifo = simulate(tr, policy="fifo").summary().iloc[0]["e2e_slo_attainment"]
    assert edf > fifo


# -- sjf_aging and hrrn ---------------------------------------------------------------------
def test_sjf_aging_serves_a_long_job_once_it_has_waited_its_bound():
    rate = 10.0
    policy = make_policy("sjf_aging", {"aging_tokens_per_s": rate})
    policy.push(view(0, prompt=10, estimate=990, arrival_s=0.0))  # budget 1000
    # short jobs (budget 100) arriving before t = (1000 - 100) / rate = 90 s overtake it ...
    policy.push(view(1, prompt=10, estimate=90, arrival_s=89.0))
    # ... and those arriving after do not
    policy.push(view(2, prompt=10, estimate=90, arrival_s=91.0))
    assert [policy.pop(100.0).seq for _ in range(3)] == [1, 0, 2]


def test_hrrn_prefers_short_jobs_but_lets_long_waits_through():
    policy = make_policy("hrrn")
    policy.push(view(0, prompt=0, estimate=1000, arrival_s=0.0))
    policy.push(view(1, prompt=0, estimate=10, arrival_s=9.0))
    assert policy.pop(10.0).seq == 1  # 1/10 > 10/1000
    policy.push(view(2, prompt=0, estimate=10, arrival_s=109.9))
    assert policy.pop(110.0).seq == 0  # 110/1000 > 0.1/10


# -- bands ----------------------------------------------------------------------------------
def fake_state(waiting: int, kv: float):
    replica = SimpleNamespace(waiting=waiting, kv_utilisation=kv)
    return SimpleNamespace(replicas=(replica,))


def test_bands_sheds_only_sheddable_bands_and_only_when_saturated():
    policy = make_policy("bands", {"sheddable_bands": [3], "queue_threshold": 2})
    policy.attach(fake_state(waiting=0, kv=0.1))
    assert policy.admit(view(0, tier="batch"), 0.0) is None  # not saturated: admitted
    policy.attach(fake_state(waiting=2, kv=0.1))
    assert policy.admit(view(1, tier="batch"), 0.0) == SHED_REASON
    assert policy.admit(view(2, tier="premium"), 0.0) is None  # never a non-sheddable band
    policy.push(view(2, tier="premium"))
    assert policy.pop(0.0) is None  # saturated: held
    policy.attach(fake_state(waiting=0, kv=0.95))  # KV over 0.9 also saturates
    assert policy.pop(0.0) is None
    policy.attach(fake_state(waiting=1, kv=math.nan))  # unknown KV never saturates
    assert policy.pop(0.0).seq == 2


def test_bands_serve_a_higher_band_first_and_tenants_in_turn_within_it():
    policy = make_policy("bands")
    policy.push(view(0, "a", tier="batch"))
    for k, tenant in enumerate(["a", "a", "b", "b"], start=1):
        policy.push(view(k, tenant, tier="standard"))
    order = [policy.pop(0.0) for _ in range(5)]
    assert [v.tier for v in order] == ["standard"] * 4 + ["batch"]
    assert [v.tenant for v in order[:4]] == ["a", "b", "a", "b"]


def test_bands_shed_in_a_simulation_and_every_shed_request_is_a_record():
    tr = generate("driftsched-paper", requests=1500, seed=0)
    params = {"sheddable_bands": [3], "queue_threshold": 2}
    res = simulate(tr, policy="bands", policy_params=params, max_concurrency=1024)
    rec = res.records
    shed = rec[rec["rejected"]]
    assert len(shed) > 0 and (shed["tier"] == "batch").all()
    assert (shed["reject_reason"] == SHED_REASON).all() and shed["dispatch_s"].isna().all()
    assert rec["finished"].sum() + len(shed) == len(tr)
    acc = res.accounting()
    assert acc["rejected"] == len(shed) and acc["rejected_reasons"] == {SHED_REASON: len(shed)}
    tiers = res.summary("tier").set_index("tier")
    batch = (rec["tier"] == "batch").sum()
    assert tiers.loc["batch", "rejected_rate"] == pytest.approx(len(shed) / batch)
    assert tiers.loc["premium", "rejected"] == 0


# -- qos_adaptive ---------------------------------------------------------------------------
def test_qos_adaptive_compensates_a_drifting_tenant_within_bounds():
    policy = make_policy("qos_adaptive", {"max_factor": 2.0})
    for k in range(40):
        v = view(k, "drifty" if k % 2 else "steady", estimate=100)
        policy.push(v)
    for _ in range(40):
        v = policy.pop(0.0)
        longer = 300 if v.tenant == "drifty" else 100  # drifty runs 3x its estimates
        policy.on_finish(v, Outcome(longer, 0.0, 0.1, 1.0, 1.0))
    # both met their SLOs (attainment above the 0.9 target: factor 0.8); drift lifts one
    assert policy.factor["drifty"] > 1.0 > policy.factor["steady"] >= 0.5
    assert policy.factor["drifty"] <= 2.0
    assert policy.weight("drifty") > policy.weight("steady")
