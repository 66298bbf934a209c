"""HTTP plumbing both servers share: bounded bodies, JSON errors, waiting on a client that may
leave, and the streaming response that notices it left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from driftsched.validate.serve.openai_api import APIError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

#: request bodies above this are refused with 413 (a completion prompt of ~250k tokens)
MAX_BODY_BYTES = 1 << 20


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or :class:`APIError` 413 as soon as it passes ``limit`` bytes (a
    declared ``Content-Length`` above it is refused before reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"the body is {declared} bytes; the limit is {limit}")
    size, parts = 0, []
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise APIError(413, f"the body is over the limit of {limit} bytes")
        parts.append(part)
    return b"".join(parts)


def install_errors(app: FastAPI) -> None:
    """Answer :class:`APIError` as JSON with its status and headers, and any other exception
    as a JSON 500 (never a traceback to the client)."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError):
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        err = APIError(500, f"internal error: {type(exc).__name__}", "server_error")
        return JSONResponse(err.body(), status_code=500)


async def until_gone(request: Request) -> None:
    """Returns when the client disconnects (its request body already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def done_or_gone(work: asyncio.Future, request: Request) -> bool:
    """Wait for ``work``; False (``work`` left running) if the client disconnected first —
    noticed at once (a watcher on the connection's messages), not by polling."""
    watcher = asyncio.ensure_future(until_gone(request))
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        return work.done()
    finally:
        watcher.cancel()


def event_stream(events: AsyncIterator[bytes], on_exit: Callable[[], None]) -> StreamingResponse:
    """Server-sent events from ``events``; ``on_exit`` runs however the stream ends — finished,
    or cancelled because the client went away (Starlette cancels the iterator then)."""

    async def body():
        try:
            async for item in events:
                yield item
        finally:
            on_exit()

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
