"""``driftsched gateway serve`` on loopback, in front of ``engine serve`` (both in threads of
the test process): authentication, limits, the policy's decisions, the records, and the
failure cases — each with its expected outcome, every request ending with one record."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import httpx
import pytest
from driftsched.sim.profile import load_profile
from driftsched.validate.serve.engine_app import engine_app
from driftsched.validate.serve.gateway_app import gateway_app
from driftsched.validate.serve.gateway_config import GatewayConfig, load_gateway_config
from driftsched.validate.serve.server import Background, free_port
from driftsched.validate.serve.state import MemoryLog
from driftsched.validate.serve.tenants import TokenBucket, hash_key
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

KEYS = {"acme": "sk-acme-0123456789", "slow": "sk-slow-9876543210"}


class RejectLongPrompts:
    """A policy (a plugin, by spec) whose admission decision refuses prompts over 500 tokens."""

    def __init__(self):
        self.q = []

    def admit(self, view, now_s):
        return "prompt over 500 tokens" if view.prompt_tokens > 500 else None

    def push(self, view):
        self.q.append(view)

    def pop(self, now_s):
        return self.q.pop(0) if self.q else None

    def __len__(self):
        return len(self.q)


def config(upstreams, tmp_path, **gateway) -> GatewayConfig:
    tenants = [
        {"name": "acme", "key_sha256": hash_key(KEYS["acme"]), "tier": "premium"},
        {
            "name": "slow",
            "key_sha256": hash_key(KEYS["slow"]),
            "tier": "batch",
            "requests_per_s": 1,
            "request_burst": 2,
            "tokens_per_s": 100,
            "token_burst": 400,
        },
    ]
    g = {"upstreams": upstreams, "records": str(tmp_path / "records.jsonl"), **gateway}
    return GatewayConfig.model_validate({"gateway": g, "tenants": tenants})


def auth(tenant: str) -> dict:
    return {"authorization": f"Bearer {KEYS[tenant]}"}


def records(tmp_path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "records.jsonl").read_text().splitlines()]


def engine_metric(engine, prefix: str) -> float:
    """The value of the engine's first metric line starting with ``prefix`` (0 when absent)."""
    page = httpx.get(engine.url + "/metrics").text
    return next((float(x.rsplit(" ", 1)[1]) for x in page.splitlines() if x.startswith(prefix)), 0)


ABORTED = 'vllm:request_success_total{engine="0",finished_reason="abort"'
RUNNING = "vllm:num_requests_running{"


def settle(engine, aborts: float, seconds: float = 10) -> float:
    """Wait (at most ``seconds``) until the engine counted ``aborts`` aborts and runs nothing;
    return the abort count then. An upstream abort lands at the engine's next step boundary,
    after the gateway has already written its record."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (
        engine_metric(engine, ABORTED) < aborts or engine_metric(engine, RUNNING) > 0
    ):
        time.sleep(0.05)
    return engine_metric(engine, ABORTED)


@pytest.fixture(scope="module")
def engine():
    with Background(engine_app(load_profile("cpu-tiny-llama"))) as srv:
        yield srv


@pytest.fixture
def gateway(engine, tmp_path):
    """A gateway factory: ``gateway(**settings)`` -> (base URL); all closed after the test."""
    opened = []

    def make(upstreams=None, log=None, **settings):
        cfg = config(upstreams or [engine.url], tmp_path, **settings)
        srv = Background(gateway_app(cfg, log=log))
        opened.append(srv)
        return srv.url

    yield make
    for srv in opened:
        srv.close()


def test_keys_limits_and_bad_input_each_get_their_answer_and_one_record(gateway, tmp_path):
    url = gateway()
    body = {"prompt": [7] * 40, "max_tokens": 3}
    with httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/v1/completions", json=body, headers=auth("acme")).status_code == 200
        r = c.post("/v1/completions", json=body, headers={"authorization": "Bearer sk-wrong"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        assert c.post("/v1/completions", json=body).status_code == 401
        # slow: 2 requests of burst, 1/s; a third at once is over the request limit
        codes = [c.post("/v1/completions", json=body, headers=auth("slow")) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        assert int(codes[2].headers["retry-after"]) >= 1
        big = {"prompt": [7] * 300, "max_tokens": 200}  # 500 tokens > the 400-token burst
        r = c.post("/v1/completions", json=big, headers=auth("slow"))
        assert r.status_code == 429 and "retry-after" in r.headers
        r = c.post("/v1/completions", content=b'{"prompt": [1', headers=auth("acme"))
        assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
        r = c.post("/v1/completions", content=b"9" * (2 << 20), headers=auth("acme"))
        assert r.status_code == 413
    rows = records(tmp_path)
    outcomes = [r["outcome"] for r in rows]
    assert outcomes.count("finished") == 3 and outcomes.count("unauthorized") == 2
    assert outcomes.count("rate_limited") == 2 and outcomes.count("bad_request") == 2
    assert len(rows) == 9  # every request, one record each
    text = (tmp_path / "records.jsonl").read_text()
    assert all(key not in text for key in KEYS.values()) and "sk-wrong" not in text


def test_token_bucket_refills_at_its_rate():
    b = TokenBucket(rate=10, burst=20, now_s=0)
    assert b.take(20, 0) == 0 and b.take(1, 0) == pytest.approx(0.1)
    assert b.take(5, 0.5) == 0  # 5 refilled in 0.5 s
    assert b.take(21, 10) == float("inf")  # more than the bucket can ever hold


def test_a_policy_rejection_is_a_503_with_its_reason(gateway, tmp_path):
    url = gateway(policy="tests.test_gateway_serve:RejectLongPrompts")
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/v1/completions", json={"prompt": [1] * 600, "max_tokens": 2},
                   headers=auth("acme"))  # fmt: skip
        assert r.status_code == 503 and "prompt over 500 tokens" in r.json()["error"]["message"]
        ok = c.post("/v1/completions", json={"prompt": [1] * 60, "max_tokens": 2},
                    headers=auth("acme"))  # fmt: skip
        assert ok.status_code == 200
        page = c.get("/metrics").text
    assert 'driftsched_gateway_rejections_total{reason="prompt over 500 tokens"} 1.0' in page
    assert [r["outcome"] for r in records(tmp_path)] == ["rejected", "finished"]


def test_streamed_and_whole_answers_carry_exact_tokens_and_the_records_export(gateway, tmp_path):
    url = gateway(policy="sjf", corrector="ewma")
    with httpx.Client(base_url=url, timeout=30) as c:
        whole = c.post("/v1/completions", json={"prompt": [2] * 30, "max_tokens": 6},
                       headers=auth("acme"))  # fmt: skip
        assert whole.json()["usage"]["completion_tokens"] == 6
        body = {"prompt": "hello " * 10, "max_tokens": 9, "stream": True}
        with c.stream("POST", "/v1/completions", json=body, headers=auth("acme")) as r:
            lines = [x for x in r.iter_lines() if x.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        chunks = [json.loads(x[6:]) for x in lines[:-1]]
        assert all(ch["choices"] for ch in chunks)  # the gateway's own usage request is hidden
        assert "".join(ch["choices"][0]["text"] for ch in chunks) == " x" * 9
        state = c.get("/metrics").text
    assert "driftsched_gateway_corrector_state" in state
    rows = records(tmp_path)
    assert [r["generated_tokens"] for r in rows] == [6, 9]
    assert rows[1]["first_token_s"] is not None and rows[0]["first_token_s"] is None
    from driftsched.cli import main

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        main(["gateway", "export", str(tmp_path / "records.jsonl"), "-o", str(out)])
    assert exit_.value.code in (0, None)
    import pandas as pd

    rec = pd.read_parquet(out / "records.parquet")
    assert rec["finished"].all() and list(rec["output_tokens"]) == [6, 9]
    assert json.loads((out / "summary.json").read_text())["accounting"]["finished"] == 2
    from driftsched.sim.studies.report import render

    assert "Simulation run" in render(out) or "run" in render(out).lower()


def test_a_client_leaving_the_queue_is_never_dispatched(gateway, tmp_path, engine):
    """One slot: a long request holds it; a second client gives up while queued, then the
    first leaves mid-stream. Two cancellations: one never dispatched, one in flight (the engine
    aborts that one only)."""
    before = settle(engine, 0)
    url = gateway(max_concurrency=1)
    long_body = {"prompt": [4] * 20, "max_tokens": 2000, "stream": True}
    with (
        httpx.Client(base_url=url, timeout=30) as c,
        c.stream("POST", "/v1/completions", json=long_body, headers=auth("acme")) as r,
    ):
        lines = r.iter_lines()  # kept: a discarded iterator closes the stream
        next(lines)  # the long one is running
        with pytest.raises(httpx.ReadTimeout):
            c.post("/v1/completions", json={"prompt": [1] * 10, "max_tokens": 2},
                   headers=auth("acme"), timeout=0.5)  # fmt: skip
        deadline = time.monotonic() + 5
        while not (tmp_path / "records.jsonl").stat().st_size and time.monotonic() < deadline:
            time.sleep(0.02)  # the gateway writes the queued one's record at once
    deadline = time.monotonic() + 5
    while len(records(tmp_path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    rows = records(tmp_path)
    assert [r["outcome"] for r in rows] == ["cancelled", "cancelled"]
    queued, running = rows
    assert queued["dispatch_s"] is None and queued["replica"] == -1
    assert running["dispatch_s"] is not None and running["replica"] == 0
    assert settle(engine, before + 1) == before + 1


def test_a_client_leaving_mid_stream_aborts_the_upstream_request(gateway, tmp_path, engine):
    before = settle(engine, 0)  # what earlier tests aborted has landed; nothing runs
    url = gateway()
    body = {"prompt": [4] * 20, "max_tokens": 1500, "stream": True}
    with (
        httpx.Client(base_url=url, timeout=30) as c,
        c.stream("POST", "/v1/completions", json=body, headers=auth("acme")) as r,
    ):
        for k, _ in enumerate(r.iter_lines()):
            if k > 4:
                break
    assert settle(engine, before + 1) == before + 1
    deadline = time.monotonic() + 5
    while not (tmp_path / "records.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["outcome"] for r in records(tmp_path)] == ["cancelled"]


def test_a_dead_upstream_is_skipped_before_anything_streamed(gateway, tmp_path, engine):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    url = gateway(upstreams=[dead, engine.url], router="round_robin", retry_cooldown_s=30)
    with httpx.Client(base_url=url, timeout=30) as c:
        for _ in range(3):
            r = c.post("/v1/completions", json={"prompt": [1] * 10, "max_tokens": 2},
                       headers=auth("acme"))  # fmt: skip
            assert r.status_code == 200
        page = c.get("/metrics").text
    rows = records(tmp_path)
    assert [r["outcome"] for r in rows] == ["finished"] * 3
    assert rows[0]["attempts"] == 2 and rows[0]["replica"] == 1  # retried on the live one
    assert all(r["replica"] == 1 for r in rows)  # the dead one rests
    assert f'driftsched_gateway_upstream_resting{{upstream="{dead}"}} 1.0' in page


def _dying_upstream() -> FastAPI:
    """An upstream that streams two tokens and then drops the connection."""
    app = FastAPI()

    @app.post("/v1/completions")
    async def completions():
        async def events():
            for _ in range(2):
                yield b'data: {"choices":[{"index":0,"text":" x"}]}\n\n'
            raise RuntimeError("the engine died")

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def test_an_upstream_dying_mid_stream_ends_the_stream_with_an_error_event(gateway, tmp_path):
    with Background(_dying_upstream()) as dying:
        url = gateway(upstreams=[dying.url])
        body = {"prompt": [1] * 10, "max_tokens": 20, "stream": True}
        with (
            httpx.Client(base_url=url, timeout=30) as c,
            c.stream("POST", "/v1/completions", json=body, headers=auth("acme")) as r,
        ):
            lines = [x for x in r.iter_lines() if x.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["error"]["type"] == "upstream_error"
    assert len(lines) == 4  # two tokens, the error, [DONE]
    row = records(tmp_path)[0]
    assert row["outcome"] == "failed" and "mid-stream" in row["reason"]


def test_corrector_state_survives_a_restart(gateway, tmp_path):
    """The observation log replays into a fresh corrector: the state after the restart is the
    state before it (memory log here; Redis below)."""
    log = MemoryLog()
    url = gateway(corrector="ewma", log=log)
    with httpx.Client(base_url=url, timeout=30) as c:
        for n in (3, 40, 12):
            c.post("/v1/completions", json={"prompt": [1] * 10, "max_tokens": n},
                   headers=auth("acme"))  # fmt: skip
        before = [x for x in c.get("/metrics").text.splitlines() if "corrector_state{" in x]
    url2 = gateway(corrector="ewma", log=log)
    with httpx.Client(base_url=url2, timeout=30) as c:
        after = [x for x in c.get("/metrics").text.splitlines() if "corrector_state{" in x]
        assert c.get("/readyz").json()["corrector_observations_replayed"] == 3
    assert before and after == before


@pytest.fixture
def redis_server(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_corrector_state_survives_a_gateway_restart_in_redis(gateway, redis_server):
    url = gateway(corrector="ewma", redis_url=redis_server)
    with httpx.Client(base_url=url, timeout=30) as c:
        for n in (5, 50, 20, 7):
            c.post("/v1/completions", json={"prompt": [1] * 10, "max_tokens": n},
                   headers=auth("acme"))  # fmt: skip
        before = [x for x in c.get("/metrics").text.splitlines() if "corrector_state{" in x]
    time.sleep(0.3)  # the background writer's last batch
    url2 = gateway(corrector="ewma", redis_url=redis_server)
    with httpx.Client(base_url=url2, timeout=30) as c:
        ready = c.get("/readyz").json()
        after = [x for x in c.get("/metrics").text.splitlines() if "corrector_state{" in x]
    assert ready["corrector_observations_replayed"] == 4 and ready["state"]
    assert before and after == before


def test_a_bad_config_file_is_one_line_naming_the_field(tmp_path):
    from driftsched.ground.errors import InputError

    path = tmp_path / "gw.toml"
    path.write_text('[gateway]\nupstreams = ["localhost:8000"]\n[[tenants]]\nname = "a"\n'
                    f'key_sha256 = "{hash_key("k")}"\n')  # fmt: skip
    with pytest.raises(InputError, match=r"gw.toml.*upstreams.*base URL"):
        load_gateway_config(path)
    path.write_text('[gateway]\nupstreams = ["http://h:1"]\ncorrector = "oracle"\n[[tenants]]\n'
                    f'name = "a"\nkey_sha256 = "{hash_key("k")}"\n')  # fmt: skip
    with pytest.raises(InputError, match="oracle"):
        load_gateway_config(path)


def test_the_openai_client_talks_to_the_gateway_streamed_and_whole(gateway, tmp_path):
    """A client nobody here wrote: the ``openai`` package, completions and chat, streamed and
    whole, through the gateway to engine serve."""
    openai = pytest.importorskip("openai")
    url = gateway(policy="sjf", corrector="ewma")
    client = openai.OpenAI(base_url=url + "/v1", api_key=KEYS["acme"], max_retries=0)
    model = client.models.list().data[0].id
    whole = client.completions.create(model=model, prompt=[1, 2, 3, 4], max_tokens=5)
    assert whole.usage.completion_tokens == 5 and whole.choices[0].text == " x" * 5
    parts = client.completions.create(
        model=model, prompt="a prompt of words", max_tokens=4, stream=True
    )
    assert "".join(ch.choices[0].text for ch in parts if ch.choices) == " x" * 4
    chat = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert chat.choices[0].message.content == " x" * 3
    deltas = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(deltas)
    assert chunks[-1].usage.completion_tokens == 6
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " x" * 6
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="sk-nope", max_retries=0).completions.create(
            model=model, prompt=[1], max_tokens=1
        )
    assert [r["outcome"] for r in records(tmp_path)].count("finished") == 4


def test_the_gateway_logs_json_lines_and_never_a_key(gateway, capsys):
    from driftsched.validate.serve.logs import LOG, json_logging

    json_logging()
    try:
        url = gateway()
        with httpx.Client(base_url=url, timeout=30) as c:
            c.post("/v1/completions", json={"prompt": [1] * 8, "max_tokens": 2},
                   headers=auth("acme"))  # fmt: skip
            wrong = {"authorization": "Bearer sk-wrong-key-7"}
            c.post("/v1/completions", json={"prompt": [1]}, headers=wrong)
    finally:
        LOG.handlers.clear()
    err = capsys.readouterr().err
    events = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    ends = [e for e in events if e["event"] == "request"]
    assert [e["outcome"] for e in ends] == ["finished", "unauthorized"]
    assert ends[0]["tenant"] == "acme" and ends[0]["e2e_s"] > 0 and ends[1]["e2e_s"] is None
    assert KEYS["acme"] not in err and "sk-wrong-key-7" not in err
