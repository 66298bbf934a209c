"""``driftsched gateway serve``: the study's gateway as an OpenAI-compatible service in front of
one or more vLLM OpenAI servers (``vllm serve``, or ``driftsched engine serve``).

Per request: the tenant's API key (``Authorization: Bearer``; 401 if unknown), the body
(400 malformed, 413 too large), the tenant's limits (429 with ``Retry-After``), the policy's
admission decision (503 with the reason), the queue (the simulator's policy and dispatcher
decide when and where it goes), then the upstream — streamed through as server-sent events or
answered whole. The tenant's key is never forwarded or logged; the upstream sees the body and
``x-request-id``. Category for the estimate: the ``x-category`` header, else the tenant's.

Failures: an upstream that refuses the connection or answers 5xx before anything was streamed
rests and the request is retried on another (continuous mode); one that dies mid-stream ends
the client's stream with an ``error`` event and ``[DONE]``; a client that disconnects leaves
the queue or has its upstream request closed (vLLM aborts it). Every request ends with one
record (:mod:`.gateway_records`). Endpoints also: ``/v1/models`` (the first upstream's),
``/healthz``, ``/readyz`` (503 while every upstream rests or the state store is down),
``/metrics`` (:mod:`.gateway_metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid

import anyio
import httpx
from driftsched.validate.serve.gateway_config import GatewayConfig
from driftsched.validate.serve.gateway_metrics import GatewayMetrics
from driftsched.validate.serve.gateway_records import RecordLog
from driftsched.validate.serve.gateway_service import GatewayService, Pending
from driftsched.validate.serve.http import done_or_gone, install_errors, read_body
from driftsched.validate.serve.openai_api import (
    DONE,
    APIError,
    ChatRequest,
    CompletionRequest,
    parse,
    sse,
)
from driftsched.validate.serve.state import observation_log
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class UpstreamDown(Exception):
    """No upstream could take the request."""


def api_key(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def gateway_app(config: GatewayConfig, *, log=None) -> FastAPI:
    """The app (module docstring). ``log``: an observation log to use instead of the one the
    config names (tests)."""
    settings = config.gateway
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        obs = log if log is not None else observation_log(settings.redis_url, settings.state_key)
        await obs.start()
        records = RecordLog(settings.records)
        service = GatewayService(config, log=obs, records=records)
        metrics = GatewayMetrics(service)
        service.on_end = metrics.ended
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.upstream_timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
        )
        state.update(service=service, metrics=metrics, client=client, log=obs, records=records)
        try:
            yield
        finally:
            await client.aclose()
            await obs.close()
            records.close()

    app = FastAPI(title="driftsched gateway serve", lifespan=lifespan)
    install_errors(app)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        service = state["service"]
        ok_up, ok_state = service.ready, state["log"].healthy()
        body = {"upstreams": not all(service.resting), "state": ok_state,
                "corrector_observations_replayed": service.replayed}  # fmt: skip
        return JSONResponse(body, status_code=200 if ok_up and ok_state else 503)

    @app.get("/metrics")
    async def metrics_page():
        return Response(generate_latest(state["metrics"].registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        try:
            r = await state["client"].get(settings.upstreams[0] + "/v1/models")
        except httpx.HTTPError as exc:
            raise APIError(503, f"the upstream is unreachable: {type(exc).__name__}") from None
        return Response(r.content, status_code=r.status_code, media_type="application/json")

    async def open_upstream(p: Pending, path: str, body: dict) -> httpx.Response:
        """The upstream's response (headers read, body streaming), retried on another upstream
        while nothing was streamed; raises UpstreamDown when none could take it."""
        service, metrics, client = state["service"], state["metrics"], state["client"]
        headers = {"x-request-id": p.adm.request_id}
        while True:
            p.attempts += 1
            url = settings.upstreams[p.slot.replica_id]
            try:
                req = client.build_request("POST", url + path, json=body, headers=headers)
                p.sent_s = service.now()
                resp = await client.send(req, stream=True)
            except httpx.HTTPError as exc:
                kind = type(exc).__name__
            else:
                if resp.status_code < 500:
                    return resp
                kind = f"http_{resp.status_code}"
                await resp.aclose()
            metrics.upstream_error(url, kind)
            service.rest(p.slot)
            if service.reroute(p) is None:
                raise UpstreamDown(f"upstream {url}: {kind}")

    async def relay(p: Pending, resp: httpx.Response, want_usage: bool):
        """The upstream's events to the client; the request's end recorded however it ends."""
        service = state["service"]
        done, usage, counted = False, None, 0
        try:
            async for line in resp.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except json.JSONDecodeError:
                    continue
                if chunk.get("usage"):
                    usage = chunk["usage"].get("completion_tokens")
                    if not chunk.get("choices") and not want_usage:
                        continue  # asked for by the gateway, not by the client
                choices = chunk.get("choices") or []
                if choices:
                    c = choices[0]
                    text = c.get("text") or (c.get("delta") or {}).get("content")
                    if text:
                        counted += 1
                        if math.isnan(p.first_token_s):
                            p.first_token_s = service.now()
                yield (line + "\n\n").encode()
            if not done:
                raise httpx.RemoteProtocolError("the upstream's stream ended without [DONE]")
            service.finish(p, usage if usage is not None else counted)
            yield DONE
        except httpx.HTTPError as exc:
            state["metrics"].upstream_error(settings.upstreams[p.slot.replica_id], "mid_stream")
            service.fail(p, f"the upstream failed mid-stream: {type(exc).__name__}")
            err = {"message": "the upstream failed mid-stream", "type": "upstream_error",
                   "code": 502}  # fmt: skip
            yield sse({"error": err})
            yield DONE
        finally:
            if not p.ended:  # the client left (the stream was cancelled)
                service.cancel(p)
            with anyio.CancelScope(shield=True):
                await resp.aclose()

    async def whole(p: Pending, resp: httpx.Response) -> Response:
        service = state["service"]
        try:
            data = await resp.aread()
        finally:
            with anyio.CancelScope(shield=True):
                await resp.aclose()
        if resp.status_code != 200:
            service.fail(p, f"the upstream answered {resp.status_code}", resp.status_code)
            return Response(data, status_code=resp.status_code, media_type="application/json")
        try:
            tokens = int(json.loads(data)["usage"]["completion_tokens"])
        except (ValueError, KeyError, TypeError):
            service.fail(p, "the upstream's answer has no usage")
            raise APIError(502, "the upstream's answer has no usage", "upstream_error") from None
        service.finish(p, tokens)
        return Response(data, media_type="application/json")

    async def handle(request: Request, kind, path: str):
        service: GatewayService = state["service"]
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        tenant = service.tenants.authenticate(api_key(request))
        if tenant is None:
            service.record_refused(
                {
                    "request_id": rid,
                    "outcome": "unauthorized",
                    "reason": "unknown or missing API key",
                    "status": 401,
                }
            )
            raise APIError(401, "unknown or missing API key", "authentication_error")
        try:
            raw = await read_body(request, settings.max_body_bytes)
            req, body = parse(kind, raw)
            prompt_tokens = req.prompt_tokens
        except APIError as exc:
            service.record_refused(
                {
                    "request_id": rid,
                    "tenant": tenant.name,
                    "tier": tenant.config.tier,
                    "outcome": "bad_request",
                    "reason": exc.message[:200],
                    "status": exc.status,
                }
            )
            raise
        if settings.upstream_model:
            body["model"] = settings.upstream_model
        if req.stream:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        p = service.admit(tenant, prompt_tokens, req.output_tokens,
                          request.headers.get("x-category"), rid)  # fmt: skip
        if not await done_or_gone(p.dispatched, request):
            service.cancel(p)
            return Response(status_code=499)
        try:
            resp = await open_upstream(p, path, body)
        except UpstreamDown as exc:
            service.fail(p, str(exc), 503)
            raise APIError(503, "no upstream could take the request", "upstream_error") from None
        except BaseException:
            service.cancel(p)
            raise
        if not req.stream or resp.status_code != 200:
            task = asyncio.ensure_future(whole(p, resp))
            if not await done_or_gone(task, request):
                task.cancel()
                service.cancel(p)
                return Response(status_code=499)
            return task.result()
        return StreamingResponse(
            relay(p, resp, req.include_usage), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )  # fmt: skip

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await handle(request, CompletionRequest, "/v1/completions")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await handle(request, ChatRequest, "/v1/chat/completions")

    return app
