"""``driftsched validate run --via http``: the deployment path in the fidelity report.

Instead of the in-process engine and the live loop, each scenario runs through what a user
deploys: a real ``vllm serve`` (vLLM's OpenAI server, its engine in its own process) with the
profile's engine arguments, ``driftsched gateway serve`` in front of it with the scenario's
policy, corrector, dispatch mode and concurrency, and the trace replayed over HTTP by the
client of :mod:`.client` (streamed; the same token-id prompts the in-process path sends, each
row's tenant key and category). The gateway's records (its own log, exported to the
simulator's columns) are the live side of the comparison; the simulator runs the scenario as
for the in-process path (``max_tokens`` there is the trace's, here what the client sends: the
output length — the same for correctors that do not read it).

:class:`HttpEngines` is the runner's handle, with the interface of
:class:`~driftsched.validate.engines.LiveEngines`; ``upstream`` points it at a server already
running (the caller's; then nothing is started). Not for prefix caching or several replicas
yet, and without schedule replay (the gateway does not see vLLM's steps).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from driftsched.validate.live import LiveResult
from driftsched.validate.serve.gateway_records import read_log, records_frame
from driftsched.validate.serve.selfcheck import through_gateway
from driftsched.validate.serve.server import ServiceProcess

#: the name the vLLM server serves the model under (the gateway rewrites ``model`` to it)
SERVED = "driftsched-live"
#: engine arguments that are the in-process engine's business, not a server flag
NOT_FLAGS = {"model", "skip_tokenizer_init"}


def server_flags(args: dict) -> list[str]:
    """vLLM engine arguments as ``vllm serve`` flags (``max_num_seqs=64`` ->
    ``--max-num-seqs 64``; a true boolean is a bare flag, a false one is left out)."""
    out = []
    for key, value in args.items():
        if key in NOT_FLAGS or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        out += [flag] if value is True else [flag, str(value)]
    return out


class HttpEngines:
    """See the module docstring."""

    workers = None

    def __init__(self, out: Path, args: dict, upstream: str | None = None, timeout_s=900.0):
        from driftsched.calibrate.tinymodel import write_word_tokenizer

        self.out, self.args, self.owned = Path(out), dict(args), upstream is None
        self.server = None
        if upstream is None:
            model = self.args["model"]
            if not (Path(model) / "tokenizer.json").exists() and Path(model).is_dir():
                write_word_tokenizer(model)  # vllm serve needs one for text (tinymodel.py)
            cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
                   "--served-model-name", SERVED, *server_flags(self.args)]  # fmt: skip
            self.server = ServiceProcess(
                cmd, health="/health", start_timeout_s=timeout_s, log=self.out / "vllm-serve.log",
                command=True,
            )  # fmt: skip
            upstream = self.server.url
        self.url = upstream.rstrip("/")
        self._blocks = _cache_blocks(self.url)
        self.model = _served_model(self.url)

    @classmethod
    def start(cls, out: Path, args: dict, upstream: str | None = None) -> HttpEngines:
        return cls(out, args, upstream)

    @property
    def num_gpu_blocks(self) -> int | None:
        return self._blocks

    @property
    def engine_args(self) -> dict:
        return self.args

    def environment(self) -> dict | None:
        return None

    def describe(self) -> dict:
        return {"via": "http", "vllm_server": self.url, "vllm_server_started": self.owned}

    def speed(self, args, profile, steps):
        return None  # the engine is in another process: no in-process speed check

    def gateway(self, trace, config, timeout_s: float, clock=None, sleep=None):
        return HttpScenario(self, trace, config, timeout_s)

    def shutdown(self) -> None:
        if self.server is not None:
            self.server.close()


def _served_model(url: str) -> str:
    """The first model the server lists (what the gateway names upstream)."""
    try:
        return httpx.get(url + "/v1/models", timeout=10).json()["data"][0]["id"]
    except (httpx.HTTPError, ValueError, KeyError, IndexError):
        return SERVED


def _cache_blocks(url: str) -> int | None:
    """The server's KV blocks, from vLLM's ``vllm:cache_config_info`` series."""
    try:
        page = httpx.get(url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    m = re.search(r'vllm:cache_config_info\{[^}]*num_gpu_blocks="(\d+)"', page)
    return int(m.group(1)) if m else None


class HttpScenario:
    """One scenario through the gateway service (``run()`` -> :class:`LiveResult`)."""

    def __init__(self, engines: HttpEngines, trace, config, timeout_s: float):
        self.engines, self.trace, self.config, self.timeout_s = engines, trace, config, timeout_s

    def run(self) -> LiveResult:
        c, trace = self.config, self.trace
        folder = self.engines.out / "via-http" / str(trace.meta.get("source", "scenario"))[:60]
        folder = folder.parent / re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.name)
        settings = {
            "policy": c.policy, "policy_params": c.policy_params, "corrector": c.corrector,
            "corrector_params": c.corrector_params, "mode": c.mode,
            "max_concurrency": c.max_concurrency, "batch_size": c.batch_size,
            "batch_wait_s": c.batch_wait_s, "upstream_model": self.engines.model,
            "max_queued": max(10_000, len(trace.frame)),
        }  # fmt: skip
        started = time.perf_counter()
        status, error = "complete", None
        try:
            client = through_gateway(trace, self.engines.url, folder, timeout_s=self.timeout_s,
                                     give_up_s=self.timeout_s, **settings)  # fmt: skip
        except Exception as exc:  # the client itself failed: what was recorded stays
            status, error = "error", f"{type(exc).__name__}: {exc}"
            client = None
        wall = time.perf_counter() - started
        live = self._records(folder / "records.jsonl")
        if client is not None and (client["status"] != 200).any() and status == "complete":
            bad = client.loc[client["status"] != 200, ["status", "error"]].iloc[0]
            status, error = "error", f"HTTP {bad['status']}: {bad['error']}"
        extra = {"via": "http", "gateway_outcomes": live.attrs.get("outcomes", {})}
        if client is not None:
            extra["client_send_lag_max_s"] = float(client["send_lag_s"].max())
        return LiveResult(live, status, error, wall, extra, None, None)

    def _records(self, path: Path) -> pd.DataFrame:
        """The gateway's records in the trace's row order, in the simulator's columns."""
        f = self.trace.frame
        log = records_frame(read_log(path)) if path.exists() else None
        ids = f["request_id"].astype(str)
        if log is None or log.empty:
            out = pd.DataFrame({"request_id": ids, "finished": False})
            out.attrs["outcomes"] = {}
            return out
        out = log.drop_duplicates("request_id", keep="last").set_index("request_id")
        out = out.reindex(ids).reset_index()
        out["finished"] = out["finished"].fillna(False).astype(bool)
        for c in ("ttft_slo_s", "e2e_slo_s"):
            if c in f.columns:
                out[c] = f[c].to_numpy()
        out["output_tokens"] = f["output_tokens"].to_numpy(np.int64)
        out.attrs["outcomes"] = log["outcome"].value_counts().to_dict()
        return out
