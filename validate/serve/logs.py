"""Structured logs of the services: one JSON object per line on stderr.

Events (``event`` field): ``request`` (a request ended: request id, tenant, outcome, reason,
HTTP status, E2E seconds — never a key), ``upstream_error``, ``upstream_resting``,
``upstream_back``, ``started``. :func:`json_logging` installs the formatter (``gateway serve``
does); without it the events go wherever Python logging sends them.
"""

from __future__ import annotations

import json
import logging
import math
import time

LOG = logging.getLogger("driftsched.gateway")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        out = {"ts": round(time.time(), 3), "level": record.levelname.lower(),
               "event": record.getMessage()}  # fmt: skip
        for k, v in fields.items():
            out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        return json.dumps(out, separators=(",", ":"), default=str)


def event(name: str, level: int = logging.INFO, **fields) -> None:
    """Log event ``name`` with ``fields``."""
    if LOG.isEnabledFor(level):
        LOG.log(level, name, extra={"fields": fields})


def json_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the gateway's events."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    LOG.handlers[:] = [handler]
    LOG.setLevel(level)
    LOG.propagate = False
