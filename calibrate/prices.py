"""GPU hourly prices for cost comparisons: a documented default table, overridable.

Prices move weekly and differ several times over between providers; these are on-demand list
figures of one GPU, dated and sourced, meant as a starting point. Pass your own
(``--price L4=0.70,H100=2.50`` on ``capacity``) for a real decision.
"""

from __future__ import annotations

from pydantic import Field

from driftsched.ground.config import Config
from driftsched.ground.errors import InputError, canonical_name

PRICE_TABLE_DATE = "2026-12-03"


class GpuPrice(Config):
    gpu: str
    usd_per_hour: float = Field(gt=0)
    source: str


_AWS = (
    "AWS on-demand, one-GPU instance incl. its host (as listed in citadelcloudmanagement.com, "
    "'GPU Infrastructure for AI Workloads: Cloud vs On-Prem Cost Analysis 2026')"
)
_MERCATUS = (
    "mid-point of the specialty-cloud on-demand range, mercatus-ai.com/blog/cloud-gpu-pricing "
    "(May 2026)"
)

PRICES: dict[str, GpuPrice] = {
    p.gpu: p
    for p in [
        GpuPrice(gpu="L4", usd_per_hour=0.805, source=f"g6.xlarge: {_AWS}"),
        GpuPrice(gpu="A10G", usd_per_hour=1.006, source=f"g5.xlarge: {_AWS}"),
        GpuPrice(gpu="L40S", usd_per_hour=1.862, source=f"g6e.xlarge: {_AWS}"),
        GpuPrice(
            gpu="A100-40GB",
            usd_per_hour=1.10,
            source="ASSUMED: no listed source found; set below the A100-80GB figure",
        ),
        GpuPrice(gpu="A100-80GB", usd_per_hour=1.30, source=f"$1.10-1.50: {_MERCATUS}"),
        GpuPrice(gpu="H100", usd_per_hour=3.00, source=f"SXM5 $2.50-3.50: {_MERCATUS}"),
        GpuPrice(gpu="H200", usd_per_hour=4.00, source=f"SXM5 $3.50-4.50: {_MERCATUS}"),
    ]
}


def gpu_prices(overrides: str | None = None) -> dict[str, GpuPrice]:
    """The table with ``overrides`` (``"GPU=USD,GPU=USD"``) applied."""
    prices = dict(PRICES)
    for item in (overrides or "").split(","):
        if not item.strip():
            continue
        gpu, sep, value = item.partition("=")
        try:
            usd = float(value)
        except ValueError:
            usd = -1.0
        if not sep or usd <= 0:
            raise InputError(f"--price: expected GPU=USD_PER_HOUR (USD > 0), got {item!r}")
        name = canonical_name(gpu.strip(), PRICES, "GPU")
        prices[name] = GpuPrice(gpu=name, usd_per_hour=usd, source="given on the command line")
    return prices
