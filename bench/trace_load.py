"""Benchmark: trace import and load speed. Prints its figures; asserts nothing.

Targets (issue 2): import + convert the full Azure 2023 conv trace in < 2 s; a 5-million-row
trace loads (read + validate) "in seconds".

    python bench/trace_load.py [--shared ../shared] [--rows 5000000]
"""

from __future__ import annotations

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()

    import pyarrow
    from driftsched.traces.generators import generate
    from driftsched.traces.importers import import_trace
    from driftsched.traces.trace import read_trace

    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, "
        f"python {platform.python_version()}, pyarrow {pyarrow.__version__}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="driftsched-bench-"))
    azure = args.shared / "traces/azure_2023/AzureLLMInferenceTrace_conv.csv"
    if azure.is_file():
        trace, t_import = timed(lambda: import_trace("azure", azure))
        _, t_write = timed(lambda: trace.write(tmp / "azure.parquet"))
        print(
            f"azure conv import+validate: {len(trace):,} rows in {t_import:.3f} s; "
            f"write parquet {t_write:.3f} s; total {t_import + t_write:.3f} s (target < 2 s)"
        )
        cmd = [
            sys.executable,
            "-m",
            "driftsched.cli",
            "traces",
            "import",
            "azure",
            str(azure),
            "-o",
            str(tmp / "azure_cli.parquet"),
        ]
        _, t_cli = timed(lambda: subprocess.run(cmd, check=True, capture_output=True))
        print(f"azure conv via CLI (incl. interpreter start and imports): {t_cli:.3f} s")
    else:
        print(f"azure conv: skipped, {azure} not found")

    big, t_gen = timed(lambda: generate("poisson", requests=args.rows, seed=0))
    path = tmp / "big.parquet"
    _, t_write = timed(lambda: big.write(path))
    big = None  # free it before loading the file back
    size_mb = path.stat().st_size / 1e6
    loaded, t_read = timed(lambda: read_trace(path))
    print(
        f"{args.rows:,}-row trace: generate {t_gen:.2f} s, write {t_write:.2f} s "
        f"({size_mb:.0f} MB), read+validate {t_read:.2f} s"
    )
    _, t_csv = timed(lambda: loaded.write(tmp / "big.csv"))
    print(
        f"  write CSV {t_csv:.2f} s; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
