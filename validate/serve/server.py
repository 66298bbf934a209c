"""Running a service: uvicorn on 127.0.0.1 unless asked otherwise, stopped on every exit path.

:func:`serve` blocks (the CLI's way; Ctrl-C or SIGTERM stops it, uvicorn finishing the
requests in flight for up to ``graceful_s``). :class:`Background` runs an app in a thread of
this process — tests and benches use it — and stops it on ``close()`` or leaving its ``with``.
Access logs are off: a request line could carry a key in a query string, and keys are never
logged.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import uvicorn

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _config(app, host: str, port: int, graceful_s: float, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=graceful_s,
        lifespan="on",
    )


def serve(app, host: str = LOOPBACK, port: int = 8000, graceful_s: float = 5.0) -> None:
    """Serve ``app`` until interrupted (see the module docstring)."""
    uvicorn.Server(_config(app, host, port, graceful_s, "info")).run()


class Background:
    """``app`` served on ``host:port`` (a free port by default) in a daemon thread;
    ``url`` is its base address. Started on construction (ready when it returns, or
    RuntimeError within ``start_timeout_s``)."""

    def __init__(
        self, app, host: str = LOOPBACK, port: int | None = None, start_timeout_s: float = 30.0
    ):
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(_config(app, host, self.port, 2.0, "warning"))
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="driftsched-http")
        self.thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the server and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout_s)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ServiceProcess:
    """A ``driftsched`` service command (``args`` after ``driftsched``, without ``--host``/
    ``--port``; with ``command``, ``args`` is the whole command, e.g. ``vllm serve``'s) run as a
    child process in its own session on a free loopback port; ready when
    ``health`` answers 200. Stopped — SIGTERM, then SIGKILL to its whole process group — on
    ``close()``, on leaving its ``with``, and if it fails to start. Its output goes to ``log``
    (a path) when given."""

    def __init__(
        self,
        args: list[str],
        health: str = "/health",
        start_timeout_s: float = 60.0,
        log=None,
        command: bool = False,
    ):
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        head = list(args) if command else [sys.executable, "-m", "driftsched.cli", *args]
        cmd = [*head, "--host", LOOPBACK, "--port", str(self.port)]
        self._log = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        deadline = time.monotonic() + start_timeout_s
        while True:
            if self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"{' '.join(args)} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + health, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{' '.join(args)} did not answer {health} in time")
            time.sleep(0.05)

    def kill(self) -> None:
        """Crash it: SIGKILL to its process group, no graceful shutdown (fault injection)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def stall(self, seconds: float) -> None:
        """Freeze it (and its children) for ``seconds``: SIGSTOP, then SIGCONT whatever
        happens — a host stall, for fault injection. Blocks the caller that long."""
        try:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGSTOP)
            time.sleep(seconds)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGCONT)

    def close(self, timeout_s: float = 10.0) -> int | None:
        """Stop it (and its children); returns its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything it left behind
        self.proc.wait()
        if hasattr(self._log, "close"):
            self._log.close()
        return self.proc.returncode

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def busy_cpus(n: int):
    """``n`` processes spinning on the CPU while the block runs, killed after it whatever
    happens — a busy host, for fault injection (the spinners do nothing else)."""
    spinners = []
    try:
        for _ in range(n):
            spinners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        yield
    finally:
        for proc in spinners:
            proc.kill()
        for proc in spinners:
            proc.wait()
