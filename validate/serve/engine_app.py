"""``driftsched engine serve --profile P``: an OpenAI-compatible server that behaves like
``vllm serve`` of the profile's hardware, with no GPU.

Requests join a real-time run of driftsched's engine model
(:class:`~driftsched.validate.serve.realtime.RealtimeEngine`); tokens stream at the model's
step times; ``max_tokens`` is honoured (exactly that many tokens, as vLLM with ``ignore_eos``);
``/metrics`` carries vLLM's metric names (:mod:`.engine_metrics`). Endpoints: ``/v1/models``,
``/v1/completions``, ``/v1/chat/completions`` (streamed as server-sent events or whole),
``/health``, ``/version``, ``/metrics``. A client that disconnects has its request aborted at
the next step boundary. Every response carries ``x-driftsched-cost-model`` (the profile and
whether it is a *prior* or *measured*).
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib.metadata import version

from driftsched.sim.profile import Profile
from driftsched.validate.serve.engine_metrics import EngineMetrics
from driftsched.validate.serve.http import (
    MAX_BODY_BYTES,
    done_or_gone,
    event_stream,
    install_errors,
    read_body,
)
from driftsched.validate.serve.openai_api import (
    DONE,
    APIError,
    ChatRequest,
    CompletionRequest,
    Reply,
    parse,
    sse,
)
from driftsched.validate.serve.realtime import CATCH_UP_S, RealtimeEngine
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def cost_model_label(profile: Profile) -> str:
    """``"<profile name> (<prior|measured>)"``: what every output says it rests on."""
    return f"{profile.name} ({profile.provenance.kind})"


def engine_app(
    profile: Profile,
    *,
    model_name: str | None = None,
    engine: dict | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    catch_up_s: float = CATCH_UP_S,
) -> FastAPI:
    """The app (see the module docstring). ``model_name`` is what ``/v1/models`` lists and
    requests may name (default: the profile's model); ``engine`` overrides engine settings;
    ``catch_up_s`` is the engine loop's (:class:`~.realtime.RealtimeEngine`)."""
    model = profile.provenance.model
    name = model_name or (model if model and " " not in model else profile.name)
    label = cost_model_label(profile)
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        metrics = EngineMetrics(name, profile)
        core = RealtimeEngine(profile, engine=engine, catch_up_s=catch_up_s, observers=(metrics,))
        metrics.bind(core)
        state.update(core=core, metrics=metrics, task=asyncio.create_task(core.run()))
        try:
            yield
        finally:
            state["task"].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state["task"]

    app = FastAPI(title="driftsched engine serve", lifespan=lifespan)
    install_errors(app)

    @app.middleware("http")
    async def _label(request: Request, call_next):
        response = await call_next(request)
        response.headers["x-driftsched-cost-model"] = label
        return response

    def core() -> RealtimeEngine:
        task = state["task"]
        if task.done():  # the engine loop died: say so on every request
            raise APIError(503, f"the engine loop stopped: {task.exception()!r}", "server_error")
        return state["core"]

    @app.get("/health")
    async def health():
        core()
        return Response(status_code=200)

    @app.get("/version")
    async def _version():
        return {"version": version("driftsched"), "cost_model": label}

    @app.get("/v1/models")
    async def models():
        settings = state["core"].settings
        card = {
            "id": name,
            "object": "model",
            "owned_by": "driftsched",
            "max_model_len": settings.max_model_len,
            "cost_model": label,
        }
        return {"object": "list", "data": [card]}

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(state["metrics"].registry), media_type=CONTENT_TYPE_LATEST)

    async def complete(request: Request, kind, chat: bool):
        req, _ = parse(kind, await read_body(request, max_body_bytes))
        if req.model is not None and req.model != name:
            raise APIError(404, f"the model {req.model!r} does not exist (this server: {name!r})")
        engine_ = core()
        prompt_tokens = req.prompt_tokens
        try:
            stream = engine_.submit(prompt_tokens, req.output_tokens)
        except ValueError as exc:
            raise APIError(400, str(exc)) from None
        reply = Reply(name, chat, prompt_tokens)
        if not req.stream:
            waiter = asyncio.ensure_future(stream.done.wait())
            if not await done_or_gone(waiter, request):
                waiter.cancel()
                engine_.abort(stream)
                return Response(status_code=499)
            return JSONResponse(reply.whole(stream.tokens, stream.reason))

        async def events():
            sent = 0
            if chat:
                yield sse(reply.chunk(0, first=True))
            async for tokens in stream.deltas():
                finish = stream.reason if stream.finished and tokens == stream.tokens else None
                yield sse(reply.chunk(tokens - sent, finish))
                sent = tokens
            if req.include_usage:
                yield sse(reply.usage_chunk(stream.tokens))
            yield DONE

        return event_stream(events(), lambda: engine_.abort(stream))

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await complete(request, CompletionRequest, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await complete(request, ChatRequest, chat=True)

    return app
