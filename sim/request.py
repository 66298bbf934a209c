"""What the gateway knows about a request, and what policies and correctors may see.

The true output length is *not* a field of :class:`Admission` or :class:`RequestView`: a policy
or corrector handed one of these cannot read it, by construction. The simulator keeps the truth
in its own arrays, indexed by ``index``, and only the engine (which generates the tokens) and the
oracle corrector (explicitly given a ``truth`` function) ever consult it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: a named tuple from a tuple of all its fields, ``from_fields(Admission, values)``, without
#: the Python-level ``__new__`` its class has (a frame per call): how the hot path builds one
#: per arrival and per engine step
from_fields = tuple.__new__

#: a request's optional targets, trace columns (NaN where not given)
SLO_COLUMNS = ("ttft_slo_s", "e2e_slo_s")


def slo_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The trace's :data:`SLO_COLUMNS` as float arrays (all NaN for a column it lacks)."""
    import numpy as np

    return {
        c: frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
        if c in frame.columns
        else np.full(len(frame), np.nan)
        for c in SLO_COLUMNS
    }


class Admission(NamedTuple):
    """A request as it reaches the gateway, before any estimate: the client-visible fields.
    Immutable (a named tuple: cheap to create a million of)."""

    index: int  # row in the trace; unique within a run
    request_id: str
    arrival_s: float
    tenant: str
    tier: str
    tier_rank: int  # premium 1, standard 2, batch 3, or the integer tier; lower goes first
    category: str
    prompt_tokens: int
    max_tokens: int
    ttft_slo_s: float  # the request's targets, from the trace (NaN: none given)
    e2e_slo_s: float


class RequestView(NamedTuple):
    """A queued request as a gateway policy sees it: the admission plus the gateway's estimate.
    Immutable."""

    index: int
    request_id: str
    arrival_s: float
    tenant: str
    tier: str
    tier_rank: int
    category: str
    prompt_tokens: int
    max_tokens: int
    ttft_slo_s: float
    e2e_slo_s: float
    estimate_tokens: int  # the drift corrector's output-length estimate at admission
    est_class: str  # job class under the estimate: short | medium | long
    seq: int  # admission order within the gateway (ties are broken by it)
    #: the corrector's length distribution (``mean``, ``quantile(q)``, ``cvar(alpha)``:
    #: :mod:`driftsched.sim.correctors.distribution`), or None when it offers none
    estimate_dist: object = None

    @property
    def budget_tokens(self) -> int:
        """Estimated total work: prompt plus estimated output tokens."""
        return self.prompt_tokens + self.estimate_tokens


class Outcome(NamedTuple):
    """What happened to a finished request, as a policy's ``on_finish`` hook learns it
    (post-hoc, like a corrector's ``observe``). Seconds on the run's clock."""

    output_tokens: int  # the true output length
    queue_wait_s: float  # dispatch - arrival
    ttft_s: float  # first token - arrival
    e2e_s: float  # last token - arrival (micro-batches: the client waits for the batch, later)
    finish_s: float  # when the last token was produced
