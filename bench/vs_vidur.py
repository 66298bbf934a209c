"""driftsched vs Vidur: wall time to simulate the same workload on one vLLM-style replica.

    python bench/vs_vidur.py                    # 20,000 requests (first run: Vidur trains)
    python bench/vs_vidur.py --requests 100000

What it does:

1. Installs Vidur (PyPI ``vidur``) into its own venv (``--venv``, default
   ``~/.cache/driftsched/vidur-venv``); if that fails it prints why and exits 0 (skipped).
2. Writes Vidur's profiling data (``../shared/vidur-data``, see its README) into the Hugging
   Face cache layout Vidur reads offline. The only runnable configuration there is
   CodeLlama-34B on A100 with tensor parallelism 2, so both simulators model that.
3. Generates one workload: Poisson arrivals, log-normal prompts (median 600) and outputs
   (median 200), at 80% of the replica's capacity as driftsched's prior measures it
   (``a100-80gb`` x2, CodeLlama-34B, ``driftsched calibrate prior --tp 2``).
4. Runs Vidur's vLLM scheduler (batch cap 128, 4096 tokens per batch) on it: once to train and
   cache its execution-time models (not timed; one random-forest configuration instead of
   Vidur's grid search, to keep that under half an hour on two cores — the timed runs load
   cached predictions either way), then ``--repeats`` timed runs.
5. Runs driftsched (continuous mode, same caps) on it: in process, and through the CLI
   (``driftsched sim run --no-plots``: records, summaries and time series written, no figures,
   as Vidur runs with ``--no-metrics_config_store_plots``).

It prints both wall times (best of the repeats), the ratio, and each simulator's median E2E so
a reader can see both simulated a similar load. Vidur's wall time is its whole process (it
has no in-process API for a timed run); driftsched's is shown both ways.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VIDUR_VERSION = "0.0.26"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "vidur-data" / "profiling"
MODEL = "codellama/CodeLlama-34b-Instruct-hf"
DEVICE, NETWORK, TP = "a100", "a100_pairwise_nvlink", 2
BATCH_CAP, BATCH_TOKENS, MAX_TOKENS = 128, 4096, 4096
COMPUTE_DATASET = "driftsched/vidur-compute-a100-codellama-34b"
NETWORK_DATASET = "driftsched/vidur-network-a100-pairwise-nvlink"
TRACE_DATE = "2023-08-21"
#: each timed alone, ending as the CLI ends (``gc.freeze``: no shutdown collections; see
#: ``driftsched.cli.run``), so the figures are what the imports cost:
#: what ``sim run`` imports before it reads the trace (its fixed cost) ...
ENDS = "; import gc; gc.freeze()"
IMPORTS = (
    "import driftsched.cli, driftsched.cli.sim, driftsched.sim.simulation, "
    "driftsched.sim.result, driftsched.traces.trace, pyarrow.parquet" + ENDS
)
#: ... the third-party libraries among those (the floor no change inside driftsched can
#: lower; ``import pydantic`` alone is lazy: its models, ``pydantic.main``, are what costs) ...
LIBRARIES = (
    "import numpy, pandas, pyarrow.parquet, simpy, typer, rich.console, pydantic.main" + ENDS
)
#: ... and the same without pandas: the floor of a CLI that did not use pandas at all
WITHOUT_PANDAS = LIBRARIES.replace(" pandas,", "")


def skip(reason: str) -> None:
    print(f"skipped: {reason}")
    raise SystemExit(0)


def ensure_vidur(venv: Path) -> Path:
    """Vidur's venv python, installing it on first use."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import vidur.main"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing vidur=={VIDUR_VERSION} into {venv} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"vidur=={VIDUR_VERSION}"],
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        skip(f"could not install vidur ({exc})")
    if subprocess.run(check, capture_output=True).returncode != 0:
        err = subprocess.run(check, capture_output=True, text=True).stderr.strip().splitlines()
        skip(f"vidur installed but does not import: {err[-1] if err else '?'}")
    return python


def hf_dataset(root: Path, repo_id: str, files: dict[str, Path], config: dict) -> None:
    """Write ``files`` (CSV, xz-compressed on the way) and ``config.json`` as a cached Hugging
    Face dataset snapshot, which ``snapshot_download`` resolves with ``HF_HUB_OFFLINE=1``."""
    folder = root / ("datasets--" + repo_id.replace("/", "--"))
    revision = "0" * 40
    snap = folder / "snapshots" / revision
    if (snap / "config.json").exists():
        return
    snap.mkdir(parents=True, exist_ok=True)
    for name, src in files.items():
        with open(src, "rb") as f_in, lzma.open(snap / f"{name}.xz", "wb") as f_out:
            shutil.copyfileobj(f_in, f_out)
    (snap / "config.json").write_text(json.dumps(config))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(revision)


def prepare_profiles(cache: Path) -> None:
    compute = SHARED / "compute" / DEVICE / MODEL
    network = SHARED / "network" / NETWORK
    for f in (compute / "mlp.csv", compute / "attention.csv", network / "all_reduce.csv"):
        if not f.exists():
            skip(f"{f} not found (see ../shared/vidur-data/README.md)")
    hf_dataset(
        cache / "profiling_data" / "compute",
        COMPUTE_DATASET,
        {"mlp.csv": compute / "mlp.csv", "attention.csv": compute / "attention.csv"},
        {"model": MODEL, "device_sku": DEVICE},
    )
    hf_dataset(
        cache / "profiling_data" / "network",
        NETWORK_DATASET,
        {"all_reduce.csv": network / "all_reduce.csv", "send_recv.csv": network / "send_recv.csv"},
        {"sku": NETWORK},
    )


def driftsched_profile():
    from driftsched.calibrate.prior import derive_prior

    return derive_prior(
        "A100-80GB",
        MODEL,
        tensor_parallel=TP,
        gpu_memory_utilization=0.9,
        max_model_len=MAX_TOKENS,
        max_num_seqs=BATCH_CAP,
        max_num_batched_tokens=BATCH_TOKENS,
    )


def workload(n: int, profile):
    """The shared workload, arrivals at 80% of the replica's capacity (driftsched's prior)."""
    from driftsched.traces.generators import generate
    from driftsched.traces.trace import Trace
    from scale import saturated_throughput

    frame = generate(
        "poisson",
        requests=n,
        seed=0,
        prompt_len="lognormal:median=600,sigma=0.7",
        output_len="lognormal:median=200,sigma=0.7",
        prompt_cap=2048,
        output_cap=2000,
        max_total_tokens=None,
    ).frame
    capacity = saturated_throughput(frame, BATCH_CAP, profile=profile)
    offered = len(frame) / float(frame["arrival_s"].iloc[-1])
    frame["arrival_s"] = frame["arrival_s"] * (offered / (0.8 * capacity))
    return Trace.from_frame(frame, "vs-vidur", source="bench"), capacity


def vidur_args(trace_csv: Path, cache: Path, out: Path) -> list[str]:
    p = "--random_forrest_execution_time_predictor_config_"
    return [
        "--replica_config_device", DEVICE,
        "--replica_config_network_device", NETWORK,
        "--replica_config_model_name", MODEL,
        "--replica_config_tensor_parallel_size", str(TP),
        "--replica_config_num_pipeline_stages", "1",
        "--cluster_config_num_replicas", "1",
        "--replica_scheduler_config_type", "vllm",
        "--vllm_scheduler_config_batch_size_cap", str(BATCH_CAP),
        "--vllm_scheduler_config_max_tokens_in_batch", str(BATCH_TOKENS),
        "--request_generator_config_type", "trace_replay",
        "--trace_request_generator_config_trace_file", str(trace_csv),
        "--trace_request_generator_config_date", TRACE_DATE,
        "--trace_request_generator_config_prefill_scale_factor", "1",
        "--trace_request_generator_config_decode_scale_factor", "1",
        "--trace_request_generator_config_time_scale_factor", "1",
        "--trace_request_generator_config_max_tokens", str(MAX_TOKENS),
        "--execution_time_predictor_config_type", "random_forrest",
        f"{p}cache_dir", str(cache),
        f"{p}model_profiling_dataset", COMPUTE_DATASET,
        f"{p}network_profiling_dataset", NETWORK_DATASET,
        f"{p}prediction_max_tokens_per_request", str(MAX_TOKENS),
        f"{p}kv_cache_prediction_granularity", "64",
        # one forest configuration instead of Vidur's 27-point grid search: training only
        # happens on the first (untimed) run; timed runs load cached predictions either way
        f"{p}num_estimators", "250",
        f"{p}max_depth", "16",
        f"{p}min_samples_split", "2",
        "--no-metrics_config_store_plots",
        "--metrics_config_output_dir", str(out),
    ]  # fmt: skip


def run_vidur(python: Path, args: list[str], log: Path) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        r = subprocess.run([str(python), "-m", "vidur.main", *args], env=env, stdout=f, stderr=f)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        skip(f"vidur exited with {r.returncode}; last lines of {log}:\n" + "\n".join(tail))
    return wall


def best_wall_s(argv: list[str], repeats: int) -> float:
    """The best wall time of ``repeats`` runs of the process ``argv`` (which must succeed)."""
    from startup import timed

    return min(timed(argv) for _ in range(repeats))


def vidur_loop_seconds(log: Path) -> float | None:
    """Seconds between Vidur's 'Starting simulation' and 'Simulation ended' log lines (its
    event loop alone; the log has 1-second resolution)."""
    import re
    from datetime import datetime

    stamps = {}
    for line in log.read_text().splitlines():
        m = re.match(r"INFO (\d\d-\d\d \d\d:\d\d:\d\d) ", line)
        if m and "Starting simulation" in line:
            stamps["start"] = datetime.strptime(m[1], "%m-%d %H:%M:%S")
        elif m and "Simulation ended" in line:
            stamps["end"] = datetime.strptime(m[1], "%m-%d %H:%M:%S")
    if len(stamps) < 2:
        return None
    return (stamps["end"] - stamps["start"]).total_seconds()


def vidur_median_e2e(out: Path) -> float | None:
    import pandas as pd

    for f in sorted(out.rglob("request_metrics.csv")):
        frame = pd.read_csv(f)
        for col in ("request_e2e_time", "request_e2e_time_normalized"):
            if col in frame.columns:
                return float(frame[col].median())
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache/driftsched/vidur-venv")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache/driftsched/vidur-cache")
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from scale import machine
    from startup import bytecode_cached

    print(machine())
    python = ensure_vidur(args.venv)
    prepare_profiles(args.cache)
    profile = driftsched_profile()
    trace, capacity = workload(args.requests, profile)
    work = Path(tempfile.mkdtemp(prefix="vs-vidur-"))
    f = trace.frame
    import pandas as pd

    pd.DataFrame(
        {
            "Date": TRACE_DATE,
            "Time": f["arrival_s"],
            "PromptTokenCount": f["prompt_tokens"],
            "CompletionTokenCount": f["output_tokens"],
        }
    ).to_csv(work / "trace.csv", index=False)
    trace.write(work / "trace.parquet")
    profile.write(work / "profile.json")
    print(
        f"workload: {len(f)} requests, Poisson at {0.8 * capacity:.2f} req/s (80% of "
        f"{capacity:.2f}), prompts median {f['prompt_tokens'].median():.0f}, outputs median "
        f"{f['output_tokens'].median():.0f}; {MODEL} on {TP} x A100 (vLLM scheduler, batch "
        f"cap {BATCH_CAP}, {BATCH_TOKENS} tokens/batch)",
        flush=True,
    )

    print("vidur: first run (trains and caches its execution-time models; not timed) ...")
    t0 = time.perf_counter()
    run_vidur(python, vidur_args(work / "trace.csv", args.cache, work / "vidur0"), work / "v0.log")
    print(f"vidur: first run took {time.perf_counter() - t0:.0f} s", flush=True)
    vidur_s = min(
        run_vidur(
            python,
            vidur_args(work / "trace.csv", args.cache, work / f"vidur{k}"),
            work / f"v{k}.log",
        )
        for k in range(1, args.repeats + 1)
    )
    vidur_e2e = vidur_median_e2e(work / f"vidur{args.repeats}")
    vidur_loop = vidur_loop_seconds(work / f"v{args.repeats}.log")

    from driftsched.sim.simulation import simulate

    runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        result = simulate(trace, mode="continuous", max_concurrency=BATCH_CAP, profile=profile)
        runs.append(time.perf_counter() - t0)
    ds_s = min(runs)
    cli = [
        sys.executable, "-m", "driftsched.cli", "sim", "run",
        "--trace", str(work / "trace.parquet"),
        "--profile", str(work / "profile.json"),
        "--set", f"max_concurrency={BATCH_CAP}",
        "-o", str(work / "ds"),
        "--no-plots",  # as Vidur runs (--no-metrics_config_store_plots)
    ]  # fmt: skip
    # bytecode cached, as Vidur's installed modules have theirs (see bench/startup.py)
    with bytecode_cached() as bytecode:
        ds_cli_s = best_wall_s(cli, args.repeats)
        # the CLI's fixed cost (interpreter start-up and the modules sim run imports), and
        # the part of it that is third-party libraries
        ds_imports_s = best_wall_s([sys.executable, "-c", IMPORTS], args.repeats)
        ds_libraries_s = best_wall_s([sys.executable, "-c", LIBRARIES], args.repeats)
        ds_no_pandas_s = best_wall_s([sys.executable, "-c", WITHOUT_PANDAS], args.repeats)
    ds_e2e = float(result.records["e2e_s"].median())
    print()
    print(f"{'':34} {'wall s':>8} {'median E2E s':>13}")
    vidur_label = f"vidur {VIDUR_VERSION} (process, warm)"
    print(f"{vidur_label:34} {vidur_s:8.2f} {vidur_e2e or float('nan'):13.2f}")
    if vidur_loop is not None:
        print(f"{'vidur event loop alone (from log)':34} {vidur_loop:8.0f}")
    print(f"{'driftsched (in process)':34} {ds_s:8.2f} {ds_e2e:13.2f}")
    print(f"{'driftsched (CLI process, + files)':34} {ds_cli_s:8.2f}   bytecode cache: {bytecode}")
    rest_s = ds_cli_s - ds_imports_s - ds_s
    print(
        f"  the CLI process: start-up + imports {ds_imports_s:.2f} s, simulation {ds_s:.2f} s, "
        f"reading the trace, summaries, writing files {rest_s:.2f} s"
    )
    print(f"ratio vidur / driftsched: {vidur_s / ds_s:.1f}x in process, "
          f"{vidur_s / ds_cli_s:.1f}x process to process")  # fmt: skip
    floor_s = ds_libraries_s + ds_s
    print(
        f"  floor: python and the third-party libraries sim run imports "
        f"({LIBRARIES[7:].removesuffix(ENDS)}) "
        f"{ds_libraries_s:.2f} s + the simulation {ds_s:.2f} s = {floor_s:.2f} s, "
        f"so at most {vidur_s / floor_s:.0f}x process to process on this stack"
    )
    bare_s = ds_no_pandas_s + ds_s
    print(
        f"  without pandas: {ds_no_pandas_s:.2f} s + the simulation = {bare_s:.2f} s, at most "
        f"{vidur_s / bare_s:.0f}x; 100x leaves {vidur_s / 100:.2f} s for the whole process"
    )
    print(f"(work folder: {work})")


if __name__ == "__main__":
    main()
