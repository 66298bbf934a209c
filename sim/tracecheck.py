"""What of a trace an engine can run: requests present, each within ``max_model_len``.

:func:`usable` is the check every run makes before it starts; :func:`check_trace` makes it
without running (a sweep or search checks its workload this way before writing anything).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from driftsched.sim.config import SimConfig
from driftsched.sim.profile import EngineSettings, Profile, load_profile
from driftsched.traces.trace import Trace

from driftsched.ground.errors import InputError


def usable(trace: Trace, settings: EngineSettings, oversize: str) -> pd.DataFrame:
    """The trace's requests the engine can hold: all of them, or (``oversize='drop'``) those
    within ``max_model_len``; refuses a trace left with no request."""
    frame = trace.require_requests().frame
    total = (frame["prompt_tokens"] + frame["output_tokens"]).to_numpy()
    too_long = total > settings.max_model_len
    if too_long.any():
        if oversize == "error" or too_long.all():
            row = int(np.flatnonzero(too_long)[0])
            every = " (every row: nothing left to simulate)" if too_long.all() else ""
            raise InputError(
                f"{trace.origin}, row {row + 1} (request {frame['request_id'].iloc[row]!r}): "
                "prompt_tokens + "
                f"output_tokens = {total[row]} exceeds the engine's max_model_len "
                f"{settings.max_model_len} ({int(too_long.sum())} such rows{every}); drop them "
                "with oversize='drop' (--set oversize=drop) or use a profile with a longer "
                "context"
            )
        frame = frame.loc[~too_long].reset_index(drop=True)
    return frame.reset_index(drop=True)


def check_trace(trace: Trace, config: SimConfig, profile: Profile | None = None) -> int:
    """Check ``trace`` can be simulated under ``config`` without running it (requests present,
    lengths within the engine's ``max_model_len`` unless dropped); return how many requests
    ``oversize='drop'`` would leave out. Raises :class:`InputError` as :func:`simulate` would."""
    profile = profile or load_profile(config.profile)
    settings = profile.engine_settings(config.engine)
    return len(trace) - len(usable(trace, settings, config.oversize))
