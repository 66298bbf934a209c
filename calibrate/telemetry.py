"""GPU telemetry during a profiling pass: NVML samples (nvidia-ml-py's ``pynvml``) in a thread.

Samples every ``interval_s``: GPU and memory utilisation (%), memory used (MiB), power (W),
temperature (°C), SM and memory clocks (MHz), and writes them to Parquet when stopped. Fails
with one line when NVML or an NVIDIA GPU is missing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pandas as pd

from driftsched.ground.errors import InputError


class GpuTelemetry:
    def __init__(self, path: str | Path, device_index: int = 0, interval_s: float = 0.1):
        try:
            import pynvml
        except ImportError:
            raise InputError(
                "GPU telemetry needs nvidia-ml-py: pip install -e '.[live-gpu]'"
            ) from None
        try:
            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self.name = pynvml.nvmlDeviceGetName(self.handle)
        except pynvml.NVMLError as exc:
            raise InputError(f"no NVIDIA GPU available to NVML: {exc}") from None
        self.nvml, self.path, self.interval_s = pynvml, Path(path), interval_s
        self.rows: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> dict:
        n, h = self.nvml, self.handle
        util, mem = n.nvmlDeviceGetUtilizationRates(h), n.nvmlDeviceGetMemoryInfo(h)
        return {
            "time_s": time.monotonic(),
            "gpu_util_pct": util.gpu,
            "mem_util_pct": util.memory,
            "mem_used_mib": mem.used / 2**20,
            "power_w": n.nvmlDeviceGetPowerUsage(h) / 1e3,
            "temperature_c": n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU),
            "sm_clock_mhz": n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM),
            "mem_clock_mhz": n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM),
        }

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.rows.append(self.sample())
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Path:
        from driftsched.ground.atomic import atomic_path

        self._stop.set()
        self._thread.join()
        self.nvml.nvmlShutdown()
        with atomic_path(self.path) as tmp:
            pd.DataFrame(self.rows).assign(device=str(self.name)).to_parquet(tmp, index=False)
        return self.path
