"""The engine step-time cost model: one feature table, read by prediction and by fitting.

``CostModel(profile).step_seconds(shape, admitted)`` is all the simulator asks: the full time of
one engine step of that :class:`BatchShape`, overheads outside the engine step included. The
``linear-v1`` form is

    step_s = max(0, sum(coefficients[f] * feature_f(shape)))        (the engine step)
           + output_per_step_s + output_per_request_s * requests   (the profile's overheads)
           + admission_s * requests admitted this step

over the features in :data:`FEATURES`; a profile uses any subset. Each feature is written once,
as an expression over the shape's fields that holds for plain numbers and for numpy arrays:
:class:`CostModel` compiles the profile's terms into one function when it is built (so a step
costs one call and no loop), and :func:`design_matrix` evaluates the same expressions over a
table of measured steps for fitting (``driftsched.calibrate.fit``). Profiles — the data — are
:mod:`driftsched.sim.profile`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np
    from driftsched.sim.profile import Profile

#: the batch-size threshold of the ``decode_requests_small`` feature
SMALL_BATCH = 16


class BatchShape(NamedTuple):
    """The composition of one engine step.

    ``prefill_attention`` is the number of (query, key) pairs the prefill chunks attend over:
    a chunk of n tokens after c computed tokens contributes ``n * c + n * (n + 1) / 2``.
    ``decode_context_tokens`` is the total KV length the decoding requests attend over
    (each request's computed tokens plus its new one).
    """

    prefill_tokens: int = 0
    prefill_attention: float = 0.0
    prefill_requests: int = 0
    decode_requests: int = 0
    decode_context_tokens: int = 0

    @property
    def num_tokens(self) -> int:
        return self.prefill_tokens + self.decode_requests

    @property
    def num_requests(self) -> int:
        return self.prefill_requests + self.decode_requests


class Feature(NamedTuple):
    """One term of the form: the unit of its coefficient, and its value as an expression over
    :class:`BatchShape` field names (``minimum`` and ``SMALL_BATCH`` available)."""

    unit: str
    expr: str
    #: a profile may leave an optional term out (it then adds nothing); a required one must be
    #: given, 0 included, so a typo or a truncated file is never read as "free"
    optional: bool = False


#: feature name -> unit and expression, in the order terms are summed
FEATURES: dict[str, Feature] = {
    "const": Feature("s/step", "1.0"),
    "prefill_tokens": Feature("s/token", "prefill_tokens"),
    "prefill_attention": Feature("s/token-pair", "prefill_attention"),
    "prefill_requests": Feature("s/request", "prefill_requests"),
    "decode_requests": Feature("s/request", "decode_requests"),
    "decode_context_tokens": Feature("s/token", "decode_context_tokens"),
    # the first SMALL_BATCH decoding sequences cost more each than later ones (concave batch
    # cost: per-sequence work amortises over a batch); see docs/calibrate.md
    "decode_requests_small": Feature(
        "s/request", "minimum(decode_requests, SMALL_BATCH)", optional=True
    ),
}
#: the one feature that changes within a run of decode-only steps (each step adds one context
#: token per decoding request); every other feature is constant over such a run, which is what
#: makes :meth:`CostModel.run_seconds` a closed form
RUN_GROWTH_FEATURE = "decode_context_tokens"


def chunk_attention(chunk_tokens: int, context_tokens: int) -> float:
    """(query, key) pairs of a prefill chunk of ``chunk_tokens`` after ``context_tokens``."""
    return chunk_tokens * context_tokens + chunk_tokens * (chunk_tokens + 1) / 2


def feature_row(shape: BatchShape, features: list[str]) -> list[float]:
    """The ``features``' values for one shape, as plain floats (one row of
    :func:`design_matrix`, without numpy)."""
    scope = {**shape._asdict(), "minimum": min, "SMALL_BATCH": SMALL_BATCH}
    return [float(eval(FEATURES[f].expr, {}, scope)) for f in features]  # noqa: S307


def design_matrix(columns, features: list[str]) -> np.ndarray:
    """One float64 column per feature, evaluated from :data:`FEATURES` over ``columns`` (a
    DataFrame or a mapping of shape-field name -> array, one row per step)."""
    import numpy as np

    n = len(columns[BatchShape._fields[0]])
    scope = {f: np.asarray(columns[f], dtype=np.float64) for f in BatchShape._fields}
    scope.update(minimum=np.minimum, SMALL_BATCH=SMALL_BATCH)
    cols = [np.broadcast_to(eval(FEATURES[f].expr, {}, scope), (n,)) for f in features]  # noqa: S307
    return np.column_stack(cols).astype(np.float64) if cols else np.empty((n, 0))


def _compile(coefficients: dict[str, float], overheads: dict[str, float]):
    """``(step_time, step_seconds)`` for these coefficients: the non-zero terms of
    :data:`FEATURES`, in table order, as literals (a zero term adds exactly nothing)."""
    terms = [
        repr(c) if FEATURES[name].expr == "1.0" else f"{c!r} * ({FEATURES[name].expr})"
        for name, c in ((n, coefficients.get(n, 0.0)) for n in FEATURES)
        if c != 0.0
    ]
    fields = ", ".join(BatchShape._fields)
    step = overheads.get("output_per_step_s", 0.0)
    request = overheads.get("output_per_request_s", 0.0)
    admission = overheads.get("admission_s", 0.0)
    source = f"""
def step_time(shape):
    {fields} = shape
    t = {" + ".join(terms) or "0.0"}
    return t if t > 0.0 else 0.0

def step_seconds(shape, admitted=0):
    {fields} = shape
    t = {" + ".join(terms) or "0.0"}
    if not t > 0.0:
        t = 0.0
    if prefill_requests:
        return t + ({step!r} + {request!r} * (prefill_requests + decode_requests)
                    + {admission!r} * admitted)
    return t + {step!r} + {request!r} * decode_requests
"""
    scope = {"minimum": min, "SMALL_BATCH": SMALL_BATCH}
    exec(compile(source, "<driftsched cost model>", "exec"), scope)  # noqa: S102
    return scope["step_time"], scope["step_seconds"]


class CostModel:
    """Predicts step durations from a :class:`~driftsched.sim.profile.Profile` (linear-v1).

    ``overheads=False`` leaves out the profile's times outside the engine step (the
    ``overheads`` simulation setting)."""

    def __init__(self, profile: Profile, overheads: bool = True):
        self.profile = profile
        c = profile.coefficients
        self.coefficients = {name: c.get(name, 0.0) for name in FEATURES}
        self._growth = self.coefficients[RUN_GROWTH_FEATURE]
        self.step_time, self.step_seconds = _compile(
            self.coefficients, profile.overheads_s if overheads else {}
        )

    # step_time(shape) -> seconds: the engine step alone (never negative)
    # step_seconds(shape, admitted=0) -> seconds: the step plus the profile's overheads around
    # it; ``admitted`` counts the requests the step admits (each pays ``admission_s``)

    @property
    def closed_form_runs(self) -> bool:
        """Whether :meth:`run_seconds` is exact: no coefficient is negative, so no step time is
        ever clipped at zero."""
        return all(c >= 0.0 for c in self.coefficients.values())

    def run_seconds(self, first_s: float, decode_requests: int, steps: int) -> float:
        """Seconds for ``steps`` consecutive decode-only steps with ``decode_requests`` decoding,
        the first lasting ``first_s`` (its :meth:`step_seconds`), each later one with one more
        context token per decoding request (and the same overheads):
        ``steps * first_s + c_ctx * decode_requests * steps * (steps - 1) / 2``."""
        growth = self._growth * decode_requests
        return steps * first_s + growth * (steps * (steps - 1) / 2)

    def steps_within(self, first_s: float, decode_requests: int, seconds: float) -> int:
        """The fewest steps (>= 1) of such a run (see :meth:`run_seconds`) that last at least
        ``seconds``."""
        if seconds <= 0.0:
            return 1
        a = first_s
        g = self._growth * decode_requests
        if g > 0.0:  # g/2 k^2 + (a - g/2) k >= seconds
            b = a - g / 2
            k = int((-b + math.sqrt(b * b + 2 * g * seconds)) / g)
        elif a > 0.0:
            k = int(seconds / a)
        else:
            return 1 << 62
        k = max(1, k)
        # the root is within a step of the answer; settle it with the exact closed form
        while k > 1 and (k - 1) * a + g * ((k - 1) * (k - 2) / 2) >= seconds:
            k -= 1
        while k * a + g * (k * (k - 1) / 2) < seconds:
            k += 1
        return k
