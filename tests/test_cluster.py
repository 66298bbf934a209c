"""Several engine replicas behind one gateway queue: routers, dispatch, throughput."""

from __future__ import annotations

import pytest
from driftsched.sim.router import ROUTERS, RoundRobin, least_kv, least_outstanding
from driftsched.sim.simulation import simulate
from driftsched.traces.generators import generate

from driftsched.ground.errors import InputError
from tests.simkit import profile, trace


class R:
    def __init__(self, rid, in_engine, kv):
        self.replica_id, self.in_engine, self.kv_utilisation = rid, in_engine, kv


def test_round_robin_takes_turns_and_skips_full_replicas():
    rr = RoundRobin()
    a, b, c = R(0, 0, 0), R(1, 0, 0), R(2, 0, 0)
    assert [rr([a, b, c], 3).replica_id for _ in range(4)] == [0, 1, 2, 0]
    assert rr([a, c], 3).replica_id == 2  # 1 is full: skipped
    assert rr([a, b, c], 3).replica_id == 0


def test_least_outstanding_and_least_kv():
    a, b, c = R(0, 5, 0.9), R(1, 2, 0.5), R(2, 2, 0.1)
    assert least_outstanding([a, b, c], 3).replica_id == 1  # tie 1/2 -> lower id
    assert least_kv([a, b, c], 3).replica_id == 2


def test_requests_are_spread_over_replicas_round_robin():
    rows = [(0.0, "premium", "short_qa", 50, 40)] * 8
    p = profile(0.01, per_token_s=1e-4)
    res = simulate(trace(rows), profile=p, replicas=2, max_concurrency=2, policy="fifo")
    rec = res.records.sort_values("dispatch_order")
    assert list(rec["replica"])[:4] == [0, 1, 0, 1]
    assert rec["replica"].value_counts().to_dict() == {0: 4, 1: 4}


@pytest.mark.parametrize("router", list(ROUTERS))
def test_two_replicas_drain_a_burst_in_about_half_the_time(router):
    tr = generate("driftsched-paper", requests=600, seed=1)
    frame = tr.frame.copy()
    frame["arrival_s"] = 0.0
    burst = type(tr).from_frame(frame, "burst", source="test")
    one = simulate(burst, max_concurrency=16)
    two = simulate(burst, max_concurrency=16, replicas=2, router=router)
    span1, span2 = one.records["done_s"].max(), two.records["done_s"].max()
    assert 0.4 < span2 / span1 < 0.65
    assert set(two.records["replica"]) == {0, 1}
    assert two.meta["engine_steps"] > one.meta["engine_steps"] * 0.9  # same work, two engines


def test_microbatch_workers_share_the_queue():
    tr = generate("driftsched-paper", requests=300, seed=2)
    res = simulate(tr, mode="microbatch", replicas=3, batch_size=8)
    rec = res.records
    assert rec["finished"].all() and set(rec["replica"]) == {0, 1, 2}
    assert (rec.groupby("batch_id")["replica"].nunique() == 1).all()  # a batch stays on one
    assert (rec.groupby("batch_id").size() <= 8).all()


def test_unknown_router_is_an_input_error():
    with pytest.raises(InputError, match="least_outstanding"):
        simulate(generate("driftsched-paper", requests=20, seed=0), replicas=2, router="random")
