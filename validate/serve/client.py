"""A trace-replaying OpenAI client: what the self-checks and the load bench send.

:func:`replay` sends each trace row at its ``arrival_s`` (relative to the start) to
``/v1/completions`` as a prompt of ``prompt_tokens`` token ids with ``max_tokens`` = the row's
``output_tokens`` and ``ignore_eos`` (so a real vLLM and ``engine serve`` generate exactly that
many), with the row's ``category`` in ``x-category`` (the gateway's estimate reads it) and its
tenant's key, streamed or whole, and times what comes back. Latencies are measured from the row's
``arrival_s`` (the intended send time; the client's own lateness is reported as
``send_lag_s``). Prompts are the token ids the in-process live path sends
(:func:`driftsched.calibrate.vllm_engine.prompt_ids`: within the tiny model's vocabulary, a
function of the request id). Every row ends with a ``status``: the HTTP code, or 0 with
``error`` when the connection failed.
"""

from __future__ import annotations

import asyncio
import json
import math
import time

import httpx
import numpy as np
import pandas as pd
from driftsched.calibrate.vllm_engine import prompt_ids

#: the per-request columns :func:`replay` returns
COLUMNS = [
    "request_id",
    "tenant",
    "arrival_s",
    "send_lag_s",
    "first_token_s",
    "done_s",
    "ttft_s",
    "e2e_s",
    "prompt_tokens",
    "output_tokens",
    "generated_tokens",
    "status",
    "error",
]


async def _one(client, url, body, headers, stream, t0) -> dict:
    out = {"first_token_s": math.nan, "done_s": math.nan, "generated_tokens": 0, "error": ""}
    try:
        if not stream:
            r = await client.post(url, json=body, headers=headers)
            out["status"] = r.status_code
            now = time.perf_counter() - t0
            if r.status_code == 200:
                out["generated_tokens"] = r.json()["usage"]["completion_tokens"]
                out["first_token_s"] = out["done_s"] = now
            else:
                out["error"] = r.text[:300]
            return out
        async with client.stream("POST", url, json=body, headers=headers) as r:
            out["status"] = r.status_code
            if r.status_code != 200:
                out["error"] = (await r.aread()).decode(errors="replace")[:300]
                return out
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    out["error"] = str(chunk["error"].get("message", chunk["error"]))[:300]
                    break
                if chunk.get("usage"):
                    out["generated_tokens"] = chunk["usage"]["completion_tokens"]
                choices = chunk.get("choices") or []
                if choices and choices[0].get("text") and math.isnan(out["first_token_s"]):
                    out["first_token_s"] = time.perf_counter() - t0
            if not out["error"]:
                out["done_s"] = time.perf_counter() - t0
    except httpx.HTTPError as exc:
        out.setdefault("status", 0)
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


async def _bounded(call, give_up_s: float | None) -> dict:
    if give_up_s is None:
        return await call
    try:
        return await asyncio.wait_for(call, give_up_s)
    except TimeoutError:
        return {"status": 499, "error": "gave up", "first_token_s": math.nan,
                "done_s": math.nan, "generated_tokens": 0}  # fmt: skip


async def replay(
    base_url: str,
    frame: pd.DataFrame,
    *,
    keys: dict[str, str] | None = None,
    stream: bool = True,
    model: str | None = None,
    timeout_s: float = 600.0,
    give_up_s: float | None = None,
) -> pd.DataFrame:
    """Send ``frame``'s rows (``arrival_s``, ``prompt_tokens``, ``output_tokens``, optional
    ``request_id``/``tenant``) to ``base_url``; ``keys`` maps a tenant to its API key (sent as
    a bearer token). ``give_up_s``: a client that waited this long for its whole answer
    disconnects (status 499, "gave up"). Returns one row per request (:data:`COLUMNS`)."""
    n = len(frame)
    arrival = frame["arrival_s"].to_numpy(dtype=float)
    tenants = frame["tenant"].astype(str).tolist() if "tenant" in frame else ["-"] * n
    ids = (
        frame["request_id"].astype(str).tolist()
        if "request_id" in frame
        else list(map(str, range(n)))
    )
    categories = frame["category"].astype(str).tolist() if "category" in frame else None
    prompt = frame["prompt_tokens"].to_numpy(dtype=int)
    output = frame["output_tokens"].to_numpy(dtype=int)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    timeout = httpx.Timeout(timeout_s, connect=30.0)
    lag = np.zeros(n)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        t0 = time.perf_counter()
        tasks = []
        for i in range(n):
            wait = arrival[i] - (time.perf_counter() - t0)
            if wait > 0:
                await asyncio.sleep(wait)
            lag[i] = max(0.0, time.perf_counter() - t0 - arrival[i])
            body = {
                "prompt": prompt_ids(ids[i], int(prompt[i])),
                "max_tokens": int(output[i]),
                "ignore_eos": True,
                "stream": stream,
            }
            if stream:
                body["stream_options"] = {"include_usage": True}
            if model:
                body["model"] = model
            headers = {"x-request-id": ids[i]}
            if categories is not None:  # what the gateway's static estimate reads
                headers["x-category"] = categories[i]
            if keys and tenants[i] in keys:
                headers["authorization"] = f"Bearer {keys[tenants[i]]}"
            call = _one(client, "/v1/completions", body, headers, stream, t0)
            tasks.append(asyncio.create_task(_bounded(call, give_up_s)))
        results = await asyncio.gather(*tasks)
    rows = pd.DataFrame(results)
    out = pd.DataFrame(
        {
            "request_id": ids,
            "tenant": tenants,
            "arrival_s": arrival,
            "send_lag_s": lag,
            "first_token_s": rows["first_token_s"].to_numpy(float),
            "done_s": rows["done_s"].to_numpy(float),
        }
    )
    out["ttft_s"] = out["first_token_s"] - out["arrival_s"]
    out["e2e_s"] = out["done_s"] - out["arrival_s"]
    out["prompt_tokens"] = prompt
    out["output_tokens"] = output
    out["generated_tokens"] = rows["generated_tokens"].to_numpy(int)
    out["status"] = rows["status"].to_numpy(int)
    out["error"] = rows["error"].astype(str).to_numpy()
    return out[COLUMNS]
