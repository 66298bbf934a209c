"""A workload shape for sweeps and capacity searches: what arrives, re-scaled to a rate.

Either a generator (drawn afresh for every seed) or a trace file (the same requests for every
seed). :meth:`Workload.build` returns the trace with its arrival times scaled so the offered
rate is the one asked for (``rate_per_s``) or the base rate times a multiplier.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from driftsched.traces.trace import Trace
from pydantic import Field, model_validator

from driftsched.ground.config import Config
from driftsched.ground.errors import InputError


class Workload(Config):
    generator: str | None = Field(
        "driftsched-paper",
        description="generator name (driftsched traces list), re-drawn per seed",
    )
    params: dict[str, Any] = Field(default_factory=dict, description="generator parameters")
    requests: int = Field(2000, ge=10, description="requests per generated trace")
    trace: str | None = Field(None, description="a trace file instead of a generator")

    @model_validator(mode="after")
    def _one_source(self):
        if self.trace is None and self.generator is None:
            raise ValueError("give a generator or a trace file")
        return self

    def base(self, seed: int) -> Trace:
        """The unscaled trace for ``seed`` (a file trace ignores the seed)."""
        if self.trace is not None:
            return _read(self.trace).require_requests()
        return _generate(self.generator, self.requests, seed, _frozen(self.params))

    def mean_output_tokens(self, seed: int) -> float:
        """Mean output tokens of the trace for ``seed`` (scaling a rate does not change it)."""
        return float(self.base(seed).frame["output_tokens"].mean())

    def base_rate(self, seed: int) -> float:
        """Offered requests per second of the unscaled trace."""
        frame = self.base(seed).frame
        span = float(frame["arrival_s"].iloc[-1] - frame["arrival_s"].iloc[0])
        if span <= 0:
            raise InputError("the workload's requests all arrive at once: no rate to scale")
        return (len(frame) - 1) / span

    def build(self, seed: int, rate_per_s: float) -> Trace:
        """The trace for ``seed`` with arrivals scaled to ``rate_per_s`` offered requests/s."""
        if rate_per_s <= 0:
            raise InputError(f"rate must be > 0 requests/s, got {rate_per_s}")
        base = self.base(seed)
        stretch = self.base_rate(seed) / rate_per_s
        frame = base.frame.copy()
        start = float(frame["arrival_s"].iloc[0])
        frame["arrival_s"] = (frame["arrival_s"] - start) * stretch
        return Trace.from_frame(
            frame, f"{base.meta.get('source')} at {rate_per_s:g}/s", source="workload",
            rate_per_s=rate_per_s, seed=seed,
        )  # fmt: skip


def _frozen(params: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


@lru_cache(maxsize=16)
def _generate(name: str, requests: int, seed: int, params: tuple) -> Trace:
    import ast

    from driftsched.traces.generators import generate

    kwargs = {k: ast.literal_eval(v) for k, v in params}
    return generate(name, requests=requests, seed=seed, **kwargs)


@lru_cache(maxsize=4)
def _read(path: str) -> Trace:
    from driftsched.traces.trace import read_trace

    return read_trace(path)
