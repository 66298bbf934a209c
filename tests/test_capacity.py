"""Capacity search: the bracket it returns is real, and more replicas never lower capacity."""

from __future__ import annotations

import pytest
from driftsched.sim.studies.capacity import CapacitySearch
from driftsched.sim.studies.slo import parse_slos
from driftsched.sim.studies.workload import Workload

from driftsched.ground.errors import InputError
from tests.conftest import run_cli

WORKLOAD = Workload(
    generator="poisson", requests=300, params={"prompt_cap": 1024, "output_cap": 1000}
)


def test_parse_slos():
    a, b, c = parse_slos("p99_e2e<=10s, p50_ttft<=500ms ,premium:p99.9_queue_wait<=2")
    assert (a.metric, a.percentile, a.max_s, a.tier) == ("e2e", 99, 10.0, None)
    assert (b.metric, b.max_s) == ("ttft", 0.5)
    assert (c.tier, c.percentile, c.metric, c.max_s) == ("premium", 99.9, "queue_wait", 2.0)
    for bad in ("p99_e2e<10s", "e2e<=1s", "p99_latency<=1s", ""):
        with pytest.raises(InputError):
            parse_slos(bad)


def test_the_capacity_meets_the_slo_and_one_step_higher_does_not():
    slos = parse_slos("p99_e2e<=25s")
    search = CapacitySearch(WORKLOAD, {"policy": "fifo"}, slos, seeds=[0])
    res = search.max_rate(resolution=0.02)
    assert res.rate_per_s is not None and res.failing_rate_per_s is not None
    assert res.failing_rate_per_s <= res.rate_per_s * 1.02 + 1e-9
    # re-evaluated from scratch (a new search, nothing cached): same verdicts
    fresh = CapacitySearch(WORKLOAD, {"policy": "fifo"}, slos, seeds=[0])
    ok, bad = fresh.evaluate(res.rate_per_s), fresh.evaluate(res.failing_rate_per_s)
    assert ok.meets and ok.upper["p99_e2e<=25s"] <= 25
    assert not bad.meets and bad.upper["p99_e2e<=25s"] > 25


def test_more_replicas_never_lower_the_capacity():
    slos = parse_slos("p99_e2e<=25s,p99_ttft<=3s")
    search = CapacitySearch(WORKLOAD, {"policy": "sjf"}, slos, seeds=[0])
    caps = [search.max_rate(replicas=k, resolution=0.05).rate_per_s for k in (1, 2, 3)]
    assert caps[0] < caps[1] <= caps[2] * 1.05  # within the search's resolution
    target = caps[0] * 1.8
    need = search.min_replicas(target)
    assert need == 2
    assert not search.evaluate(target, 1).meets and search.evaluate(target, 2).meets


def test_confidence_bound_is_stricter_with_spread_seeds():
    slos = parse_slos("p99_e2e<=25s")
    one = CapacitySearch(WORKLOAD, {}, slos, seeds=[0]).evaluate(4.0)
    three = CapacitySearch(WORKLOAD, {}, slos, seeds=[0, 1, 2]).evaluate(4.0)
    values = three.values["p99_e2e<=25s"]
    assert three.upper["p99_e2e<=25s"] > sum(values) / 3
    assert one.values["p99_e2e<=25s"] == values[:1]


def test_cli_capacity(tmp_path):
    out = tmp_path / "cap"
    r = run_cli(
        "capacity", "--slo", "p99_e2e<=25s", "--policies", "fifo", "--seeds", "0",
        "--generator", "poisson", "--requests", "200", "--param", "prompt_cap=1024",
        "--param", "output_cap=1000", "--target-rate", "6", "-o", out,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for name in ("capacity.csv", "capacity_points.csv", "capacity.json", "capacity_knee.png"):
        assert (out / name).stat().st_size > 0
    r = run_cli("capacity", "--slo", "p99<=3s", "-o", tmp_path / "bad")
    assert r.returncode == 2 and "SLO" in r.stderr and len(r.stderr.splitlines()) == 1
