"""``driftsched engine serve``: the services (driftsched.validate.serve) from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from driftsched.cli.common import command_group

engine = command_group("A simulated vLLM server: driftsched's engine model behind vLLM's API.")

Host = Annotated[str, typer.Option(help="address to bind (loopback unless you say otherwise)")]
Port = Annotated[int, typer.Option(help="TCP port")]


def _needs_serve_extra() -> None:
    from driftsched.ground.errors import InputError

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise InputError(
            "the services need the serve extra: pip install 'driftsched[serve]'"
        ) from None


@engine.command("serve")
def engine_serve(
    profile: Annotated[
        str, typer.Option(help="the hardware to behave like: a profile name or file")
    ] = "cpu-tiny-llama",
    host: Host = "127.0.0.1",
    port: Port = 8100,
    served_model_name: Annotated[
        str | None, typer.Option(help="the model name /v1/models lists (default: the profile's)")
    ] = None,
    max_num_seqs: Annotated[int | None, typer.Option(help="override the profile's")] = None,
    max_num_batched_tokens: Annotated[
        int | None, typer.Option(help="override the profile's")
    ] = None,
    catch_up_s: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="the longest host stall the step loop catches up on (default 5 s); beyond it "
            "the timeline restarts (a slip, counted in /metrics)",
        ),
    ] = None,
) -> None:
    """Serve /v1/completions, /v1/chat/completions, /v1/models, /health and /metrics (vLLM's
    metric names) with tokens streamed at the profile's step times: "an L4 running Qwen" with
    no GPU. Ctrl-C stops it."""
    _needs_serve_extra()
    from driftsched.sim.profile import load_profile
    from driftsched.validate.serve.engine_app import cost_model_label, engine_app
    from driftsched.validate.serve.server import serve

    prof = load_profile(profile)
    overrides = {
        k: v
        for k, v in {
            "max_num_seqs": max_num_seqs,
            "max_num_batched_tokens": max_num_batched_tokens,
        }.items()
        if v is not None
    }
    extra = {} if catch_up_s is None else {"catch_up_s": catch_up_s}
    app = engine_app(prof, model_name=served_model_name, engine=overrides, **extra)
    print(f"engine serve on http://{host}:{port}  cost model: {cost_model_label(prof)}", flush=True)
    serve(app, host=host, port=port)


gateway = command_group(
    "The study's gateway as an OpenAI-compatible service in front of vLLM servers."
)


@gateway.command("serve")
def gateway_serve(
    config: Annotated[
        str, typer.Option("--config", "-c", help="the gateway's TOML file (docs/serve.md)")
    ],
    host: Host = "127.0.0.1",
    port: Port = 8000,
    upstream: Annotated[
        list[str] | None,
        typer.Option(help="an upstream base URL (repeatable; replaces the config's list)"),
    ] = None,
) -> None:
    """Serve /v1/completions and /v1/chat/completions (streamed or whole) through the
    configured policy, corrector and router to the upstreams; /healthz, /readyz, /metrics.
    Ctrl-C stops it."""
    _needs_serve_extra()
    from driftsched.validate.serve.gateway_app import gateway_app
    from driftsched.validate.serve.gateway_config import load_gateway_config
    from driftsched.validate.serve.server import serve

    cfg = load_gateway_config(config)
    if upstream:  # validated as a config file's list is
        g = type(cfg.gateway).model_validate({**cfg.gateway.model_dump(), "upstreams": upstream})
        cfg = cfg.model_copy(update={"gateway": g})
    g = cfg.gateway
    from driftsched.validate.serve.logs import event, json_logging

    json_logging()
    event("started", policy=g.policy, corrector=g.corrector, mode=g.mode,
          upstreams=g.upstreams, tenants=len(cfg.tenants), redis=bool(g.redis_url))  # fmt: skip
    state = "Redis" if g.redis_url else "memory (lost on restart)"
    print(
        f"gateway serve on http://{host}:{port}  policy {g.policy}, corrector {g.corrector}, "
        f"{g.mode}; {len(cfg.tenants)} tenants; upstreams {', '.join(g.upstreams)}; corrector "
        f"state: {state}; records: {g.records or 'not written'}",
        flush=True,
    )
    serve(gateway_app(cfg), host=host, port=port)


@gateway.command("hash-key")
def gateway_hash_key() -> None:
    """Read an API key on stdin (never on the command line, where `ps` shows it) and print
    the SHA-256 a tenant's key_sha256 holds."""
    import sys

    from driftsched.validate.serve.tenants import hash_key

    key = sys.stdin.readline().strip()
    if not key:
        from driftsched.ground.errors import InputError

        raise InputError("hash-key: no key on stdin")
    print(hash_key(key))


@gateway.command("export")
def gateway_export(
    log: Annotated[str, typer.Argument(help="the gateway's records log (JSON lines)")],
    output: Annotated[str, typer.Option("--output", "-o", help="run folder to write")],
) -> None:
    """Write a gateway's log as a run folder (records.parquet, summaries): what `driftsched
    report` and the fidelity comparison read."""
    from driftsched.validate.serve.export import export_log

    print(export_log(log, output))
