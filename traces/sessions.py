"""Chat sessions that share prompts: the ``sessions`` generator, for prefix caching.

Every session picks a tenant and one of ``system_prompts`` system prompts (Zipf popularity:
prompt k is chosen with weight ``1 / (k + 1) ** zipf``) and runs a geometric number of turns
(mean ``turns``). Turn t's prompt is the session so far — the system prompt, then every earlier
user message and answer — plus a new user message; consecutive turns are ``think_time_s``
apart (exponential) and sessions start as a Poisson process, so turns of one session may
overlap the previous turn's answer (the trace is open-loop, like the importers').

The ``prefix`` column describes that sharing in chunks of ``chunk_tokens``: chunk i of a
session's token stream is named by its system prompt while it lies inside it (shared by every
session with that prompt) and by the session otherwise (shared by its later turns). Only full
chunks of the prompt are named. In the simulator (docs/model.md, "Prefix caching") a turn
therefore hits the system prompt and the history up to the previous turn's *prompt*; the
previous answer's own blocks are that request's, so the history's last answer is hit from the
turn after next. (vLLM, given the echoed tokens, would hit it one turn earlier.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from driftsched.traces.arrivals import poisson_gaps
from driftsched.traces.assign import MaxTokensRule, categories_from_output, max_tokens_for
from driftsched.traces.lengths import finalise, parse_length_spec
from driftsched.traces.schema import format_prefix
from driftsched.traces.synthetic import TenantSpec, _categorical, parse_tenants
from driftsched.traces.trace import Trace, request_frame
from pydantic import Field

from driftsched.ground.config import Config
from driftsched.ground.rng import streams

#: chunk ids of system prompt k are ``k * SYSTEM_ID_SPAN + i``; session s's are offset past them
SYSTEM_ID_SPAN = 1 << 20


class SessionsConfig(Config):
    """Multi-turn chat sessions over shared system prompts."""

    requests: int = Field(2000, ge=1, description="turns in all (the trace's rows)")
    seed: int = Field(0, ge=0)
    rate_per_s: float = Field(5.0, gt=0, description="mean request (turn) rate, requests/s")
    tenants: TenantSpec = "tenant-premium=premium:1,tenant-standard=standard:1,tenant-batch=batch:1"
    system_prompts: int = Field(8, ge=1, description="distinct system prompts")
    zipf: float = Field(1.0, ge=0, description="popularity skew of the system prompts")
    system_len: str = "lognormal:median=400,sigma=0.4"
    user_len: str = "lognormal:median=60,sigma=0.8"
    output_len: str = "lognormal:median=120,sigma=0.8"
    turns: float = Field(3.0, ge=1, description="mean turns per session (geometric)")
    think_time_s: float = Field(20.0, ge=0, description="mean gap between a session's turns")
    chunk_tokens: int = Field(16, ge=1, description="granularity of the prefix ids")
    max_total_tokens: int = Field(
        2048,
        ge=2,
        description="a session ends before a turn whose prompt + answer would exceed this "
        "(the bundled profiles' max_model_len)",
    )
    category_noise: float = Field(0.1, ge=0, le=1)
    max_tokens_rule: MaxTokensRule = "pow2"


def generate_sessions(config: SessionsConfig) -> Trace:
    """Generate the sessions trace (same config and seed -> same trace)."""
    rng = streams(config.seed, "session", "tenant", "system", "lengths", "think", "category")
    n = config.requests
    specs = parse_tenants(config.tenants)
    sys_lengths = finalise(
        parse_length_spec(config.system_len).sample(rng["system"], config.system_prompts),
        cap=config.max_total_tokens // 2,
    )
    weights = 1.0 / np.arange(1, config.system_prompts + 1) ** config.zipf
    user = parse_length_spec(config.user_len)
    answer = parse_length_spec(config.output_len)
    rows: list[tuple] = []  # (arrival_s, session, tenant idx, prompt, output, prefix ids)
    session, start_s = 0, 0.0
    session_gap = poisson_gaps(rng["session"], 1, config.rate_per_s / config.turns)[0]
    while len(rows) < n:
        tenant = int(rng["tenant"].choice(len(specs), p=_norm([w for _, _, w in specs])))
        system = int(rng["system"].choice(config.system_prompts, p=weights / weights.sum()))
        history = int(sys_lengths[system])
        ids = _stream_ids(config, system, history, session)
        t = start_s
        for _ in range(int(rng["session"].geometric(1.0 / config.turns))):
            u = int(finalise(user.sample(rng["lengths"], 1), cap=config.max_total_tokens)[0])
            o = int(finalise(answer.sample(rng["lengths"], 1), cap=config.max_total_tokens)[0])
            prompt = history + u
            if prompt + o > config.max_total_tokens or len(rows) >= n:
                break
            rows.append((t, session, tenant, prompt, o, ids(prompt // config.chunk_tokens)))
            history = prompt + o
            t += rng["think"].exponential(config.think_time_s) if config.think_time_s else 0.0
        session += 1
        start_s += session_gap
        session_gap = poisson_gaps(rng["session"], 1, config.rate_per_s / config.turns)[0]
    rows.sort(key=lambda r: r[0])  # stable: a session's turns keep their order at equal times
    arrival = np.array([r[0] for r in rows], dtype=np.float64)
    arrival -= arrival[0]
    idx = np.array([r[2] for r in rows])
    tenants = _categorical([t for t, _, _ in specs], idx)
    tiers = _categorical([tier for _, tier, _ in specs], idx)
    prompt = np.array([r[3] for r in rows], dtype=np.int64)
    output = np.array([r[4] for r in rows], dtype=np.int64)
    cats = pd.Categorical(categories_from_output(output, rng["category"], config.category_noise))
    frame = request_frame(
        "turn",
        arrival,
        tenants,
        tiers,
        cats,
        prompt,
        output,
        max_tokens_for(output, cats, config.max_tokens_rule),
    )
    frame["prefix"] = pd.array(
        [format_prefix(config.chunk_tokens, r[5]) for r in rows], dtype="string"
    )
    frame["x_session"] = np.array([r[1] for r in rows], dtype=np.int64)
    return Trace.from_frame(
        frame, "sessions", source="sessions", config=config.model_dump(mode="json")
    )


def _norm(w: list[float]) -> np.ndarray:
    a = np.asarray(w, dtype=float)
    return a / a.sum()


def _stream_ids(config: SessionsConfig, system: int, system_tokens: int, session: int):
    """``ids(k)``: the ids of the first ``k`` chunks of a session's token stream — the system
    prompt's while a chunk lies inside it, the session's after."""
    size = config.chunk_tokens
    own = (config.system_prompts + session) * SYSTEM_ID_SPAN

    def ids(k: int) -> tuple[int, ...]:
        return tuple(
            system * SYSTEM_ID_SPAN + i if (i + 1) * size <= system_tokens else own + i
            for i in range(k)
        )

    return ids
