"""``driftsched engine serve``: the engine model behind vLLM's API, on loopback.

The server runs in a thread of the test process (``Background``); the timing of its steps is
checked where it can be exact — on the engine's own timeline against the offline engine — and
the HTTP surface by what a client gets: exact token counts, vLLM's metric names, JSON errors,
aborts on disconnect. The real-time self-check (E2E against the simulator) is timing-gated and
lives in bench/engine_serve.py and CI's HTTP stage."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from driftsched.sim.costmodel import CostModel
from driftsched.sim.engine import ReferenceEngine
from driftsched.sim.profile import load_profile
from driftsched.validate.serve.engine_app import engine_app
from driftsched.validate.serve.realtime import RealtimeEngine
from driftsched.validate.serve.server import Background, ServiceProcess

PROFILE = "cpu-tiny-llama"


@pytest.fixture(scope="module")
def server():
    with Background(engine_app(load_profile(PROFILE))) as srv:
        yield srv


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def metric(text: str, name: str) -> float:
    """The value of the first sample of ``name`` (with labels) in a Prometheus text page."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


SIZES = [(120, 30), (700, 5), (64, 60), (1500, 12), (300, 1)]


def offline_times(prof, sizes, late=()):
    """Each request's (scheduled, first-token, finish) times on the offline engine stepped by
    the cost model from 0, ``sizes`` there at 0 and each ``late`` ``(arrival_s, prompt,
    output)`` joining at the first step starting at or after its arrival."""
    eng, cost = ReferenceEngine(prof.engine), CostModel(prof)
    reqs = [eng.add(i, p, o) for i, (p, o) in enumerate(sizes)]
    waiting = sorted(late)
    t, times = 0.0, {}
    while eng.has_work() or waiting:
        while waiting and waiting[0][0] <= t:
            _, p, o = waiting.pop(0)
            reqs.append(eng.add(len(reqs), p, o))
        if not eng.has_work():
            t = waiting[0][0]
            continue
        plan = eng.schedule()
        for r in plan.admitted:
            times.setdefault(r.index, [t, None, None])
        t += cost.step_seconds(plan.shape, len(plan.admitted))
        out = eng.complete(plan)
        for r in out.first_token:
            times[r.index][1] = t
        for r in out.finished:
            times[r.index][2] = t
    return [tuple(times[r.index]) for r in reqs]


def live_times(prof, sizes, *, stall_s=0.0, at_step=4, late=None, catch_up_s=60.0):
    """The same requests through a RealtimeEngine whose clock jumps ``stall_s`` ahead after
    step ``at_step`` (a host stall: the loop wakes that far behind); ``late`` ``(prompt,
    output)`` is submitted right then. Returns the core and each request's times and arrival,
    measured from the first step's start."""

    class Stall:
        def step(self, core, plan, outcome, seconds):
            if core.steps == at_step:
                offset[0] += stall_s
                if late is not None:
                    streams.append(core.submit(*late))

    offset = [0.0]
    streams = []

    async def run():
        core = RealtimeEngine(
            prof,
            clock=lambda: time.perf_counter() + offset[0],
            catch_up_s=catch_up_s,
            observers=(Stall(),),
        )
        task = asyncio.create_task(core.run())
        streams[:0] = [core.submit(p, o) for p, o in sizes]
        while len(streams) < len(sizes) + (late is not None) or not all(
            s.finished for s in streams
        ):
            if task.done():  # the loop died: its exception
                task.result()
            await asyncio.sleep(0.01)
        task.cancel()
        return core

    core = asyncio.run(run())
    t0 = min(s.scheduled_s for s in streams)
    times = [(s.scheduled_s - t0, s.first_token_s - t0, s.finish_s - t0) for s in streams]
    return core, times, [s.arrival_s - t0 for s in streams]


def flat(rows):
    return [x for row in rows for x in row]


def test_the_timeline_is_the_offline_engines_step_for_step():
    """Requests submitted together: each stream's scheduled, first-token and finish times,
    measured from the first step's start, equal the offline engine's (the same state machine
    stepped by the cost model), to float rounding — the pacing never adds up its sleeps'
    overshoot. ``catch_up_s`` is large so that a loaded test machine cannot restart the
    timeline."""
    prof = load_profile(PROFILE)
    _, got, _ = live_times(prof, SIZES)
    assert flat(got) == pytest.approx(flat(offline_times(prof, SIZES)), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("sizes", [SIZES, [(64, 8)]], ids=["busy", "idle-by-then"])
def test_a_stalled_loop_catches_up_and_keeps_the_models_timeline(sizes):
    """The host stalls 0.6 s mid-run (the loop wakes 0.6 s behind): the loop runs the steps it
    owes back to back, so every request's times stay the offline engine's; a request submitted
    during the stall joins at the first step at or after its arrival — never at a step the loop
    replays from before it arrived (``idle-by-then``: the rest finished on the timeline before
    it arrived, so it starts at its arrival). The lag is reported; nothing slipped."""
    prof = load_profile(PROFILE)
    core, got, arrival = live_times(prof, sizes, stall_s=0.6, at_step=2, late=(200, 20))
    assert core.slips == 0 and core.slipped_s == 0
    assert 0.6 <= core.lag_max_s < 1.5
    late_s = arrival[-1]
    assert got[-1][0] >= late_s > 0.6  # arrived after the stall, scheduled no earlier
    if len(sizes) == 1:
        assert got[0][2] < late_s and got[-1][0] == late_s
    want = offline_times(prof, sizes, late=[(late_s, 200, 20)])
    assert flat(got) == pytest.approx(flat(want), rel=1e-9, abs=1e-9)


def test_a_stall_longer_than_catch_up_restarts_the_timeline_and_says_so():
    """Past ``catch_up_s`` the loop gives up catching up: the timeline restarts at the present,
    the restart and the seconds it skipped are counted, and a request still running finishes
    that much later than the offline engine says (one done before the stall, on time)."""
    prof = load_profile(PROFILE)
    core, got, _ = live_times(prof, SIZES, stall_s=1.0, catch_up_s=0.3)
    assert core.slips >= 1 and core.slipped_s >= 1.0
    late = [g[2] - w[2] for g, w in zip(got, offline_times(prof, SIZES), strict=True)]
    assert sorted(d >= 1.0 for d in late) == [False, True, True, True, True]  # (300, 1): before
    assert all(d >= 1.0 or abs(d) < 1e-9 for d in late)


def test_a_completion_generates_exactly_max_tokens_and_says_its_cost_model(client):
    r = client.post("/v1/completions", json={"prompt": list(range(1, 101)), "max_tokens": 7})
    assert r.status_code == 200
    body = r.json()
    assert body["usage"] == {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
    assert body["choices"][0]["finish_reason"] == "length"
    assert r.headers["x-driftsched-cost-model"] == "cpu-tiny-llama (measured)"
    models = client.get("/v1/models").json()["data"]
    assert models[0]["cost_model"] == "cpu-tiny-llama (measured)"


@pytest.mark.parametrize("chat", [False, True])
def test_a_stream_sends_one_token_per_step_then_usage_and_done(client, chat):
    if chat:
        url, body = "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}
    else:
        url, body = "/v1/completions", {"prompt": "one two three"}
    body |= {"max_tokens": 5, "stream": True, "stream_options": {"include_usage": True}}
    events = []
    with client.stream("POST", url, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and usage["completion_tokens"] == 5
    key = "delta" if chat else None
    texts = [
        (c["choices"][0][key].get("content", "") if key else c["choices"][0]["text"])
        for c in chunks[:-1]
    ]
    assert "".join(texts) == " x" * 5
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    if chat:
        assert chunks[0]["object"] == "chat.completion.chunk"
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    # the prompt counted by the documented rule: 13 bytes / 4 -> 4 tokens (+4 for a chat turn)
    assert usage["prompt_tokens"] == (1 + 4 if chat else 4)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"max_tokens": 3}).encode(), 400, "prompt"),
        (json.dumps({"prompt": [1], "n": 2}).encode(), 400, "n"),
        (json.dumps({"prompt": [1] * 2000, "max_tokens": 100}).encode(), 400, "context length"),
        (json.dumps({"prompt": ["a", "b"]}).encode(), 400, "one prompt"),
        (json.dumps({"prompt": [1], "model": "gpt-9"}).encode(), 404, "gpt-9"),
        (b"x" * (2 << 20), 413, "limit"),
    ],
)
def test_bad_requests_get_a_json_error_and_the_server_lives_on(client, body, status, says):
    r = client.post("/v1/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert says in r.json()["error"]["message"]
    assert client.post("/v1/completions", json={"prompt": [1], "max_tokens": 1}).status_code == 200


def test_metrics_carry_vllms_names_and_count_what_ran(client):
    before = client.get("/metrics").text
    n0 = metric(before, "vllm:e2e_request_latency_seconds_count")
    g0 = metric(before, "vllm:generation_tokens_total")
    for _ in range(3):
        client.post("/v1/completions", json={"prompt": [5] * 40, "max_tokens": 4})
    page = client.get("/metrics").text
    assert metric(page, "vllm:e2e_request_latency_seconds_count") == n0 + 3
    assert metric(page, "vllm:generation_tokens_total") == g0 + 12
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:time_to_first_token_seconds_count",
        "vllm:inter_token_latency_seconds_count",
        "vllm:request_queue_time_seconds_count",
        "vllm:prompt_tokens_total",
    ):
        metric(page, name)
    assert metric(page, "driftsched_engine_timeline_slips_total") == 0  # nothing stalled 5 s
    assert metric(page, "driftsched_engine_timeline_slipped_seconds_total") == 0
    assert 0 <= metric(page, "driftsched_engine_lag_max_seconds") < 5
    assert 'driftsched_engine_profile_info{cost_model="measured",profile="cpu-tiny-llama"}' in page


def test_a_client_that_leaves_mid_stream_has_its_request_aborted(server, client):
    def aborts() -> float:
        page = client.get("/metrics").text
        tag = 'vllm:request_success_total{engine="0",finished_reason="abort"'
        return next((float(x.rsplit(" ", 1)[1]) for x in page.splitlines() if x.startswith(tag)), 0)

    before = aborts()
    body = {"prompt": [3] * 50, "max_tokens": 1500, "stream": True}
    with (
        httpx.Client(base_url=server.url, timeout=30) as c,
        c.stream("POST", "/v1/completions", json=body) as r,
    ):
        for k, _ in enumerate(r.iter_lines()):
            if k > 5:
                break  # leave after a few tokens of 1,500
    deadline = time.monotonic() + 10
    while aborts() < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert aborts() == before + 1
    assert metric(client.get("/metrics").text, "vllm:num_requests_running") == 0


def test_the_engine_abort_frees_blocks_waiting_or_running():
    prof = load_profile(PROFILE)
    eng = ReferenceEngine(prof.engine)
    a, b = eng.add(0, 200, 50), eng.add(1, 300, 50)
    free = eng.pool.free
    eng.complete(eng.schedule())
    assert eng.pool.free < free
    assert eng.abort(a) and eng.abort(b)
    assert eng.pool.free == free and not eng.has_work()
    assert not eng.abort(a)  # already out: nothing to do
    c = eng.add(2, 100, 3)
    assert eng.abort(c) and not eng.waiting


def test_the_server_counts_a_stall_past_its_catch_up_in_metrics(capsys):
    """``engine serve --catch-up-s 0.2`` frozen 0.6 s (SIGSTOP) while it streams: /metrics
    counts the slip and the seconds it skipped. A negative ``--catch-up-s`` is refused."""
    from driftsched.cli import main

    with ServiceProcess(["engine", "serve", "--catch-up-s", "0.2"]) as server:
        body = {"prompt": [7] * 64, "max_tokens": 400, "stream": True}
        with (
            httpx.Client(base_url=server.url, timeout=30) as c,
            c.stream("POST", "/v1/completions", json=body) as r,
        ):
            lines = r.iter_lines()
            next(lines)  # streaming: the engine is stepping
            server.stall(0.6)
            assert sum(1 for _ in lines) > 1  # the rest arrives
            page = c.get("/metrics").text
    assert metric(page, "driftsched_engine_timeline_slips_total") >= 1
    assert metric(page, "driftsched_engine_timeline_slipped_seconds_total") >= 0.4
    with pytest.raises(SystemExit) as exit_:
        main(["engine", "serve", "--catch-up-s", "-1"])
    assert exit_.value.code == 2
    assert "--catch-up-s" in capsys.readouterr().err
