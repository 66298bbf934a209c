"""The services in real time against the simulator (timing-gated; ``pytest -m http``; CI runs
them in its quiet part, ~3 min): ``engine serve`` — driftsched's engine model behind vLLM's
API, in its own process, streamed over HTTP — must agree with the offline simulator on the
same trace (E2E P50 within 2%: the issue's gate), also with every core kept busy by other
processes, and the whole HTTP path, ``gateway serve`` in front of it, is reported beside the
simulator with the gateway's policy. Each prints how far behind the engine's loop ran."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.http


def test_engine_serve_in_real_time_agrees_with_the_offline_simulator():
    from driftsched.validate.serve.selfcheck import engine_selfcheck, timeline_health

    r = engine_selfcheck(requests=200, load=0.6)
    print(json.dumps(r, indent=1))
    offset_ms = (r["live_ttft_p50_s"] - r["sim_ttft_p50_s"]) * 1e3
    print(f"TTFT P50 live - sim: {offset_ms:+.1f} ms (an HTTP round trip and the client's lag)")
    host = timeline_health(r)
    print(host)
    assert r["live_finished"] == r["sim_finished"] == 200 and r["tokens_exact"]
    assert r["engine_slips"] == 0, host
    assert r["e2e_p50_rel_error"] < 0.02 and r["e2e_p99_rel_error"] < 0.05, host
    # TTFT is not gated relatively here: its P50 is ~60 ms, so the HTTP round trip the
    # simulator does not model is 8-15% of it (8.7% quiet, 15.4% in CI); the engine's own
    # first-token times are checked exactly (tests/test_engine_serve.py, the timeline test)


def test_the_gateway_path_agrees_with_the_simulator(tmp_path):
    """sjf + ewma, 16 in flight, above the engine's capacity: the policy's queue matters."""
    from driftsched.validate.serve.selfcheck import gateway_selfcheck, timeline_health

    r = gateway_selfcheck(tmp_path, requests=200, load=0.8)
    print(json.dumps(r, indent=1))
    host = timeline_health(r)
    print(host)
    assert r["gateway_finished"] == r["client_ok"] == r["sim_finished"] == 200
    assert r["engine_slips"] == 0, host
    assert r["e2e_p50_rel_error"] < 0.10 and r["e2e_p99_rel_error"] < 0.10, host


def test_engine_serve_keeps_the_models_timeline_on_a_busy_host():
    """Every core kept busy by two spinners each: the engine's loop, late now and then, catches
    up instead of pushing its timeline back (a loop that restarted its timeline whenever it
    was 2 ms late lost 0.7 s over this run — 216 restarts — and missed the 2% gate, 2.9%)."""
    from driftsched.validate.serve.selfcheck import engine_selfcheck, timeline_health
    from driftsched.validate.serve.server import busy_cpus

    with busy_cpus(2 * (os.cpu_count() or 1)):
        r = engine_selfcheck(requests=200, load=0.6)
    print(json.dumps(r, indent=1))
    host = timeline_health(r)
    print(host)
    assert r["live_finished"] == r["sim_finished"] == 200 and r["tokens_exact"]
    assert r["engine_slips"] == 0, host
    assert r["e2e_p50_rel_error"] < 0.02 and r["e2e_p99_rel_error"] < 0.05, host
