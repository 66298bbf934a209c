"""An engine in its own process on its own core, stepped by the live gateway one step at a time.

Several replicas must step *in parallel*, as two GPUs would; two in-process engines would take
turns on one thread. So each replica's engine lives in a worker process (``spawn``, pinned to one
core with ``sched_setaffinity``), and the gateway (:mod:`driftsched.validate.cluster`) drives
it over a pipe with a lock-step protocol that keeps the simulator's order of events at a step
boundary:

- gateway -> worker ``("go", adds)``: add these requests (``(request_id, prompt_tokens,
  output_tokens, prefix)``), then run **one** engine step and report it;
- worker -> gateway ``("step", outputs, records, has_work)``: ``outputs`` as ``(request_id,
  output tokens so far, finished)``, ``records`` one per core step as ``(chunks,
  preempted_ids, shape, duration_s)`` (see :class:`~driftsched.calibrate.vllm_engine.StepRecord`
  and :func:`~driftsched.calibrate.profiler.shape_row`), and whether the engine has work left;
- ``("apply", fn, args)`` -> ``("result", fn(engine, *args))``: anything else, between
  scenarios (warm-up, speed check, emptying the prefix cache); ``fn`` is a module-level
  function, so it pickles;
- ``("stop",)``, or the pipe closing: shut the engine down and exit.

The worker never starts a step on its own: after each step it waits for the gateway, which first
feeds the step's finishes back (corrector, dispatcher) and hands over what it dispatched to this
replica meanwhile. Requests dispatched while the step ran therefore join the next step, exactly
as in the simulator.

The worker dies with the gateway: the process is a daemon (terminated at the parent's exit), a
closed pipe ends its loop, and :meth:`EngineWorker.shutdown` terminates, then kills, a worker
that does not stop in time.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path


class WorkerError(RuntimeError):
    """The worker's engine failed (to start, or in a step); the message is the worker's."""


def _serve(conn: Connection, factory: Callable, core: int | None) -> None:
    """The worker process: build the engine with ``factory()``, then obey the gateway."""
    if core is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):  # fewer cores than replicas: they share
            os.sched_setaffinity(0, {core})
    try:
        engine = factory()
    except BaseException as exc:  # noqa: BLE001 - reported to the gateway, never lost
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        conn.close()
        return
    info = {
        "num_gpu_blocks": getattr(engine, "num_gpu_blocks", None),
        "environment": engine.environment() if hasattr(engine, "environment") else None,
        "logs_steps": hasattr(engine, "last_steps"),
        "engine_args": getattr(engine, "engine_args", {}),
        "pid": os.getpid(),
        "core": core,
    }
    conn.send(("ready", info))
    try:
        _obey(conn, engine)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):  # the gateway is gone
        pass
    finally:
        shutdown = getattr(engine, "shutdown", None)
        if shutdown is not None:
            shutdown()


def _obey(conn: Connection, engine) -> None:
    from driftsched.validate.live import step_summary

    while True:
        msg = conn.recv()
        kind = msg[0]
        if kind == "stop":
            return
        try:
            if kind == "go":
                for request_id, prompt, output, prefix in msg[1]:
                    if prefix is None:
                        engine.add(request_id, prompt, output)
                    else:
                        engine.add(request_id, prompt, output, prefix)
                if not engine.has_work():
                    conn.send(("step", [], [], False))
                    continue
                outs, records = step_summary(engine, engine.step())
                conn.send(("step", outs, records, engine.has_work()))
            elif kind == "apply":
                conn.send(("result", msg[1](engine, *msg[2])))
            else:
                conn.send(("error", f"unknown message {kind!r}"))
        except (EOFError, BrokenPipeError):
            raise
        except Exception as exc:  # noqa: BLE001 - the gateway records it and stops the run
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class EngineWorker:
    """The gateway's handle on one worker process (see the module docstring).

    ``factory`` builds the engine inside the worker (a picklable callable: a module-level
    function or a ``functools.partial`` of one); ``core`` is the CPU it is pinned to."""

    def __init__(self, factory: Callable, core: int | None = None, name: str = "engine"):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve, args=(child, factory, core), daemon=True, name=name
        )
        self.process.start()
        child.close()
        self.info: dict = {}
        self.busy = False  # a "go" is out and its "step" not yet received

    def ready(self, timeout_s: float = 900.0) -> dict:
        """Wait until the engine is built (and warmed up, if the factory does); its info."""
        msg = self._recv(timeout_s, "to start")
        if msg[0] != "ready":
            raise WorkerError(f"{self.process.name}: unexpected {msg[0]!r} at start")
        self.info = msg[1]
        return self.info

    def go(self, adds: list) -> None:
        """Hand over ``adds`` and let the engine run one step."""
        self.conn.send(("go", adds))
        self.busy = True

    def result(self) -> tuple:
        """The step the last :meth:`go` ran: ``(outputs, records, has_work)``."""
        msg = self._recv(None, "in a step")
        self.busy = False
        if msg[0] != "step":
            raise WorkerError(f"{self.process.name}: unexpected {msg[0]!r} after a step")
        return msg[1], msg[2], msg[3]

    def apply(self, fn: Callable, *args, timeout_s: float = 900.0):
        """``fn(engine, *args)`` in the worker (the engine idle); its result."""
        self.ask(fn, *args)
        return self.answer(timeout_s)

    def ask(self, fn: Callable, *args) -> None:
        """Send ``fn(engine, *args)`` without waiting; :meth:`answer` takes its result."""
        self.conn.send(("apply", fn, args))

    def answer(self, timeout_s: float = 900.0):
        return self._recv(timeout_s, "in an applied call")[1]

    def _recv(self, timeout_s: float | None, what: str) -> tuple:
        if timeout_s is not None and not self.conn.poll(timeout_s):
            raise WorkerError(f"{self.process.name}: no answer {what} within {timeout_s:g} s")
        try:
            msg = self.conn.recv()
        except EOFError:
            self.process.join(1.0)
            code = self.process.exitcode
            raise WorkerError(
                f"{self.process.name}: the worker died {what} (exit {code})"
            ) from None
        if msg[0] == "error":
            raise WorkerError(f"{self.process.name}: {msg[1]}")
        return msg

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop the worker: ask, then terminate, then kill; always reaps the process."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(("stop",))
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def start_workers(
    factory: Callable, replicas: int, timeout_s: float = 900.0, log_dir=None
) -> list[EngineWorker]:
    """``replicas`` workers, replica ``k`` pinned to core ``k`` (modulo the cores there are),
    built in parallel; all stopped again if any fails to start. With ``log_dir``, worker ``k``
    calls ``factory(log_path)`` with ``log_dir / "engine-k.log"`` (vLLM's own log)."""
    from functools import partial

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None]
    workers = [
        EngineWorker(
            partial(factory, Path(log_dir) / f"engine-{k}.log") if log_dir else factory,
            cores[k % len(cores)],
            name=f"engine-{k}",
        )
        for k in range(replicas)
    ]
    try:
        for w in workers:
            w.ready(timeout_s)
    except BaseException:
        for w in workers:
            w.shutdown(5.0)
        raise
    return workers
