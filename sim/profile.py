"""Cost-model profiles: versioned, self-describing data files (the *what*; the formula that reads
them is :mod:`driftsched.sim.costmodel`).

A profile holds the coefficients of the ``linear-v1`` step-time form, the engine settings it was
measured (or derived) with, its provenance — ``prior`` (derived from spec sheets) or
``measured`` — and, when fitted, its held-out quality. :meth:`Profile.build` is the one place a
profile is made (``calibrate.prior`` and ``calibrate.fit`` both call it). Profiles are looked up
by name (bundled under ``sim/profiles/``) or by path.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from driftsched.ground.config import Config, error_message
from driftsched.ground.errors import InputError, UnknownNameError

PROFILE_SCHEMA_VERSION = 1
DEFAULT_PROFILE = "l4-qwen1.5-1.8b-prior"


class EngineSettings(Config):
    """The engine configuration a profile was measured (or derived) with."""

    block_size: int = Field(16, ge=1)
    num_gpu_blocks: int = Field(ge=2, description="KV-cache capacity in blocks (incl. null)")
    max_num_seqs: int = Field(256, ge=1)
    max_num_batched_tokens: int = Field(2048, ge=1)
    max_model_len: int = Field(2048, ge=1)
    enable_chunked_prefill: bool = True
    reserve_full_prompt: bool = Field(
        True,
        description="admit a waiting request only if the KV blocks for its whole sequence are "
        "free, not just its first chunk (vLLM's scheduler_reserve_full_isl, default on in 0.32)",
    )
    enable_prefix_caching: bool = Field(
        False,
        description="automatic prefix caching as vLLM V1 does it (sim/prefixcache.py): a "
        "request's cached leading blocks skip prefill. vLLM enables it by default; driftsched's "
        "profiles are measured with it off, so it is off unless set (engine overrides)",
    )
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
        import math

        from driftsched.sim.costmodel import FEATURES  # (here: --help reads no cost model)

        unknown = sorted(set(v) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature {unknown[0]!r}; known: {', '.join(FEATURES)}")
        missing = [f for f, feat in FEATURES.items() if not feat.optional and f not in v]
        if missing:
            raise ValueError(
                f"missing coefficient {missing[0]!r} (required by the linear-v1 form; give 0 "
                "to leave a term out)"
            )
        bad = [f for f, c in v.items() if not math.isfinite(c)]
        if bad:
            raise ValueError(f"coefficient {bad[0]!r} is {v[bad[0]]}; expected a finite number")
        return v

    @field_validator("overheads_s")
    @classmethod
    def _overheads(cls, v: dict[str, float]) -> dict[str, float]:
        import math

        bad = [k for k, x in v.items() if not (math.isfinite(x) and x >= 0)]
        if bad:
            raise ValueError(f"overhead {bad[0]!r} is {v[bad[0]]}; expected a finite number >= 0")
        return v

    @model_validator(mode="after")
    def _positive_steps(self):
        from driftsched.sim.costmodel import BatchShape, feature_row

        shapes = {  # the smallest step of each kind an engine can run
            "a one-token prefill": BatchShape(1, 1.0, 1, 0, 0),
            "a one-request decode": BatchShape(0, 0.0, 0, 1, 1),
        }
        names = list(self.coefficients)
        coef = [self.coefficients[f] for f in names]
        for what, shape in shapes.items():
            seconds = sum(c * x for c, x in zip(coef, feature_row(shape, names), strict=True))
            if not seconds > 0:
                raise ValueError(
                    f"the coefficients give {what} step {seconds:g} s; a cost model's steps "
                    "must take time (all coefficients zero?)"
                )
        return self

    @classmethod
    def build(
        cls,
        name: str,
        coefficients: dict[str, float],
        engine: EngineSettings,
        provenance: Provenance,
        fit_quality: dict | None = None,
        overheads_s: dict[str, float] | None = None,
    ) -> Profile:
        """A profile of the current schema: coefficients and overheads rounded to 6
        significant digits, each coefficient's unit from the feature table."""
        from driftsched.sim.costmodel import FEATURES

        coefficients = {  # a required term the fit left out is written as 0
            f: coefficients.get(f, 0.0)
            for f, feat in FEATURES.items()
            if f in coefficients or not feat.optional
        }
        return cls(
            schema_version=PROFILE_SCHEMA_VERSION,
            name=name,
            coefficients={k: _sig6(v) for k, v in coefficients.items()},
            units={k: FEATURES[k].unit for k in coefficients},
            engine=engine,
            provenance=provenance,
            fit_quality=fit_quality,
            overheads_s={k: _sig6(v) for k, v in (overheads_s or {}).items()},
        )

    @property
    def kind(self) -> str:
        return self.provenance.kind

    def engine_settings(self, overrides: dict) -> EngineSettings:
        """This profile's engine settings with a run's ``engine`` overrides applied."""
        return EngineSettings(**{**self.engine.model_dump(), **overrides})

    def note(self) -> str:
        """One line every output carries: which cost model, and whether it is a prior (derived
        from spec sheets) or measured — the one wording console, files and figures use."""
        p = self.provenance
        return cost_model_note(self.name, self.kind, p.hardware, p.model)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"

    def write(self, path: str | Path) -> Path:
        from driftsched.ground.atomic import write_text

        write_text(path, self.to_json())
        return Path(path)


def cost_model_label(name: str, kind: str) -> str:
    """The one wording of "which cost model, prior or measured": ``NAME — PRIOR (derived from
    specs, not measured)`` or ``NAME — measured``."""
    said = "PRIOR (derived from specs, not measured)" if kind == "prior" else "measured"
    return f"{name} — {said}"


def cost_model_note(name: str, kind: str, hardware: str, model: str) -> str:
    """:func:`cost_model_label` with the hardware and model, as every output's line (see
    :meth:`Profile.note`)."""
    return f"cost model: {cost_model_label(name, kind)}; {hardware}, {model}"


def bundled_profiles() -> list[str]:
    """Names of the profiles shipped with driftsched."""
    folder = resources.files("driftsched.sim") / "profiles"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


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
        raise InputError(f"{source}: field {field!r}: {error_message(err)}") from None


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


def _sig6(value: float) -> float:
    return float(f"{value:.6g}")
