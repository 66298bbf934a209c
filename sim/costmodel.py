"""The engine step-time cost model: a versioned *profile* (data) and a narrow predictor (code).

``CostModel.step_time(shape) -> seconds`` is all the simulator asks. The ``linear-v1`` form is

    step_s = sum(coefficients[f] * feature_f(shape))

over the features in :data:`FEATURES` (a profile may use any subset). Fitting lives apart, in
``driftsched.calibrate``; priors for hardware we do not have come from
``driftsched.calibrate.prior``. Profiles are JSON files looked up by name (bundled under
``sim/profiles/``) or by path.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import Field, ValidationError, field_validator, model_validator

from driftsched.ground.config import Config
from driftsched.ground.errors import InputError, UnknownNameError

PROFILE_SCHEMA_VERSION = 1
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


#: feature name -> (unit of its coefficient, function of the shape)
FEATURES = {
    "const": ("s/step", lambda s: 1.0),
    "prefill_tokens": ("s/token", lambda s: s.prefill_tokens),
    "prefill_attention": ("s/token-pair", lambda s: s.prefill_attention),
    "prefill_requests": ("s/request", lambda s: s.prefill_requests),
    "decode_requests": ("s/request", lambda s: s.decode_requests),
    "decode_context_tokens": ("s/token", lambda s: s.decode_context_tokens),
    # the first SMALL_BATCH decoding sequences cost more each than later ones (concave batch
    # cost: per-sequence work amortises over a batch); see docs/calibrate.md
    "decode_requests_small": ("s/request", lambda s: min(s.decode_requests, SMALL_BATCH)),
}


def chunk_attention(chunk_tokens: int, context_tokens: int) -> float:
    """(query, key) pairs of a prefill chunk of ``chunk_tokens`` after ``context_tokens``."""
    return chunk_tokens * context_tokens + chunk_tokens * (chunk_tokens + 1) / 2


class EngineSettings(Config):
    """The engine configuration a profile was measured (or derived) with."""

    block_size: int = Field(16, ge=1)
    num_gpu_blocks: int = Field(ge=2, description="KV-cache capacity in blocks (incl. null)")
    max_num_seqs: int = Field(256, ge=1)
    max_num_batched_tokens: int = Field(2048, ge=1)
    max_model_len: int = Field(2048, ge=1)
    enable_chunked_prefill: bool = True
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    dtype: str = "float16"

    @model_validator(mode="after")
    def _consistent(self):
        if self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError("max_num_batched_tokens must be >= max_num_seqs (vLLM requires it)")
        if not self.enable_chunked_prefill and self.max_num_batched_tokens < self.max_model_len:
            raise ValueError(
                "without chunked prefill, max_num_batched_tokens must be >= "
                "max_model_len (vLLM requires it)"
            )
        if self.num_gpu_blocks - 1 < -(-self.max_model_len // self.block_size):
            raise ValueError("the KV cache cannot hold one request of max_model_len tokens")
        return self


class Provenance(Config):
    kind: Literal["prior", "measured"]
    hardware: str
    model: str
    engine: str = "vllm"
    engine_version: str | None = None
    date: str
    method: str = Field(description="how the coefficients were obtained")
    details: dict = Field(default_factory=dict)


class Profile(Config):
    """A versioned, self-describing cost-model profile."""

    schema_version: int
    name: str
    model_form: Literal["linear-v1"] = "linear-v1"
    coefficients: dict[str, float]
    units: dict[str, str] = Field(default_factory=dict)
    engine: EngineSettings
    provenance: Provenance
    fit_quality: dict | None = None
    overheads_s: dict[str, float] = Field(
        default_factory=dict,
        description="fixed per-request times outside engine steps (admission, detokenise, ...)",
    )

    @field_validator("schema_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != PROFILE_SCHEMA_VERSION:
            raise ValueError(
                f"profile schema version {v} is not supported; expected {PROFILE_SCHEMA_VERSION}"
            )
        return v

    @field_validator("coefficients")
    @classmethod
    def _known(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature {unknown[0]!r}; known: {', '.join(FEATURES)}")
        return v

    @property
    def kind(self) -> str:
        return self.provenance.kind

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"

    def write(self, path: str | Path) -> Path:
        from driftsched.ground.atomic import write_text

        write_text(path, self.to_json())
        return Path(path)


class CostModel:
    """Predicts step durations from a :class:`Profile` (linear-v1)."""

    def __init__(self, profile: Profile):
        self.profile = profile
        c = profile.coefficients
        self._c = tuple(c.get(name, 0.0) for name in FEATURES)

    def step_time(self, shape: BatchShape) -> float:
        """Seconds for one engine step of this shape (never negative)."""
        c0, c_pt, c_pa, c_pr, c_dr, c_dc, c_ds = self._c
        dr = shape.decode_requests
        t = (
            c0
            + c_pt * shape.prefill_tokens
            + c_pa * shape.prefill_attention
            + c_pr * shape.prefill_requests
            + c_dr * dr
            + c_dc * shape.decode_context_tokens
            + c_ds * (dr if dr < SMALL_BATCH else SMALL_BATCH)
        )
        return t if t > 0.0 else 0.0

    @property
    def closed_form_runs(self) -> bool:
        """Whether :meth:`run_seconds` is exact: no coefficient is negative, so no step time is
        ever clipped at zero."""
        return all(c >= 0.0 for c in self._c)

    def run_seconds(self, first_s: float, decode_requests: int, steps: int) -> float:
        """Seconds for ``steps`` consecutive decode-only steps with ``decode_requests`` decoding,
        the first lasting ``first_s`` (its step time plus overheads), each later one with one
        more context token per decoding request (and the same overheads):
        ``steps * first_s + c_ctx * decode_requests * steps * (steps - 1) / 2``."""
        growth = self._c[5] * decode_requests
        return steps * first_s + growth * (steps * (steps - 1) / 2)

    def steps_within(self, first_s: float, decode_requests: int, seconds: float) -> int:
        """The fewest steps (>= 1) of such a run (see :meth:`run_seconds`) that last at least
        ``seconds``."""
        if seconds <= 0.0:
            return 1
        a = first_s
        g = self._c[5] * decode_requests
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


def bundled_profiles() -> list[str]:
    """Names of the profiles shipped with driftsched."""
    folder = resources.files("driftsched.sim") / "profiles"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


DEFAULT_PROFILE = "l4-qwen1.5-1.8b-prior"


def parse_profile(text: str, source: str) -> Profile:
    """Parse profile JSON text; one-line :class:`InputError` naming ``source`` on problems."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{source}: not valid JSON: {exc}") from None
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(profile)"
        raise InputError(f"{source}: field {field!r}: {err['msg']}") from None


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> Profile:
    """Load a bundled profile by name, or a profile file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise InputError(f"{path}: no such profile file")
        return parse_profile(path.read_text(), str(path))
    names = bundled_profiles()
    if str(name_or_path) not in names:
        raise UnknownNameError("profile", str(name_or_path), names)
    text = (resources.files("driftsched.sim") / "profiles" / f"{name_or_path}.json").read_text()
    return parse_profile(text, f"profile {name_or_path}")
