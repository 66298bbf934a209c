"""The one module that touches vLLM internals: build an in-process engine and time every step.

Supported vLLM: :data:`SUPPORTED_RANGE` (the V1 engine with ``EngineCore.step_fn``,
``scheduler.schedule`` returning a ``SchedulerOutput``, and ``block_pool.num_gpu_blocks``). Any
other version, or a missing attribute, fails with one line naming the installed version.

How a step is observed: with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` the engine core runs in this
process (``LLMEngine.engine_core.engine_core``). We wrap ``scheduler.schedule`` to keep each
step's ``SchedulerOutput`` (tokens per request and each request's computed tokens *before* the
step) and ``EngineCore.step_fn`` to time schedule + execute + update, which is what the
simulator calls one step. Request ids come back with a ``-<suffix>``; it is stripped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from driftsched.ground.errors import DriftschedError, InputError

SUPPORTED_RANGE = ((0, 32), (0, 33))  # >= 0.32, < 0.33
SUPPORTED_TEXT = ">=0.32,<0.33"


class VllmVersionError(DriftschedError):
    """The installed vLLM is not one whose internals this module knows."""


def import_vllm():
    """Import vLLM (in-process engine core) or raise a one-line error saying what to install."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    try:
        import vllm
    except ImportError as exc:
        raise InputError(
            f"vLLM is not importable ({exc}); install it with pip install -e '.[live-cpu]' "
            "(CPU) or '.[live-gpu]' (NVIDIA GPU)"
        ) from None
    version = tuple(int(p) for p in vllm.__version__.split(".")[:2] if p.isdigit())
    if not SUPPORTED_RANGE[0] <= version < SUPPORTED_RANGE[1]:
        raise VllmVersionError(
            f"vLLM {vllm.__version__} is not supported by driftsched.calibrate "
            f"(supported {SUPPORTED_TEXT}); install a supported version"
        )
    return vllm


def route_engine_log(path) -> None:
    """Send vLLM's own log lines (INFO and up, from the ``vllm`` logger tree) to the file
    ``path`` instead of the console, so the console keeps to driftsched's progress lines. The
    file is appended to; the console says where it is."""
    import logging
    from pathlib import Path

    from driftsched.ground.atomic import output_folder

    path = Path(path)
    output_folder(path.parent)
    logger = logging.getLogger("vllm")
    for handler in list(logger.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            logger.removeHandler(handler)
    if not any(
        isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve()
        for h in logger.handlers
    ):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _internal(obj: Any, path: str, version: str):
    for name in path.split("."):
        if not hasattr(obj, name):
            raise VllmVersionError(
                f"vLLM {version}: engine internals changed ({path!r} has no {name!r}); "
                f"supported {SUPPORTED_TEXT}"
            )
        obj = getattr(obj, name)
    return obj


#: prompt token ids are drawn from [FIRST_ID, FIRST_ID + ID_SPAN) (the tiny model's vocabulary
#: is 8,192; ids 0-2 are special)
FIRST_ID, ID_SPAN = 3, 8000


def prompt_ids(request_id: str, prompt_tokens: int, prefix=None) -> list[int]:
    """Token ids for a prompt: inside ``prefix``'s chunks (chunk ``i``: tokens ``[i * c,
    (i + 1) * c)``) a token is a pure function of its chunk's id, the chunk's index and its
    offset, so equal chunk ids at equal positions are equal tokens (vLLM's block hashes then
    chain exactly as the simulator's keys); every other token is a function of the request id
    and the position, so nothing else is shared. One vectorised hash over all positions (about
    60 us for 1,700 tokens, measured): the live loop calls this between engine steps, where
    time spent would widen the step boundaries that schedule replay compares."""
    import zlib

    import numpy as np

    pos = np.arange(prompt_tokens, dtype=np.uint64)
    seed = np.uint64(zlib.crc32(request_id.encode()) | (1 << 32))  # never a chunk id's lane
    lane = np.full(prompt_tokens, seed, dtype=np.uint64)
    if prefix is not None and prefix.chunk_ids:
        c = prefix.chunk_tokens
        shared = min(prompt_tokens, len(prefix.chunk_ids) * c)
        ids = np.asarray(prefix.chunk_ids, dtype=np.int64).astype(np.uint64)
        lane[:shared] = ids[pos[:shared] // np.uint64(c)] << np.uint64(1)  # even: never a seed
    # the position stands for a chunk's index and offset together
    return (FIRST_ID + _mix(lane, pos) % np.uint64(ID_SPAN)).astype(np.int64).tolist()


def _mix(a, b):
    """A 64-bit integer hash of two uint64 arrays (splitmix64 finaliser over a combination)."""
    import numpy as np

    with np.errstate(over="ignore"):
        x = a * np.uint64(0x9E3779B97F4A7C15) + b * np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def process_settings() -> dict:
    """What the process runs with besides the engine arguments, as far as it moves step time:
    the allocator preloaded (``LD_PRELOAD``; glibc malloc when none), OpenMP's thread count
    and vLLM's CPU thread binding from the environment."""
    preload = [p for p in os.environ.get("LD_PRELOAD", "").replace(":", " ").split() if p]
    allocs = [os.path.basename(p) for p in preload if "malloc" in p or "jemalloc" in p]
    return {
        "allocator": ", ".join(allocs) or "glibc malloc",
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "vllm_cpu_omp_threads_bind": os.environ.get("VLLM_CPU_OMP_THREADS_BIND"),
    }


#: the environment fields a validation run compares with the profile's
COMPARED_ENVIRONMENT = (
    "device",
    "vllm_version",
    "torch_version",
    "torch_threads",
    "allocator",
    "omp_num_threads",
    "vllm_cpu_omp_threads_bind",
)


@dataclass
class StepRecord:
    """One engine step: wall-clock start (s, monotonic), duration, and its composition."""

    start_s: float
    duration_s: float
    chunks: list[tuple[str, int, int]]  # (request id, new tokens, computed before) prefills
    decodes: list[tuple[str, int]]  # (request id, computed before) decoding requests
    preempted: int = 0
    preempted_ids: tuple[str, ...] = ()  # the requests this step preempted (base ids)


class KvPool:
    """vLLM's block pool as the dispatcher's ``pool`` protocol: ``used`` and ``capacity``
    blocks (vLLM's reserved null block not counted as capacity)."""

    def __init__(self, block_pool, num_blocks: int):
        self._pool, self.capacity = block_pool, max(1, num_blocks - 1)

    @property
    def used(self) -> int:
        return self.capacity - int(self._pool.get_num_free_blocks())


@dataclass
class InstrumentedEngine:
    """An in-process vLLM engine whose every step is timed and decomposed."""

    engine_args: dict
    #: vLLM's own log goes to this file (see :func:`route_engine_log`); None: the console
    log_path: Any = None
    steps: list[StepRecord] = field(default_factory=list)
    admission_s: list[float] = field(default_factory=list)
    output_overhead_s: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self):
        if self.log_path is not None:  # vLLM then adds no console handler of its own
            os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
        vllm = import_vllm()
        if self.log_path is not None:
            route_engine_log(self.log_path)
        self.version = vllm.__version__
        self._vllm = vllm
        from vllm import EngineArgs, LLMEngine

        self.engine = LLMEngine.from_engine_args(EngineArgs(**self.engine_args))
        self.core = _internal(self.engine, "engine_core.engine_core", self.version)
        scheduler = _internal(self.core, "scheduler", self.version)
        self.block_size = int(_internal(scheduler, "block_size", self.version))
        self.num_gpu_blocks = int(
            _internal(scheduler, "kv_cache_manager.block_pool.num_gpu_blocks", self.version)
        )
        self._scheduler = scheduler
        self._pending = None
        self.last_steps: list[StepRecord] = []
        schedule, step_fn = scheduler.schedule, _internal(self.core, "step_fn", self.version)

        def timed_schedule(*args, **kwargs):
            self._pending = schedule(*args, **kwargs)
            return self._pending

        def timed_step(*args, **kwargs):
            start = time.perf_counter()
            result = step_fn(*args, **kwargs)
            end = time.perf_counter()
            if self._pending is not None and self._pending.total_num_scheduled_tokens > 0:
                self.steps.append(self._decompose(self._pending, start, end - start))
            self._pending = None
            return result

        scheduler.schedule = timed_schedule
        self.core.step_fn = timed_step

    @staticmethod
    def _base_id(request_id: str) -> str:
        return request_id.rsplit("-", 1)[0]

    def _decompose(self, out, start: float, duration: float) -> StepRecord:
        n = out.num_scheduled_tokens
        chunks, decodes = [], []
        for r in out.scheduled_new_reqs:
            chunks.append((self._base_id(r.req_id), n[r.req_id], r.num_computed_tokens))
        cached = out.scheduled_cached_reqs
        resumed = getattr(cached, "resumed_req_ids", set())
        for rid, computed, outputs in zip(
            cached.req_ids, cached.num_computed_tokens, cached.num_output_tokens, strict=True
        ):
            if outputs > 0 and n[rid] == 1 and rid not in resumed:
                decodes.append((self._base_id(rid), computed))
            else:
                chunks.append((self._base_id(rid), n[rid], computed))
        preempted = tuple(self._base_id(r) for r in sorted(out.preempted_req_ids or ()))
        return StepRecord(start, duration, chunks, decodes, len(preempted), preempted)

    def add(self, request_id: str, prompt_tokens: int, output_tokens: int, prefix=None) -> None:
        """Submit a request of exactly ``prompt_tokens`` token ids that generates exactly
        ``output_tokens`` tokens (``ignore_eos``). The ids are :func:`prompt_ids`: equal where
        ``prefix`` (a :class:`~driftsched.sim.prefixcache.Prefix`) says the prompt is shared,
        the request's own elsewhere — so vLLM's prefix cache sees what the simulator's does."""
        from vllm import SamplingParams, TokensPrompt

        ids = prompt_ids(request_id, prompt_tokens, prefix)
        params = SamplingParams(max_tokens=output_tokens, ignore_eos=True, temperature=0.0)
        start = time.perf_counter()
        self.engine.add_request(request_id, TokensPrompt(prompt_token_ids=ids), params)
        self.admission_s.append(time.perf_counter() - start)

    def step(self) -> list:
        """One ``LLMEngine.step``; records the time spent outside the core step. Afterwards
        ``last_steps`` holds the :class:`StepRecord` of each core step it ran."""
        before = len(self.steps)
        start = time.perf_counter()
        outputs = self.engine.step()
        total = time.perf_counter() - start
        self.last_steps = self.steps[before:]
        if self.last_steps:
            self.output_overhead_s.append((total - self.steps[-1].duration_s, len(outputs)))
        return outputs

    def has_work(self) -> bool:
        return self.engine.has_unfinished_requests()

    # what a policy's GatewayState reads of this replica (sim.gatewaystate.ReplicaView)
    @property
    def running(self):
        """The vLLM scheduler's running requests (sized)."""
        return self._scheduler.running

    @property
    def waiting(self):
        """The vLLM scheduler's waiting queue (sized)."""
        return self._scheduler.waiting

    @property
    def pool(self) -> KvPool:
        """The KV block pool's ``used`` and ``capacity`` blocks."""
        return KvPool(self._scheduler.kv_cache_manager.block_pool, self.num_gpu_blocks)

    def reset_prefix_cache(self) -> bool:
        """Forget every cached block (vLLM's ``reset_prefix_cache``; needs an idle engine)."""
        return bool(self.engine.reset_prefix_cache())

    def drain(self) -> None:
        while self.has_work():
            self.step()

    def environment(self) -> dict:
        """Versions, device, dtype, engine arguments and KV capacity, for the profile."""
        import platform

        import torch

        from driftsched.ground.machine import cpu_model

        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else cpu_model()
        return {
            "vllm_version": self.version,
            "torch_version": torch.__version__,
            "device": device,
            "python": platform.python_version(),
            "engine_args": self.engine_args,
            "block_size": self.block_size,
            "num_gpu_blocks": self.num_gpu_blocks,
            "torch_threads": torch.get_num_threads(),
            **process_settings(),
        }

    def shutdown(self) -> None:
        shutdown = getattr(self.core, "shutdown", None)
        if shutdown is not None:
            shutdown()
