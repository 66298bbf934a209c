"""The richer policy contract, under both drivers: ``attach`` (the read-only GatewayState),
``admit`` (rejection with a reason), ``on_dispatch``, ``on_finish`` (the Outcome), exact logs on
fixed step costs; and the same objects in the live gateway."""

from __future__ import annotations

import numpy as np
import pytest
from driftsched.sim.config import SimConfig
from driftsched.sim.policies.fifo import FifoPolicy
from driftsched.sim.simulation import simulate
from driftsched.validate.live import LiveGateway

from tests.simkit import profile, trace
from tests.test_validate import PROFILE, FakeClock, FakeLiveEngine


class Recorder(FifoPolicy):
    """FIFO that logs every hook, reads the state at each pop, and rejects ``batch``-tier
    requests whose prompt is over 50 tokens."""

    def __init__(self, params=None):
        super().__init__(params)
        self.log: list[tuple] = []
        self.state = None

    def attach(self, state):
        self.log.append(("attach", len(state.replicas)))
        self.state = state

    def admit(self, view, now_s):
        if view.tier == "batch" and view.prompt_tokens > 50:
            return "prompt too long for batch"
        return None

    def pop(self, now_s):
        if self._queue:
            s = self.state
            self.log.append(("pop", now_s, dict(s.queued_by_tenant), dict(s.in_flight_by_tenant),
                             s.replicas[0].running, s.replicas[0].waiting))  # fmt: skip
        return super().pop(now_s)

    def on_dispatch(self, view, now_s):
        self.log.append(("dispatch", view.seq, now_s))

    def on_finish(self, view, outcome):
        self.log.append(("finish", view.seq, outcome))


ROWS = [  # (arrival_s, tier, category, prompt, output): one step per second, one at a time
    (0.0, "standard", "short_qa", 10, 2),
    (0.5, "batch", "short_qa", 80, 3),  # rejected at admission
    (0.5, "premium", "short_qa", 10, 1),
]


def test_hooks_are_called_in_order_with_the_state_and_the_outcome():
    policy = Recorder()
    res = simulate(trace(ROWS), profile=profile(1.0), policy=policy, max_concurrency=1)
    rec = res.records
    assert rec["rejected"].tolist() == [False, True, False]
    assert rec["reject_reason"].tolist()[1] == "prompt too long for batch"
    assert res.accounting()["rejected"] == 1 and rec["finished"].sum() == 2
    attach, *rest = policy.log
    assert attach == ("attach", 1)
    # request 0 at t=0: prefill+first token at 1, second token at 2 (finish); then request 2
    assert rest == [
        ("pop", 0.0, {"t-standard": 1}, {}, 0, 0),
        ("dispatch", 0, 0.0),
        ("finish", 0, (2, 0.0, 1.0, 2.0, 2.0)),
        ("pop", 2.0, {"t-standard": 0, "t-premium": 1}, {"t-standard": 0}, 0, 0),
        ("dispatch", 2, 2.0),
        ("finish", 2, (1, 1.5, 2.5, 2.5, 3.0)),
    ]
    done = rec[rec["finished"]]
    assert done["queue_wait_s"].tolist() == [0.0, 1.5]
    assert done["e2e_s"].tolist() == [2.0, 2.5]


def test_a_policy_without_hooks_runs_unchanged_and_the_gateway_keeps_no_tenant_counts():
    res = simulate(trace(ROWS), profile=profile(1.0), policy="fifo", max_concurrency=1)
    assert not res.records["rejected"].any()
    assert res.summary().iloc[0]["rejected_rate"] == 0.0


def test_rejections_count_against_slo_attainment_and_per_tenant_summaries():
    rows = [r + (f"u{k % 2}",) for k, r in enumerate(ROWS)]
    tr = trace(rows, e2e_slo_s=[10.0, 10.0, 10.0])
    res = simulate(tr, profile=profile(1.0), policy=Recorder(), max_concurrency=1)
    overall = res.summary().iloc[0]
    assert overall["e2e_slo_attainment"] == pytest.approx(2 / 3)
    assert overall["rejected_rate"] == pytest.approx(1 / 3)
    by_tenant = res.summary("tenant").set_index("tenant")
    assert by_tenant["rejected"].to_dict() == {"u0": 0, "u1": 1}
    assert "1 rejected by the policy (prompt too long for batch: 1)" in res.accounting_line()


class StatefulFake(FakeLiveEngine):
    """The validation tests' fake engine, exposing running/waiting/pool as the instrumented
    vLLM engine does, so a policy's GatewayState reads them live."""

    @property
    def running(self):
        return self.eng.running

    @property
    def waiting(self):
        return self.eng.waiting

    @property
    def pool(self):
        return self.eng.pool


def test_the_live_gateway_drives_the_same_hooks_and_rejections_as_the_simulator():
    from driftsched.traces.generators import generate

    tr = generate("driftsched-paper", requests=200, seed=4)
    frame = tr.frame.copy()
    frame["arrival_s"] = frame["arrival_s"] / 40  # the tiny CPU model's load
    tr = type(tr).from_frame(frame, "fast", source="test")
    config = SimConfig(
        profile=PROFILE, policy="bands", max_concurrency=64, overheads=False,
        policy_params={"sheddable_bands": [3], "queue_threshold": 2, "fairness": "vtc"},
    )  # fmt: skip
    clock = FakeClock()
    live = LiveGateway(StatefulFake(clock), tr, config, clock=clock, sleep=clock.sleep).run()
    sim = simulate(tr, config).records
    rec = live.records
    assert live.status == "complete"
    assert rec["rejected"].sum() > 0
    assert (rec["finished"] | rec["rejected"]).all()
    # the fake engine takes exactly the model's step times: the same requests are shed
    assert np.array_equal(rec["rejected"].to_numpy(), sim["rejected"].to_numpy())
