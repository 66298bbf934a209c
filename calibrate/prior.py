"""Roofline *prior* profiles for hardware we do not have: GPU spec sheet + model config.json.

Not measured. Every profile made here says ``provenance.kind = "prior"``; a measured profile
always wins. The inputs (spec sheets, architectures) are :mod:`driftsched.calibrate.specs`; the
efficiency terms are fitted to public measurements (:mod:`driftsched.calibrate.priorfit`, per
GPU generation) or the first prior's hand-picked ``roofline-v1``. The derivation
(docs/model.md has the full argument; :func:`step_terms` is the one formula):

- weights read once per step: ``const = weight_bytes / (mem_bw * eta_mem) + step_overhead_s``
- prefill GEMMs: ``prefill_tokens = 2 * P_layers / (peak_flops * eta_flop)``
- prefill attention: ``prefill_attention = 4 * layers * q_heads * head_dim / (peak * eta_flop)``
  per (query, key) pair (QK^T and AV, 2 FLOPs per multiply-add)
- logits for each sequence that samples: ``2 * P_lm_head / (peak * eta_flop)`` per request,
  plus ``per_request_overhead_s`` (sampling, input preparation)
- decode attention reads the KV cache: ``decode_context_tokens = kv_bytes_per_token /
  (mem_bw * eta_mem)``, with ``kv_bytes_per_token = 2 * layers * kv_heads * head_dim * dtype``

The sum of memory and compute terms is an upper bound of the roofline's ``max``; for the small
decode batches this study runs, the weight read dominates and the bound is tight.
KV capacity follows vLLM's sizing: ``(usable_memory * gpu_memory_utilization - weights -
activation_reserve) / (block_size * kv_bytes_per_token)`` blocks.

With tensor parallelism over ``tp`` GPUs, weights, KV cache and FLOPs are split evenly:
bandwidth, compute and memory scale by ``tp``, and each step pays ``2 * layers`` all-reduces of
the activations, modelled as a fixed ``tp_allreduce_s`` per all-reduce (NVLink latency-bound
for decode-sized messages). An approximation, stated as such in the profile.

Without CUDA graphs (``enforce_eager``, as the reference study ran vLLM) every step also pays
``eager_layer_overhead_s`` per layer: the kernel launches a graph would replay.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from driftsched.calibrate.specs import (  # noqa: F401  (re-exported: the prior's inputs)
    GPUS,
    MODELS,
    SPEC_TABLE_DATE,
    GpuSpec,
    ModelArch,
    load_model_config,
)
from driftsched.sim.profile import EngineSettings, Profile, Provenance
from pydantic import Field

from driftsched.ground.config import Config
from driftsched.ground.errors import InputError, canonical_name


class Efficiency(Config):
    """Efficiency assumptions (fractions of peak actually achieved, overheads per step).

    The defaults are the hand-picked roofline factors of the first prior (``source
    "roofline-v1"``); :mod:`driftsched.calibrate.priorfit` fits them to public measurements
    (``source "fitted"``), and :func:`derive_prior` uses the fitted ones unless told otherwise.
    """

    eta_mem: float = Field(0.75, gt=0, le=1, description="achieved / peak memory bandwidth")
    eta_flop: float = Field(0.45, gt=0, le=1, description="achieved / peak tensor FLOP/s")
    step_overhead_s: float = Field(
        0.003, ge=0, description="scheduler, launch, sync per step (CUDA graphs on)"
    )
    per_request_overhead_s: float = Field(20e-6, ge=0, description="sampling, input prep")
    eager_layer_overhead_s: float = Field(
        0.0,
        ge=0,
        description="extra per step and layer without CUDA graphs (enforce_eager): kernel "
        "launches the graphs would replay",
    )
    activation_reserve_gib: float = Field(1.5, ge=0, description="peak activations, graphs")
    tp_allreduce_s: float = Field(
        12e-6, ge=0, description="one activation all-reduce across tensor-parallel GPUs"
    )
    source: str = Field("roofline-v1", description="roofline-v1 (hand-picked) or fitted")


#: the cost-model features a prior sets, in profile order
PRIOR_FEATURES = (
    "const", "prefill_tokens", "prefill_attention", "prefill_requests", "decode_requests",
    "decode_context_tokens",
)  # fmt: skip

#: what each fitted efficiency term multiplies (see :func:`step_terms`)
TERM_PARAMS = {
    "memory": "1 / eta_mem",
    "compute": "1 / eta_flop",
    "step": "step_overhead_s",
    "request": "per_request_overhead_s",
    "eager": "eager_layer_overhead_s",
}


def step_terms(
    spec: GpuSpec, arch: ModelArch, *, dtype_bytes: int = 2, tensor_parallel: int = 1
) -> dict[str, dict[str, float]]:
    """The prior's coefficients split by the efficiency term that scales them: ``{term:
    {feature: value}}``, so that ``coefficients[f] = sum(param(term) * terms[term][f])`` with
    the parameters of :data:`TERM_PARAMS` (term ``fixed`` is not scaled: tensor-parallel
    all-reduces, added by :func:`derive_prior`). One formula for deriving and for fitting
    (module docstring)."""
    tp = tensor_parallel
    bw = spec.memory_bandwidth_gbs * 1e9 * tp
    flops = spec.dense_fp16_tflops * 1e12 * tp
    weight_bytes_read = (arch.layer_params() + arch.lm_head_params()) * dtype_bytes
    attention = 4 * arch.num_hidden_layers * arch.num_attention_heads * arch.dim_per_head
    return {
        "memory": {
            "const": weight_bytes_read / bw,
            "decode_context_tokens": arch.kv_bytes_per_token(dtype_bytes) / bw,
        },
        "compute": {
            "prefill_tokens": 2 * arch.layer_params() / flops,
            "prefill_attention": attention / flops,
            "prefill_requests": 2 * arch.lm_head_params() / flops,
            "decode_requests": 2 * (arch.layer_params() + arch.lm_head_params()) / flops,
        },
        "step": {"const": 1.0},
        "request": {"prefill_requests": 1.0, "decode_requests": 1.0},
        "eager": {"const": float(arch.num_hidden_layers)},
    }


def term_params(eff: Efficiency, enforce_eager: bool) -> dict[str, float]:
    """The value of each :data:`TERM_PARAMS` parameter under ``eff``."""
    return {
        "memory": 1 / eff.eta_mem,
        "compute": 1 / eff.eta_flop,
        "step": eff.step_overhead_s,
        "request": eff.per_request_overhead_s,
        "eager": eff.eager_layer_overhead_s if enforce_eager else 0.0,
    }


FITTED = Path(__file__).parent / "data" / "fitted_prior.json"


class FittedPrior(Config):
    """Efficiency terms fitted to public measurements (``driftsched calibrate fit-prior``,
    :mod:`driftsched.calibrate.priorfit`): one set per GPU generation the data covers, and a
    pooled set (every row) for a generation it does not."""

    version: str
    pooled: Efficiency
    generations: dict[str, Efficiency] = Field(default_factory=dict)
    training: list[str] = Field(description="ids of the measurements fitted (data file)")
    eager_sources: list[str] = Field(default_factory=list)

    def for_gpu(self, gpu: str) -> Efficiency:
        """The GPU's generation's terms when the data has that generation, else pooled."""
        return self.generations.get(GPUS[gpu].generation, self.pooled)


@cache
def fitted_prior(path: str | None = None) -> FittedPrior:
    """The shipped fit (or another file written by ``calibrate fit-prior``)."""
    from driftsched.ground.config import build_json

    return build_json(FittedPrior, path or FITTED, "the fitted prior")


def fitted_efficiency(gpu: str) -> Efficiency:
    """:meth:`FittedPrior.for_gpu` of the shipped fit."""
    return fitted_prior().for_gpu(canonical_name(gpu, GPUS, "GPU"))


def _price(gpu: str, usd_per_gpu_hour: float | None) -> dict:
    from driftsched.calibrate.prices import PRICE_TABLE_DATE, PRICES

    if usd_per_gpu_hour is not None:
        if not usd_per_gpu_hour > 0:
            raise InputError(f"the GPU price must be > 0 USD per hour, got {usd_per_gpu_hour}")
        return {"price": {"usd_per_gpu_hour": usd_per_gpu_hour, "source": "given"}}
    if gpu not in PRICES:
        return {}
    p = PRICES[gpu]
    return {
        "price": {
            "usd_per_gpu_hour": p.usd_per_hour,
            "source": p.source,
            "table_date": PRICE_TABLE_DATE,
        }
    }


def derive_prior(
    gpu: str,
    model: str,
    *,
    dtype_bytes: int = 2,
    dtype: str = "float16",
    gpu_memory_utilization: float = 0.70,
    max_model_len: int = 2048,
    max_num_seqs: int = 256,
    max_num_batched_tokens: int = 2048,
    block_size: int = 16,
    tensor_parallel: int = 1,
    efficiency: Efficiency | None = None,
    enforce_eager: bool = False,
    usd_per_gpu_hour: float | None = None,
    name: str | None = None,
) -> Profile:
    """Derive a roofline prior profile (see module docstring). Deterministic.

    ``efficiency`` defaults to the fitted one for the GPU's generation
    (:func:`fitted_efficiency`); ``enforce_eager`` models vLLM without CUDA graphs (each step
    pays ``eager_layer_overhead_s`` per layer), as the reference study ran it. The profile
    carries the GPU's hourly price (``usd_per_gpu_hour``, else the dated default table of
    :mod:`driftsched.calibrate.prices`, if it has the GPU), so a capacity search on it says
    what its capacity costs."""
    gpu = canonical_name(gpu, GPUS, "GPU")
    if tensor_parallel < 1:
        raise InputError(f"tensor_parallel must be >= 1, got {tensor_parallel}")
    spec, arch = GPUS[gpu], load_model_config(model)
    eff = efficiency or fitted_efficiency(gpu)
    tp = tensor_parallel
    terms = step_terms(spec, arch, dtype_bytes=dtype_bytes, tensor_parallel=tp)
    params = term_params(eff, enforce_eager)
    coefficients = dict.fromkeys(PRIOR_FEATURES, 0.0)
    for term, features in terms.items():
        for feature, value in features.items():
            coefficients[feature] += params[term] * value
    if tp > 1:
        coefficients["const"] += 2 * arch.num_hidden_layers * eff.tp_allreduce_s
    kv_per_token = arch.kv_bytes_per_token(dtype_bytes)
    weight_gib = arch.weight_params() * dtype_bytes / 2**30
    kv_gib = (
        spec.usable_memory_gib * tp * gpu_memory_utilization
        - weight_gib
        - eff.activation_reserve_gib * tp
    )
    if kv_gib <= 0:
        raise InputError(
            f"{model} ({weight_gib:.1f} GiB of weights) does not fit on {tp} x {gpu} at "
            f"gpu_memory_utilization {gpu_memory_utilization}"
        )
    num_blocks = int(kv_gib * 2**30 // (block_size * kv_per_token))
    if num_blocks - 1 < -(-max_model_len // block_size):
        raise InputError(
            f"{model} on {tp} x {gpu} leaves {kv_gib:.2f} GiB for the KV cache at "
            f"gpu_memory_utilization {gpu_memory_utilization}: not one request of "
            f"max_model_len {max_model_len} fits; use more GPUs (--tp) or more memory"
        )
    slug = arch.name.split("/")[-1].lower().removesuffix("-chat")
    slug += f"-tp{tp}" if tp > 1 else ""
    slug += "-eager" if enforce_eager else ""
    return Profile.build(
        name=name or f"{gpu.lower()}-{slug}-prior",
        coefficients=coefficients,
        engine=EngineSettings(
            block_size=block_size,
            num_gpu_blocks=num_blocks,
            max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens,
            max_model_len=max_model_len,
            enable_chunked_prefill=True,
            gpu_memory_utilization=gpu_memory_utilization,
            dtype=dtype,
        ),
        provenance=Provenance(
            kind="prior",
            hardware=f"NVIDIA {gpu}" + (f" x{tp} (tensor parallel)" if tp > 1 else ""),
            model=arch.name,
            engine="vllm",
            engine_version=None,
            date=SPEC_TABLE_DATE,
            method="roofline prior from public spec sheets and the model's config.json, "
            f"efficiency {eff.source}, "
            + ("no CUDA graphs (enforce_eager)" if enforce_eager else "CUDA graphs on")
            + "; NOT MEASURED (driftsched calibrate prior)",
            details={
                "gpu": spec.model_dump(),
                "model": arch.model_dump(),
                "efficiency": eff.model_dump(),
                "cuda_graphs": not enforce_eager,
                **_price(gpu, usd_per_gpu_hour),
                "weight_gib": round(weight_gib, 3),
                "kv_bytes_per_token": kv_per_token,
                "kv_cache_gib": round(kv_gib, 3),
                "tensor_parallel": tp,
            },
        ),
        fit_quality=None,
    )
