"""vLLM benchmark result files as measurements for the prior's fit.

``vllm bench serve --save-result`` (and its predecessor ``benchmarks/benchmark_serving.py``)
writes one JSON file per run: the run's settings (``request_rate``, ``max_concurrency``,
``num_prompts``, ``date``), every request's prompt and output length (``input_lens``,
``output_lens``) and the summary statistics (``median_ttft_ms``, ``median_tpot_ms``,
``output_throughput``, ...). The ~1,200 files of LambdaLabsML/vllm-benchmark are of this
format, and so is what a user gets by benchmarking their own GPU.

:func:`measurement_from_result` turns one file into a :class:`~driftsched.calibrate.
measurements.Measurement` row — the workload replayed through the engine model, the published
medians (or means) as the row's measured metrics — and :func:`add_measurement` appends it to a
measurements file that ``driftsched calibrate fit-prior --data`` fits. What the file cannot say
(the GPU, the model's config, CUDA graphs or eager, the engine's limits, the source) the caller
states. Arrivals: ``max_concurrency`` set -> a closed loop of that many; ``request_rate`` inf ->
a burst; a finite rate -> Poisson at that rate, drawn again by the engine model's seed (the
benchmark's own draws are not in the file, so a Poisson row is a like-for-like workload, not
the same arrivals).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from driftsched.calibrate.measurements import (
    DATA,
    Measurement,
    PublicData,
    engine_settings,
    load_measurements,
)
from driftsched.calibrate.specs import GPUS, load_model_config

from driftsched.ground.config import build, build_json
from driftsched.ground.errors import InputError, canonical_name

#: the result file's summary field for each measured metric, by statistic
RESULT_FIELDS = {
    "ttft_ms": "{stat}_ttft_ms",
    "tpot_ms": "{stat}_tpot_ms",
    "output_tok_per_s": "output_throughput",
    "requests_per_s": "request_throughput",
}


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read a vLLM benchmark result: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object (vLLM's --save-result file)")
    return data


def _lengths(data: dict, key: str, path: Path) -> list[int]:
    values = data.get(key)
    if not isinstance(values, list) or not values:
        raise InputError(
            f"{path}: field {key!r}: expected the per-request lengths a result saved with "
            "vLLM's --save-result holds (a non-empty list of whole numbers)"
        )
    for i, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InputError(f"{path}: field {key!r}, entry {i}: expected a whole number >= 0")
    return values


def _arrivals(data: dict, path: Path) -> dict:
    concurrency = data.get("max_concurrency")
    if concurrency is not None:
        return {"arrivals": "closed", "concurrency": concurrency}
    rate = data.get("request_rate", "inf")
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise InputError(
            f"{path}: field 'request_rate': expected a number or 'inf', got {rate!r}"
        ) from None
    return (
        {"arrivals": "burst"} if math.isinf(rate) else {"arrivals": "poisson", "rate_per_s": rate}
    )


def measurement_from_result(
    path: str | Path,
    *,
    gpu: str,
    model: str,
    source: str,
    vllm_version: str,
    id: str | None = None,
    tensor_parallel: int = 1,
    cuda_graphs: bool = True,
    scheduler_steps: int = 1,
    engine: dict | None = None,
    stat: str = "median",
    not_fitted: dict[str, str] | None = None,
    notes: str = "",
) -> Measurement:
    """One result file as a measurement row (checked as the shipped table's rows are)."""
    path = Path(path)
    data = _read(path)
    inputs, outputs = _lengths(data, "input_lens", path), _lengths(data, "output_lens", path)
    if len(inputs) != len(outputs):
        raise InputError(
            f"{path}: 'input_lens' has {len(inputs)} requests and 'output_lens' {len(outputs)}; "
            "expected one length of each per request"
        )
    measured: dict = {"stat": stat}
    for metric, field in RESULT_FIELDS.items():
        value = data.get(field.format(stat=stat))
        if value is not None:  # a bad value is refused by the row's own check, naming it
            measured[metric] = value
    gpu = canonical_name(gpu, GPUS, "GPU")
    load_model_config(model)  # a known model or a config.json, else one line
    engine_settings(engine or {}, inputs, outputs, f"{path}: --engine-arg")  # as replayed
    name = id or "-".join(
        [path.stem.lower(), gpu.lower(), f"n{len(inputs)}"]
        + ([f"tp{tensor_parallel}"] if tensor_parallel > 1 else [])
    )
    row = {
        "id": name,
        "gpu": gpu,
        "tensor_parallel": tensor_parallel,
        "model": model,
        "vllm_version": vllm_version,
        "cuda_graphs": cuda_graphs,
        "scheduler_steps": scheduler_steps,
        "date": str(data.get("date", "")),
        "engine": engine or {},
        "workload": {**_arrivals(data, path), "input_tokens": inputs, "output_tokens": outputs},
        "measured": measured,
        "not_fitted": not_fitted or {},
        "source": source,
        "notes": notes,
    }
    return build(Measurement, row, f"{path} (as a measurement)")


def add_measurement(data_path: str | Path, m: Measurement) -> PublicData:
    """Append ``m`` to the measurements file ``data_path`` (atomically; a new file starts as a
    copy of the shipped table, so a fit on it is the shipped data plus the user's rows). An id
    already in the file is refused."""
    data_path = Path(data_path)
    if data_path.exists():
        current = build_json(PublicData, data_path, "measurements")
    else:
        current = load_measurements(str(DATA))
    if m.id in {row.id for row in current.measurements}:
        raise InputError(f"{data_path}: a measurement with id {m.id!r} is already there")
    updated = current.model_copy(update={"measurements": [*current.measurements, m]})
    write_measurements(data_path, updated)
    return updated


def write_measurements(path: str | Path, data: PublicData) -> Path:
    """Atomically write a measurements file: indented JSON, each list of numbers on one line
    (a 320-request workload stays two lines)."""
    import re

    from driftsched.ground.atomic import write_text

    text = json.dumps(data.model_dump(mode="json", exclude_none=True), indent=1)
    numbers = re.compile(r"\[\s+(-?[\d.eE+-]+(?:,\s+-?[\d.eE+-]+)*)\s+\]")
    text = numbers.sub(lambda m: "[" + ", ".join(v.strip() for v in m[1].split(",")) + "]", text)
    return write_text(path, text + "\n")
