"""Corrector state that survives a restart: the log of what the corrector observed.

A corrector learns only from ``observe(admission, true output tokens)`` calls, so the ordered
list of those calls *is* its state, for every corrector — built-in or plugin — without asking
it to serialise itself. :class:`ObservationLog` appends each observation (JSON, data only:
nothing is unpickled) and, on start, :meth:`ObservationLog.replay` feeds the stored ones to a
fresh corrector in order, which rebuilds exactly the state it had (deterministic correctors).
The log is also corrector-independent: a gateway restarted with another corrector learns from
the same history.

Backends: :class:`MemoryLog` (lost on restart) and :class:`RedisLog` (``RPUSH`` to a list
under ``<state_key>:observations``, written in order by one background task so that a slow
Redis never stalls the gateway; a write that fails is counted and the gateway carries on with
its in-memory state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math

from driftsched.sim.request import Admission


def encode(adm: Admission, actual_tokens: int) -> str:
    row = [None if isinstance(v, float) and math.isnan(v) else v for v in adm]
    return json.dumps([*row, int(actual_tokens)], separators=(",", ":"))


def decode(text: str | bytes) -> tuple[Admission, int]:
    *row, actual = json.loads(text)
    row = [math.nan if v is None else v for v in row]
    return Admission(*row), int(actual)


class ObservationLog:
    """Base: ``append`` each observation; ``replay`` the stored ones into a corrector."""

    errors = 0  # writes that failed

    def stored(self) -> list[str]:
        raise NotImplementedError

    def append(self, adm: Admission, actual_tokens: int) -> None:
        raise NotImplementedError

    def replay(self, corrector) -> int:
        """Feed every stored observation to ``corrector.observe``; returns how many."""
        observe = getattr(corrector, "observe", None)
        rows = self.stored()
        if observe is not None:
            for text in rows:
                observe(*decode(text))
        return len(rows)

    async def start(self) -> None:
        """Begin writing (called inside the server's event loop)."""

    async def close(self) -> None:
        """Write what is pending, then stop."""

    def healthy(self) -> bool:
        return True


class MemoryLog(ObservationLog):
    def __init__(self):
        self.rows: list[str] = []

    def stored(self) -> list[str]:
        return list(self.rows)

    def append(self, adm: Admission, actual_tokens: int) -> None:
        self.rows.append(encode(adm, actual_tokens))


class RedisLog(ObservationLog):
    """See the module docstring. Connecting fails loudly (ConnectionError naming the URL):
    a gateway configured for Redis does not start without it."""

    def __init__(self, url: str, prefix: str):
        import redis

        self.url, self.key = url, f"{prefix}:observations"
        self._sync = redis.Redis.from_url(url, socket_timeout=5)
        try:
            self._sync.ping()
        except redis.RedisError as exc:
            raise ConnectionError(f"cannot reach Redis at {_safe(url)}: {exc}") from None
        self._queue: asyncio.Queue | None = None
        self._task = None

    def stored(self) -> list[str]:
        return [x.decode() for x in self._sync.lrange(self.key, 0, -1)]

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(self.url, socket_timeout=5)
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._writer())

    def append(self, adm: Admission, actual_tokens: int) -> None:
        text = encode(adm, actual_tokens)
        if self._queue is None:  # not started (tests, tools): write through
            self._sync.rpush(self.key, text)
        else:
            self._queue.put_nowait(text)

    async def _writer(self) -> None:
        import redis

        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._client.rpush(self.key, *batch)
            except (redis.RedisError, OSError):
                self.errors += len(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def close(self) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=5)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()

    def healthy(self) -> bool:
        try:
            return bool(self._sync.ping())
        except Exception:
            return False


def _safe(url: str) -> str:
    """``url`` without a password (``redis://:secret@host`` -> ``redis://***@host``)."""
    if "@" in url:
        scheme, rest = url.split("://", 1) if "://" in url else ("redis", url)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def observation_log(redis_url: str | None, prefix: str) -> ObservationLog:
    return RedisLog(redis_url, prefix) if redis_url else MemoryLog()
